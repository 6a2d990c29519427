//! What the domain needs from storage. keygate-store implements these for
//! SQLite and PostgreSQL. Each service holds the traits it uses (`Arc<dyn
//! KeyStore>`, `Arc<dyn UserStore>`, ...), never the whole `Store`, so one
//! part can live elsewhere (Redis, many nodes); an `Arc<dyn Store>` passes
//! for any of them. Services never see SQL.
//!
//! Every mutating call takes the audit entry that describes it and writes both
//! in one transaction: a change is never acknowledged without its audit trail.

use async_trait::async_trait;

use crate::error::Error;
use crate::jwt::SigningKeyRecord;
use crate::keys::apikey::KeyId;
use crate::keys::code::VerifyCode;
use crate::keys::pepper::KeyHash;
use crate::model::{
    AuditEntry, AuditFilter, AuditRow, AuditTally, KeyCounts, KeyFilter, KeyRecord, PageRequest,
    SecretRecord, Tenant,
};
use crate::sessions::model::{
    BlockedJti, FamilyId, PresentedToken, PurgeCutoff, RefreshDecider, RefreshFamily,
    RefreshTokenRecord,
};
use crate::users::model::{UserFilter, UserId, UserRecord};
use crate::users::password::PhcHash;

/// The result of a key update guarded by the record's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Written; carries the hashes of the key's secrets, read in the same
    /// transaction, so caches can drop them without another round-trip.
    Updated(Vec<KeyHash>),
    /// Someone else updated the record first (or it vanished); re-read and retry.
    Stale,
}

/// The cap on live keys (neither revoked nor expired at `now`, Unix
/// seconds) of one tenant, keys without a tenant counting as one more. The
/// store counts and inserts under one lock per tenant, so concurrent
/// creates never overshoot it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCap {
    pub max_live: u32,
    pub now: i64,
}

/// The cap on live sessions of one user: families not revoked, before
/// their absolute expiry (`now_ms`) and last used after `idle_since_ms`
/// (the same rule as `sessions::rules::expired`).
/// At the cap, a new family ends the oldest live ones (reason
/// `session_limit`) in the same transaction, under one lock per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCap {
    pub max_live: u32,
    pub now_ms: i64,
    pub idle_since_ms: i64,
}

/// Builds a new session's audit entry from the sessions it ended.
pub type SessionAudit<'a> = dyn Fn(&[FamilyId]) -> Result<AuditEntry, Error> + Send + Sync + 'a;

/// Why a session ended because its user started one too many.
pub const REASON_SESSION_LIMIT: &str = "session_limit";

#[async_trait]
pub trait KeyStore: Send + Sync {
    /// With a cap, answers `Error::QuotaExceeded` and writes nothing when
    /// the key's tenant already has `max_live` live keys.
    async fn insert_key(
        &self,
        key: &KeyRecord,
        secret: &SecretRecord,
        audit: &AuditEntry,
        cap: Option<KeyCap>,
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

    /// Keys of `tenant` (every key when `None`) by status at `now`, in one
    /// query; `expiring` counts active keys expiring before `expiring_before`.
    async fn count_keys_by_status(
        &self,
        tenant: Option<&Tenant>,
        now: i64,
        expiring_before: i64,
    ) -> Result<KeyCounts, Error>;
}

/// One row of `key_usage`: how many verifications of `key_id` answered
/// `code` during the hour starting at `hour` (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageCount {
    pub key_id: KeyId,
    pub hour: i64,
    pub code: VerifyCode,
    pub count: u64,
}

/// Verification counts per key, hour and outcome (`key_usage`).
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Adds each row's count to the stored one (or inserts it); all or nothing.
    async fn add_usage(&self, rows: &[UsageCount]) -> Result<(), Error>;
    /// The rows of `keys` with `since <= hour < until`, in one query.
    async fn usage(&self, keys: &[KeyId], since: i64, until: i64)
    -> Result<Vec<UsageCount>, Error>;
    /// Deletes rows of hours before `before` (Unix seconds); returns how many.
    async fn purge_usage(&self, before: i64) -> Result<u64, Error>;
    /// Every key's counts summed per hour and code, `since <= hour < until`,
    /// of one tenant's keys (None: all keys), in one query: the dashboard's
    /// overview over any number of keys.
    async fn usage_totals(
        &self,
        tenant: Option<&Tenant>,
        since: i64,
        until: i64,
    ) -> Result<Vec<(i64, VerifyCode, u64)>, Error>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, entries: &[AuditEntry]) -> Result<(), Error>;
    /// Adds each tally to the row holding its key (count summed, first and
    /// last times widened), or writes it as a new row; all or nothing.
    async fn add_audit_tallies(&self, tallies: &[AuditTally]) -> Result<(), Error>;
    /// Deletes at most `limit` rows dated before `before` (Unix seconds);
    /// returns how many went.
    async fn prune_audit(&self, before: i64, limit: u32) -> Result<u64, Error>;
    /// Newest first; `page.after` is the sequence of the last entry seen.
    async fn list_audit(
        &self,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Vec<AuditRow>, Error>;
}

