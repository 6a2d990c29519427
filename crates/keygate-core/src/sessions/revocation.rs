//! The revocation rule every verification of a keygate access token applies
//! after the signature and claims: a blocklisted `jti` is refused, and so is
//! a user token issued before its user's session cut-off (password change,
//! disabling, revoke-sessions) or whose user no longer exists.

use std::sync::Arc;

use async_trait::async_trait;
use keygate_verify::{Claims, TokenKind};

use super::Blocklist;
use crate::error::Error;
use crate::freshness::Freshness;
use crate::jwt::RevocationCheck;
use crate::users::UserService;
use crate::users::model::{UserId, issued_before_cutoff};

pub struct SessionRevocation {
    blocklist: Arc<Blocklist>,
    users: Arc<UserService>,
    freshness: Arc<Freshness>,
}

impl SessionRevocation {
    pub fn new(blocklist: Arc<Blocklist>, users: Arc<UserService>) -> Self {
        Self {
            blocklist,
            users,
            freshness: Arc::new(Freshness::always()),
        }
    }

    /// Gates the blocklist and the cut-off cache on `freshness` (many nodes).
    pub fn with_freshness(mut self, freshness: Arc<Freshness>) -> Self {
        self.freshness = freshness;
        self
    }
}

#[async_trait]
impl RevocationCheck for SessionRevocation {
    async fn is_revoked(&self, claims: &Claims) -> Result<bool, Error> {
        // Both the blocklist and the cut-offs are caches the feed keeps
        // exact; past S unconfirmed they may miss a revocation.
        self.freshness.ensure().await?;
        if claims
            .jti
            .as_deref()
            .is_some_and(|jti| self.blocklist.is_blocked(jti))
        {
            return Ok(true);
        }
        // Only user tokens meet the users table: a client token's `sub`
        // is its key id. A token without a kind (older than the claim) is
        // treated as a user's, which can only refuse more.
        if matches!(claims.kind(), Ok(TokenKind::Client)) {
            return Ok(false);
        }
        let Some(user) = claims.sub.as_deref().and_then(|s| UserId::parse(s).ok()) else {
            return Ok(false);
        };
        let Some((cutoff_ms, disabled)) = self.users.session_cutoff(&user).await? else {
            return Ok(true);
        };
        #[allow(clippy::cast_possible_truncation)]
        let iat = claims.iat.map_or(0, |t| t.as_f64().floor() as i64);
        Ok(disabled || issued_before_cutoff(iat, cutoff_ms))
    }
}
