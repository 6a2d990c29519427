//! What dashboard sessions need from storage: one row per session, found by
//! the hash of its token (never the token itself).

use async_trait::async_trait;

use crate::error::Error;
use crate::keys::apikey::KeyId;
use crate::keys::pepper::KeyHash;
use crate::model::AuditEntry;

/// One dashboard session as stored. Times are Unix seconds.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsoleSessionRecord {
    /// HMAC of the session token under the pepper (see `ConsoleSessions`).
    pub token_hash: KeyHash,
    /// The admin key that logged in.
    pub key_id: KeyId,
    /// The stored hash of the key secret presented at login: once that
    /// secret is rotated away the session ends with it.
    pub secret_hash: KeyHash,
    pub created_at: i64,
    /// Last request; the idle expiry counts from here.
    pub last_seen_at: i64,
    /// The absolute expiry.
    pub expires_at: i64,
}

impl std::fmt::Debug for ConsoleSessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSessionRecord")
            .field("key_id", &self.key_id)
            .field("created_at", &self.created_at)
            .field("last_seen_at", &self.last_seen_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait ConsoleStore: Send + Sync {
    /// Stores a new session with its audit entry, in one transaction.
    async fn insert_console_session(
        &self,
        session: &ConsoleSessionRecord,
        audit: &AuditEntry,
    ) -> Result<(), Error>;

    async fn get_console_session(
        &self,
        token_hash: &KeyHash,
    ) -> Result<Option<ConsoleSessionRecord>, Error>;

    /// Moves `last_seen_at` forward (never back).
    async fn touch_console_session(&self, token_hash: &KeyHash, at: i64) -> Result<(), Error>;

    /// Deletes a session; `true` when it existed. The audit entry, if any,
    /// is written in the same transaction, and only when a row went.
    async fn delete_console_session(
        &self,
        token_hash: &KeyHash,
        audit: Option<&AuditEntry>,
    ) -> Result<bool, Error>;

    /// Deletes sessions past their absolute expiry (`expires_at <= now`) or
    /// idle since `idle_before` (`last_seen_at <= idle_before`); returns how many.
    async fn purge_console_sessions(&self, now: i64, idle_before: i64) -> Result<u64, Error>;
}
