//! User sessions: rotating refresh-token families, and the blocklist that
//! revokes access tokens (JWTs) before their `exp`.
//!
//! - `model`: the token format, family ids, stored rows.
//! - `rules`: what presenting a token means (rotate, replay, reuse, ...).
//! - `service`: `SessionService` (start, refresh with reuse detection and
//!   a grace window, revoke, introspect, purge).
//! - `user`: refreshing a user's session against the user's cut-off.
//! - `blocklist`: `Blocklist`, the in-process `jti` set and its sync.
//! - `revocation`: the check every access-token verification applies.

pub mod blocklist;
pub mod model;
pub mod revocation;
mod rules;
pub mod service;
mod user;

use serde::{Deserialize, Serialize};

use crate::error::Error;

pub use blocklist::{BLOCKLIST_SYNC_INTERVAL, Blocklist};
pub use model::{FamilyId, RefreshFamily, RefreshToken};
pub use revocation::SessionRevocation;
pub use service::{RefreshError, Refreshed, SessionService, TokenState, TokenStatus};
pub use user::session_access_request;

const DAY: i64 = 86_400;
pub const MAX_ABSOLUTE_SECS: i64 = 365 * DAY;
pub const MIN_LIFETIME_SECS: i64 = 60;
pub const MAX_GRACE_SECS: i64 = 30;
pub const MAX_RETENTION_SECS: i64 = 90 * DAY;
/// Enough for every device and browser a person uses; small enough that
/// one account cannot fill the sessions table.
pub const DEFAULT_MAX_PER_USER: u32 = 100;
pub const MAX_MAX_PER_USER: u32 = 10_000;

/// Session lifetimes, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// A family dies this long after login, however active.
    pub absolute_lifetime_secs: i64,
    /// A family dies when not refreshed for this long.
    pub idle_timeout_secs: i64,
    /// How long a just-used token may be presented again and get the same
    /// successor (a client retrying after a lost response). 0 disables it.
    pub grace_secs: i64,
    /// How long dead families are kept (for introspection and audits)
    /// before `purge_expired` deletes them.
    pub retention_secs: i64,
    /// Live sessions one user may hold; a login past it ends the oldest.
    pub max_per_user: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            absolute_lifetime_secs: 30 * DAY,
            idle_timeout_secs: 7 * DAY,
            grace_secs: 0,
            retention_secs: 7 * DAY,
            max_per_user: DEFAULT_MAX_PER_USER,
        }
    }
}

impl SessionConfig {
    pub fn validate(self) -> Result<Self, Error> {
        if !(MIN_LIFETIME_SECS..=MAX_ABSOLUTE_SECS).contains(&self.absolute_lifetime_secs) {
            return Err(Error::invalid(
                "sessions.absolute_lifetime_secs",
                format!("must be between {MIN_LIFETIME_SECS} and {MAX_ABSOLUTE_SECS}"),
            ));
        }
        if !(MIN_LIFETIME_SECS..=self.absolute_lifetime_secs).contains(&self.idle_timeout_secs) {
            return Err(Error::invalid(
                "sessions.idle_timeout_secs",
                format!("must be between {MIN_LIFETIME_SECS} and the absolute lifetime"),
            ));
        }
        if !(0..=MAX_GRACE_SECS).contains(&self.grace_secs) {
            return Err(Error::invalid(
                "sessions.grace_secs",
                format!("must be between 0 and {MAX_GRACE_SECS}"),
            ));
        }
        if !(0..=MAX_RETENTION_SECS).contains(&self.retention_secs) {
            return Err(Error::invalid(
                "sessions.retention_secs",
                format!("must be between 0 and {MAX_RETENTION_SECS}"),
            ));
        }
        if !(1..=MAX_MAX_PER_USER).contains(&self.max_per_user) {
            return Err(Error::invalid(
                "sessions.max_per_user",
                format!("must be between 1 and {MAX_MAX_PER_USER}"),
            ));
        }
        Ok(self)
    }
}

/// Who asked, for the audit entry a change writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditContext {
    /// A key id, a user or client id, or `system`.
    pub actor: String,
    pub request_id: Option<String>,
}

impl AuditContext {
    pub fn new(actor: impl Into<String>, request_id: Option<String>) -> Self {
        Self {
            actor: actor.into(),
            request_id,
        }
    }

    /// keygate itself (maintenance tasks).
    pub fn system() -> Self {
        Self::new("system", None)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_are_valid_and_bounds_hold() {
        let d = SessionConfig::default().validate().unwrap();
        assert_eq!(d.grace_secs, 0);
        assert_eq!(d.absolute_lifetime_secs, 30 * DAY);
        assert_eq!(d.idle_timeout_secs, 7 * DAY);
        let bad = [
            SessionConfig {
                grace_secs: 31,
                ..d
            },
            SessionConfig {
                grace_secs: -1,
                ..d
            },
            SessionConfig {
                idle_timeout_secs: 31 * DAY,
                ..d
            },
            SessionConfig {
                idle_timeout_secs: 59,
                ..d
            },
            SessionConfig {
                absolute_lifetime_secs: 366 * DAY,
                ..d
            },
            SessionConfig {
                retention_secs: -1,
                ..d
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
        assert!(
            SessionConfig {
                grace_secs: 30,
                ..d
            }
            .validate()
            .is_ok()
        );
        let parsed: SessionConfig = serde_json::from_str(r#"{"grace_secs": 5}"#).unwrap();
        assert_eq!(parsed, SessionConfig { grace_secs: 5, ..d });
        assert!(serde_json::from_str::<SessionConfig>(r#"{"grace": 5}"#).is_err());
    }
}
