//! Refreshing a user's session: the token rules of `SessionService::refresh`,
//! then the user's own state, since a password change, disabling or
//! revoke-sessions must end sessions started before it. Also what the access
//! token of a session carries.

use super::AuditContext;
use super::model::{FamilyId, REASON_USER_REVOKED};
use super::service::{RefreshError, Refreshed, SessionService};
use crate::jwt::{JwtConfig, Principal, TokenClaims, TokenRequest, UserPrincipal};
use crate::users::model::{UserId, UserRecord, earliest_iat_secs};

/// The access token a login or refresh issues for `user` in session `sid`:
/// the user's custom claims, roles and tenant, and never dated before the
/// user's cut-off (`now` in Unix seconds).
pub fn session_access_request(
    user: &UserRecord,
    sid: &FamilyId,
    config: &JwtConfig,
    now: i64,
) -> TokenRequest {
    let claims = TokenClaims {
        principal: Principal::User(UserPrincipal {
            subject: user.id.as_str().to_owned(),
            session: Some(sid.as_str().to_owned()),
            client: None,
        }),
        tenant: user.tenant.clone(),
        roles: user.roles.clone(),
        scopes: Vec::new(),
        custom: user.claims.clone(),
        cnf: None,
    };
    let mut request = claims.request(config.audience.clone(), config.access_token_ttl);
    request.not_issued_before = Some(earliest_iat_secs(now, user.sessions_cutoff_ms));
    request
}

impl SessionService {
    /// Rotates `presented` and returns the user it belongs to, as stored now
    /// (current roles and claims for the new access token). A family started
    /// before the user's cut-off, or of a user disabled or gone, is revoked
    /// and refused.
    pub async fn refresh_user(
        &self,
        presented: &str,
        ctx: &AuditContext,
    ) -> Result<(Refreshed, UserRecord), RefreshError> {
        let refreshed = self.refresh(presented, ctx).await?;
        let family = &refreshed.family;
        let user = match UserId::parse(&family.user_id) {
            Ok(id) => self
                .users
                .get_user(&id)
                .await
                .map_err(RefreshError::Storage)?,
            Err(_) => None,
        };
        match user {
            Some(u) if !u.disabled && family.created_at_ms >= u.sessions_cutoff_ms => {
                Ok((refreshed, u))
            }
            _ => {
                self.revoke_family(&family.id, REASON_USER_REVOKED, ctx)
                    .await
                    .map_err(RefreshError::Storage)?;
                Err(RefreshError::UserRevoked)
            }
        }
    }
}
