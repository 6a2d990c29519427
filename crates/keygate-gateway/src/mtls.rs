//! The client-certificate modes: `mtls` (the registered client a
//! certificate names is the caller, with its scopes and its own rate
//! limit, as a key is) and `mtls_and_jwt` (that client on behalf of the
//! user a JWT names). The certificate comes from keygate's own handshake
//! on the gateway's listener, or from a trusted proxy's header at
//! forward-auth; the registry (`ClientService::identify`) decides what it
//! is worth, in one place for every entry point.

use keygate_core::clients::{ClientRecord, ClientRefusal, PeerCertificate};
use keygate_core::ratelimit::RateLimiter;

use super::config::Route;
use super::deps::GatewayDeps;
use super::grants::app_serves_user;
use super::identity::Identity;
use super::jwt::user_of;
use super::refusal::{Reason, Refusal};
use keygate_http::ApiError;

/// `mtls`: the registered client the certificate names.
pub(super) async fn with_certificate(
    deps: &GatewayDeps,
    limiter: &dyn RateLimiter,
    route: &Route,
    certificate: Option<&PeerCertificate>,
) -> Result<Identity, Refusal> {
    let certificate = certificate.ok_or_else(|| Refusal::mtls(ClientRefusal::Required))?;
    let identified = deps
        .clients
        .identify(certificate)
        .await
        .map_err(Refusal::mtls)?;
    let client = &identified.client;
    let principal = Some(client.id.as_str());
    // The scopes before the limit, as for a key: a request the route
    // refuses anyway does not spend the client's budget.
    if !route.scopes.iter().all(|s| client.has_scope(s.as_str())) {
        return Err(Refusal::insufficient_scope().by(principal));
    }
    over_own_limit(deps, limiter, client).await?;
    Ok(Identity::of_client(client))
}

/// The client's own `rate_limit`, counted under its id (apart from any
/// route's limit, which `limit` applies afterwards).
async fn over_own_limit(
    deps: &GatewayDeps,
    limiter: &dyn RateLimiter,
    client: &ClientRecord,
) -> Result<(), Refusal> {
    let Some(decision) = deps.clients.charge(limiter, client).await else {
        return Ok(());
    };
    if decision.allowed {
        return Ok(());
    }
    let error = if decision.unavailable {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "rate_limiter_unavailable",
            "the client's rate limiter cannot answer",
        )
    } else {
        ApiError::rate_limited(
            "this client is over its rate limit",
            decision.retry_after_ms,
        )
    };
    Err(Refusal::new(error, Reason::ClientRateLimited).by(Some(client.id.as_str())))
}

/// `mtls_and_jwt`: the certificate names the calling service, the JWT
/// the user, who is the principal; the internal token's `client_id` is
/// the service.
pub(super) async fn client_and_user(
    deps: &GatewayDeps,
    limiter: &dyn RateLimiter,
    route: &Route,
    certificate: Option<&PeerCertificate>,
    bearer: Option<&str>,
) -> Result<Identity, Refusal> {
    let certificate = certificate.ok_or_else(|| Refusal::mtls(ClientRefusal::Required))?;
    let token = bearer.ok_or_else(|| {
        Refusal::missing(
            "a JWT in `Authorization: Bearer` (the user) beside the client certificate",
        )
    })?;
    let user = user_of(&deps.tokens, route, token, Some(certificate)).await?;
    let app = with_certificate(deps, limiter, route, Some(certificate)).await?;
    app_serves_user(
        app,
        user,
        "the client certificate's client and the JWT belong to different tenants",
    )
}
