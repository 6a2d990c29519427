//! What the domain needs from storage. keygate-store implements these for
//! SQLite and PostgreSQL; services hold an `Arc<dyn Store>` and never see SQL.
//!
//! Every mutating call takes the audit entry that describes it and writes both
//! in one transaction: a change is never acknowledged without its audit trail.

use async_trait::async_trait;

use crate::apikey::KeyId;
use crate::error::Error;
use crate::model::{AuditEntry, AuditFilter, KeyFilter, KeyRecord, PageRequest, SecretRecord};
use crate::pepper::KeyHash;

/// The result of a key update guarded by the record's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Written; carries the hashes of the key's secrets, read in the same
    /// transaction, so caches can drop them without another round-trip.
    Updated(Vec<KeyHash>),
    /// Someone else updated the record first (or it vanished); re-read and retry.
    Stale,
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn insert_key(
        &self,
        key: &KeyRecord,
        secret: &SecretRecord,
        audit: &AuditEntry,
    ) -> Result<(), Error>;

    async fn get_key(&self, id: &KeyId) -> Result<Option<KeyRecord>, Error>;

    /// Finds a secret by its hash, with the key it belongs to.
    async fn find_by_hash(
        &self,
        hash: &KeyHash,
    ) -> Result<Option<(SecretRecord, KeyRecord)>, Error>;

    /// Keys in creation order; each with its storage sequence for the cursor.
    async fn list_keys(
        &self,
        filter: &KeyFilter,
        page: PageRequest,
    ) -> Result<Vec<(i64, KeyRecord)>, Error>;

    /// Writes every field of `key` except `remaining` (unless `set_remaining`),
    /// and only if the stored version is `key.version - 1`.
    async fn update_key(
        &self,
        key: &KeyRecord,
        set_remaining: bool,
        audit: &AuditEntry,
    ) -> Result<UpdateOutcome, Error>;

    /// Adds `new_secret` (and records its display prefix); the key's other secrets expire at `old_expire_at`
    /// (those already expiring sooner keep their earlier time) or, when it is
    /// `None`, are deleted. Returns the key as it now is and the hashes of
    /// every secret it had before, so caches can drop them. A revoked key
    /// answers `Error::Revoked` and gets no new secret.
    async fn rotate_secret(
        &self,
        id: &KeyId,
        new_secret: &SecretRecord,
        new_prefix: &str,
        old_expire_at: Option<i64>,
        audit: &AuditEntry,
    ) -> Result<(KeyRecord, Vec<KeyHash>), Error>;

    /// Marks the key revoked (idempotent; the first time is kept). Returns the
    /// key as it now is and its secrets' hashes, read in the same transaction.
    async fn revoke_key(
        &self,
        id: &KeyId,
        at: i64,
        audit: &AuditEntry,
    ) -> Result<(KeyRecord, Vec<KeyHash>), Error>;

    async fn secret_hashes(&self, id: &KeyId) -> Result<Vec<KeyHash>, Error>;

    /// Atomically takes one usage credit. `Ok(Some(left))` after taking one,
    /// `Ok(None)` when none were left.
    async fn take_credit(&self, id: &KeyId) -> Result<Option<i64>, Error>;

    /// Records last use times in one batch; an older time never overwrites a newer one.
    async fn touch_last_used(&self, batch: &[(KeyId, i64)]) -> Result<(), Error>;

    async fn count_keys(&self) -> Result<u64, Error>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, entries: &[AuditEntry]) -> Result<(), Error>;
    /// Newest first; `page.after` is the sequence of the last entry seen.
    async fn list_audit(
        &self,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Vec<AuditEntry>, Error>;
}

/// An API key's HMAC request-signing secret, sealed under the master key
/// (aad `hmac-secret:<key id>`). Never hashed: it must stay usable.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacSecretRecord {
    pub key_id: KeyId,
    pub sealed: Vec<u8>,
    pub created_at: i64,
}

impl std::fmt::Debug for HmacSecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacSecretRecord")
            .field("key_id", &self.key_id)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait HmacSecretStore: Send + Sync {
    /// Stores the key's signing secret, replacing any previous one, with its
    /// audit entry in the same transaction. No such key answers
    /// `Error::NotFound`, a revoked one `Error::Revoked` (nothing written).
    async fn put_hmac_secret(
        &self,
        secret: &HmacSecretRecord,
        audit: &AuditEntry,
    ) -> Result<(), Error>;

    async fn get_hmac_secret(&self, id: &KeyId) -> Result<Option<HmacSecretRecord>, Error>;
}

#[async_trait]
pub trait Store: KeyStore + AuditStore + HmacSecretStore {
    /// Cheap round-trip for readiness checks.
    async fn ping(&self) -> Result<(), Error>;
    /// The backend's name, for logs and metrics.
    fn backend(&self) -> &'static str;
    /// Stores `value` under `name` unless something is stored there already;
    /// returns what is stored. Atomic across nodes.
    async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String, Error>;
}