/// Users and their password hashes. The hash travels apart from the record.
#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>, Error>;
    /// Adds a key with its audit entry. `Ok(false)` when a key of the same
    /// generation exists already: another node rotated first.
    async fn insert_signing_key(
        &self,
        key: &SigningKeyRecord,
        audit: &AuditEntry,
    ) -> Result<bool, Error>;
    /// Deletes keys that left the JWKS for good.
    async fn delete_signing_keys(&self, kids: &[String]) -> Result<(), Error>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// A username already taken, ignoring case, answers `Error::AlreadyExists`
    /// and writes nothing.
    async fn insert_user(
        &self,
        user: &UserRecord,
        password: &PhcHash,
        audit: &AuditEntry,
    ) -> Result<(), Error>;

    async fn get_user(&self, id: &UserId) -> Result<Option<UserRecord>, Error>;

    /// By normalized (lowercase) username, with the password hash: for login.
    async fn find_user_by_username(
        &self,
        normalized: &str,
    ) -> Result<Option<(UserRecord, PhcHash)>, Error>;

    /// Users in creation order; each with its storage sequence for the cursor.
    async fn list_users(
        &self,
        filter: &UserFilter,
        page: PageRequest,
    ) -> Result<Vec<(i64, UserRecord)>, Error>;

    /// Writes roles, claims, disabled, the cut-off, `updated_at` and
    /// `version` (and the password hash when given), only if the stored
    /// version is `user.version - 1`. `false`: someone else wrote first (or
    /// the user vanished); nothing was written.
    async fn update_user(
        &self,
        user: &UserRecord,
        password: Option<&PhcHash>,
        audit: &AuditEntry,
    ) -> Result<bool, Error>;
}

/// Refresh-token families and the access-token (`jti`) blocklist.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new family, first ending the user's oldest live families
    /// that would put it past the cap; answers the ended families' ids.
    async fn insert_family(
        &self,
        family: &RefreshFamily,
        first: &RefreshTokenRecord,
        cap: SessionCap,
        audit: &SessionAudit<'_>,
    ) -> Result<Vec<FamilyId>, Error>;

    async fn get_family(&self, id: &FamilyId) -> Result<Option<RefreshFamily>, Error>;

    /// The user's families, newest first, revoked and expired ones included.
    async fn families_of_user(
        &self,
        user_id: &str,
        limit: u32,
    ) -> Result<Vec<RefreshFamily>, Error>;

    /// A token and its family, read without consuming anything.
    async fn find_refresh_token(
        &self,
        hash: &KeyHash,
    ) -> Result<Option<(RefreshTokenRecord, RefreshFamily)>, Error>;

    /// The refresh, in one write transaction: reads the token, locks its
    /// family, reads the family's newest token, asks `decide` what to write
    /// and writes it (a rotation's use of the token is a compare-and-set, so
    /// a token is consumed at most once). `None` for an unknown hash; else
    /// what was read and the family as it is after the step.
    async fn use_refresh_token(
        &self,
        hash: &KeyHash,
        decide: &RefreshDecider<'_>,
    ) -> Result<Option<(PresentedToken, RefreshFamily)>, Error>;

    /// Revokes a family (idempotent; the first time and reason are kept) and
    /// returns it as it now is. Ordered with refreshes of the same family.
    async fn revoke_family(
        &self,
        id: &FamilyId,
        at_ms: i64,
        reason: &str,
        audit: &AuditEntry,
    ) -> Result<RefreshFamily, Error>;

    /// Revokes every live family of a user; returns how many.
    async fn revoke_user_families(
        &self,
        user_id: &str,
        at_ms: i64,
        reason: &str,
        audit: &AuditEntry,
    ) -> Result<u64, Error>;

    /// Deletes the families past `cutoff` and their tokens; returns how many families.
    async fn purge_families(&self, cutoff: PurgeCutoff, audit: &AuditEntry) -> Result<u64, Error>;

    /// Adds a blocked `jti` (idempotent). `true` when it was new; the audit
    /// entry is written only then.
    async fn block_jti(&self, entry: &BlockedJti, audit: &AuditEntry) -> Result<bool, Error>;

    /// Entries with `seq > after_seq` or added at or after `added_since_ms`
    /// (to catch writes that committed out of sequence order), still live
    /// after `live_after` (Unix seconds), in sequence order.
    async fn blocked_jtis(
        &self,
        after_seq: i64,
        added_since_ms: i64,
        live_after: i64,
        limit: u32,
    ) -> Result<Vec<BlockedJti>, Error>;

    /// Deletes entries that expired before `expired_before` (Unix seconds).
    async fn purge_blocked_jtis(
        &self,
        expired_before: i64,
        audit: &AuditEntry,
    ) -> Result<u64, Error>;
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

pub use crate::clients::store::ClientStore;
pub use crate::console::store::{ConsoleSessionRecord, ConsoleStore};

#[async_trait]
pub trait Store:
    KeyStore
    + AuditStore
    + SigningKeyStore
    + UserStore
    + SessionStore
    + HmacSecretStore
    + UsageStore
    + ConsoleStore
    + ClientStore
{
    /// Cheap round-trip for readiness checks.
    async fn ping(&self) -> Result<(), Error>;
    /// The backend's name, for logs and metrics.
    fn backend(&self) -> &'static str;
    /// Stores `value` under `name` unless something is stored there already;
    /// returns what is stored. Atomic across nodes.
    async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String, Error>;
}
