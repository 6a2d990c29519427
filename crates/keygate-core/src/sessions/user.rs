//! Refreshing a user's session: the token rules of `SessionService::refresh`,
//! then the user's own state, since a password change, disabling or
//! revoke-sessions must end sessions started before it.

use super::AuditContext;
use super::model::REASON_USER_REVOKED;
use super::service::{RefreshError, Refreshed, SessionService};
use crate::users::model::{UserId, UserRecord};

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
                .store
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
