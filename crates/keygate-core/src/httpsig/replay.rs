//! Replay protection: a signature's nonce is remembered until its
//! `created` time has left the acceptance window, so a captured request
//! cannot be sent again while it would still pass the time check; and a
//! per-key quota of live nonces, so one key holder cannot fill the store
//! that every other tenant's signed requests depend on.
//!
//! `NonceStore` is the seam: the server keeps nonces in its database
//! (keygate-store), where every node and every restart sees them; Redis can
//! stand behind the same trait. `MemoryNonceStore` (`memory`) holds live
//! nonces in process: SQLite's one node keeps them there in front of an
//! append-only log; it also serves tests and benchmarks.
//!
//! The quota counts nonces by the 10-second bucket their expiry falls in
//! ([`quota_bucket`]): a store sums a key's live buckets rather than
//! counting its rows, so the check costs the same at any volume. A bucket
//! counts until it has wholly passed, so the count is at most 10 s late in
//! freeing room: on the safe side.

use async_trait::async_trait;

use crate::error::Error;

/// Width of the buckets the per-key quota counts nonces in.
pub const QUOTA_BUCKET_MS: i64 = 10_000;

/// The bucket a nonce expiring at `expires_at_ms` is counted in.
pub fn quota_bucket(expires_at_ms: i64) -> i64 {
    expires_at_ms.div_euclid(QUOTA_BUCKET_MS)
}

/// When the oldest live bucket `first` stops counting, from `now_ms`.
pub fn quota_retry_after_ms(first: i64, now_ms: i64) -> i64 {
    ((first + 1) * QUOTA_BUCKET_MS - now_ms).max(1)
}

/// One nonce to record.
#[derive(Debug, Clone, Copy)]
pub struct NonceUse<'a> {
    pub key_id: &'a str,
    pub nonce: &'a str,
    /// When it may be forgotten: its signature is dead by then.
    pub expires_at_ms: i64,
    /// When its signature says it was made (`created`): a shared store
    /// that lost its memory refuses signatures made before the loss.
    pub created_ms: i64,
    pub now_ms: i64,
    /// Most live nonces the key may hold (`hmac_nonces_per_key`).
    pub per_key_limit: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceVerdict {
    /// New: recorded, the request may pass.
    Fresh,
    /// Seen before and not expired: a replay.
    Replayed,
    /// The key already holds its quota of live nonces; nothing was
    /// recorded. Room frees up within `retry_after_ms`.
    OverQuota { retry_after_ms: i64 },
    /// Signed before the store's epoch: a shared store that lost its
    /// memory cannot tell whether this nonce was used, so a signature made
    /// before the loss must be made again. Nothing was recorded.
    BeforeEpoch,
}

#[async_trait]
pub trait NonceStore: Send + Sync {
    /// Records the nonce unless it is live already or its key is at its
    /// quota. Atomic across every server sharing the store: of two
    /// concurrent uses of one nonce, exactly one is `Fresh`. A store that
    /// cannot answer returns an error: never guess `Fresh`.
    async fn record(&self, nonce: &NonceUse<'_>) -> Result<NonceVerdict, Error>;

    /// Forgets what expired by `now_ms`; answers how many nonces went.
    async fn prune(&self, now_ms: i64) -> Result<u64, Error>;
}
