//! The session steps both `/v1/auth/*` and the OAuth endpoints take:
//! minting a user's access token, rotating a refresh token, and blocklisting
//! an access token. A leaf, so the two families of endpoints share it
//! without importing each other.

use keygate_core::jwt::TokenError;
use keygate_core::sessions::{AuditContext, RefreshError, RefreshToken, session_access_request};
use keygate_core::users::model::UserRecord;

use super::AppState;

/// An access token for `user` in session `sid` (what it carries is core's
/// `session_access_request`), with its lifetime in seconds.
pub fn access_token(
    state: &AppState,
    user: &UserRecord,
    sid: &keygate_core::sessions::FamilyId,
) -> Result<(String, i64), keygate_core::Error> {
    let config = state.tokens.config();
    let now = state.tokens.clock().now_secs();
    let issued = state
        .tokens
        .issue(session_access_request(user, sid, config, now))?;
    Ok((issued.token, config.access_token_ttl))
}

/// Why a refresh failed, before any HTTP shape is chosen.
pub enum RefreshFailure {
    Invalid(&'static str),
    Storage(keygate_core::Error),
}

impl From<keygate_core::Error> for RefreshFailure {
    fn from(e: keygate_core::Error) -> Self {
        RefreshFailure::Storage(e)
    }
}

fn refusal(e: RefreshError) -> RefreshFailure {
    RefreshFailure::Invalid(match e {
        RefreshError::Storage(e) => return RefreshFailure::Storage(e),
        RefreshError::Reused => "the refresh token was already used; its session has been revoked",
        RefreshError::Expired => "the session has expired",
        RefreshError::Revoked => "the session is revoked",
        RefreshError::UserRevoked => "the user's sessions have been revoked",
        RefreshError::Invalid => "the refresh token is not valid",
    })
}

/// Rotates `presented` and mints an access token for its user (the rules,
/// including the user's cut-off, are `SessionService::refresh_user`'s).
pub async fn rotate(
    state: &AppState,
    presented: &str,
    ctx: &AuditContext,
) -> Result<(RefreshToken, String, i64), RefreshFailure> {
    let (refreshed, user) = state
        .sessions
        .refresh_user(presented, ctx)
        .await
        .map_err(refusal)?;
    let (access, expires_in) = access_token(state, &user, &refreshed.family.id)?;
    Ok((refreshed.token, access, expires_in))
}

/// Blocklists a token keygate signed until its `exp`, even one not yet
/// valid; anything else is ignored (RFC 7009: nothing to revoke).
pub async fn block_access_token(
    state: &AppState,
    token: &str,
    ctx: &AuditContext,
) -> Result<bool, keygate_core::Error> {
    match state.tokens.verify_for_revocation(token) {
        Ok((jti, exp)) => {
            state.blocklist.block(&jti, exp, ctx).await?;
            Ok(true)
        }
        Err(TokenError::Storage(e)) => Err(e),
        Err(_) => Ok(false),
    }
}
