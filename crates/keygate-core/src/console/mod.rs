//! The dashboard's server-side sessions ("console" sessions).
//!
//! A person logs in with an admin key; keygate answers a random 256-bit
//! token for a cookie and stores only its HMAC under the pepper, beside the
//! key's id and the hash of the key secret that was presented. Every request
//! resumes the session: the idle and absolute expiry are checked, the idle
//! clock is moved forward, and the key is read again, so a revoked, expired
//! or rotated-away key (or one that lost the admin scope) ends the session at
//! once. The CSRF form token is a second HMAC of the session token under the
//! pepper, with its own label: a copy of the database yields neither.
//!
//! - `store`: the `ConsoleStore` seam and its row.
//! - `sessions`: `ConsoleSessions`: login (throttled per client with the
//!   user logins' throttle, audited), resume, logout, CSRF, purge.

mod sessions;
pub mod store;

use crate::error::Error;
use crate::keys::apikey::KeyId;
use crate::keys::service::Admin;
use crate::model::Tenant;
use crate::secret::SecretString;

pub use sessions::ConsoleSessions;
pub use store::{ConsoleSessionRecord, ConsoleStore};

/// Audit actions written by the dashboard's sessions.
pub const ACTION_LOGIN: &str = "dashboard.login";
pub const ACTION_LOGOUT: &str = "dashboard.logout";
/// The route named in failed logins' audit tallies.
pub const LOGIN_ROUTE: &str = "/dashboard/login";

/// How long a session lives: `idle_secs` after its last request, and never
/// past `absolute_secs` after login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleSettings {
    pub idle_secs: i64,
    pub absolute_secs: i64,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            idle_secs: 1800,
            absolute_secs: 43_200,
        }
    }
}

impl ConsoleSettings {
    /// Both at least a minute, idle no longer than absolute, absolute at
    /// most 30 days.
    pub fn validate(self) -> Result<Self, Error> {
        if !(60..=30 * 86_400).contains(&self.absolute_secs) {
            return Err(Error::invalid(
                "absolute_secs",
                "between 60 and 2592000 (30 days)",
            ));
        }
        if !(60..=self.absolute_secs).contains(&self.idle_secs) {
            return Err(Error::invalid("idle_secs", "between 60 and absolute_secs"));
        }
        Ok(self)
    }
}

/// A live session: who it is and until when.
#[derive(Debug, Clone)]
pub struct Resumed {
    /// The session's admin, to pass to the services (request id unset).
    pub admin: Admin,
    pub key_id: KeyId,
    pub tenant: Option<Tenant>,
    pub key_name: String,
    pub key_prefix: String,
    /// The absolute expiry (Unix seconds).
    pub expires_at: i64,
    /// When the session ends unless used again (Unix seconds).
    pub idle_expires_at: i64,
}

/// A successful login: the token for the cookie (shown to nobody else,
/// never logged) and the session it opens.
#[derive(Debug)]
pub struct ConsoleLogin {
    pub token: SecretString,
    pub resumed: Resumed,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Not a key keygate knows, or revoked, expired, over its limits.
    #[error("invalid key")]
    BadCredentials,
    /// A valid key without the admin scope.
    #[error("this key is not an admin key")]
    NotAdmin,
    #[error("too many failed logins; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    /// The session passed its idle or absolute expiry (it is deleted).
    #[error("the session expired")]
    Expired,
    /// No such session (never was, logged out, purged).
    #[error("no such session")]
    Unknown,
    /// The session's key was revoked, expired, rotated away or lost the
    /// admin scope (the session is deleted).
    #[error("the session's key is no longer valid")]
    KeyGone,
    #[error(transparent)]
    Store(Error),
}

impl From<Error> for ConsoleError {
    fn from(e: Error) -> Self {
        ConsoleError::Store(e)
    }
}
