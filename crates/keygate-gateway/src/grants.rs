//! What a route asks of an identity once its credentials verified: its
//! scopes and roles, and for the modes that pair an application with a
//! user, that both belong to the same tenant.

use axum::http::StatusCode;
use keygate_core::jwt::TokenKind;
use keygate_core::users::model::Role;

use super::config::Route;
use super::identity::Identity;
use super::refusal::{Reason, Refusal};
use keygate_http::ApiError;

/// The application (a key or an mTLS client) on behalf of `user`, who is
/// the principal. A tenant's application serves that tenant's users only;
/// a user in no tenant is not one of them. An application without a
/// tenant (a platform's own) may serve any user.
pub(super) fn app_serves_user(
    app: Identity,
    user: Identity,
    mismatch: &'static str,
) -> Result<Identity, Refusal> {
    if app.tenant.is_some() && app.tenant != user.tenant {
        return Err(Refusal::new(
            ApiError::new(StatusCode::FORBIDDEN, "tenant_mismatch", mismatch),
            Reason::TenantMismatch,
        )
        .by(user.subject.as_deref()));
    }
    Ok(Identity {
        kind: Some(TokenKind::User),
        key_id: app.key_id,
        client_id: app.client_id,
        // The user is the principal; the key is its client.
        key_owner: None,
        subject: user.subject,
        tenant: app.tenant.or(user.tenant),
        scopes: app.scopes,
        roles: user.roles,
    })
}

/// The route's scopes and roles. A key's scopes were checked as it was
/// verified; a JWT on a route with scopes (`api_key_or_jwt`) answers for
/// them with its `scope` claim, as a client-credentials token does.
pub(super) fn check_grants(route: &Route, id: &Identity) -> Result<(), Refusal> {
    if id.key_id.is_none() && !id.has_scopes(&route.scopes) {
        return Err(Refusal::insufficient_scope());
    }
    check_roles(route, &id.roles)
}

pub(super) fn check_roles(route: &Route, roles: &[Role]) -> Result<(), Refusal> {
    if route
        .roles
        .iter()
        .all(|r| roles.iter().any(|have| have.as_str() == r))
    {
        return Ok(());
    }
    Err(Refusal::new(
        ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_role",
            format!("this route needs the roles: {}", route.roles.join(", ")),
        ),
        Reason::InsufficientRole,
    ))
}
