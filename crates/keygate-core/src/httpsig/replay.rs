//! Replay protection: a signature's nonce is remembered until its
//! `created` time has left the acceptance window, so a captured request
//! cannot be sent again while it would still pass the time check; and a
//! per-key quota of live nonces, so one key holder cannot fill the store
//! that every other tenant's signed requests depend on.
//!
//! `NonceStore` is the seam: the server keeps nonces in its database
//! (keygate-store), where every node and every restart sees them; Redis can
//! stand behind the same trait. `MemoryNonceStore` serves tests and
//! benchmarks, and a process that needs no memory beyond its own life.
//!
//! The quota counts nonces by the 10-second bucket their expiry falls in
//! ([`quota_bucket`]): a store sums a key's live buckets rather than
//! counting its rows, so the check costs the same at any volume. A bucket
//! counts until it has wholly passed, so the count is at most 10 s late in
//! freeing room: on the safe side.

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

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

const SHARDS: usize = 16;

#[derive(Default)]
struct KeyNonces {
    /// Nonce hash to expiry.
    live: HashMap<[u8; 16], i64>,
    /// The smallest expiry in `live` (or later): no sweep before it.
    earliest: i64,
}

#[derive(Default)]
struct Shard {
    keys: HashMap<[u8; 16], KeyNonces>,
    len: usize,
}

impl Shard {
    fn sweep(&mut self, now_ms: i64) -> u64 {
        let before = self.len;
        for k in self.keys.values_mut() {
            k.live.retain(|_, until| *until > now_ms);
            k.earliest = k.live.values().copied().min().unwrap_or(i64::MAX);
        }
        self.keys.retain(|_, k| !k.live.is_empty());
        self.len = self.keys.values().map(|k| k.live.len()).sum();
        (before - self.len) as u64
    }
}

/// In-process, bounded. A key's nonces live in one shard, as 16-byte
/// hashes, so a long nonce costs no more memory than a short one.
pub struct MemoryNonceStore {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

impl MemoryNonceStore {
    /// Holds at most about `capacity` live nonces. When full of unexpired
    /// ones it refuses to record more (an error, so a 503): forgetting a
    /// live nonce would let its request be replayed.
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryNonceStore {
    fn default() -> Self {
        Self::new(1_000_000)
    }
}

fn hash16(text: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&Sha256::digest(text.as_bytes())[..16]);
    out
}

#[async_trait]
impl NonceStore for MemoryNonceStore {
    async fn record(&self, n: &NonceUse<'_>) -> Result<NonceVerdict, Error> {
        let (key, nonce, now) = (hash16(n.key_id), hash16(n.nonce), n.now_ms);
        let mut shard = self.shards[usize::from(key[0]) % SHARDS].lock();
        if shard.len >= self.per_shard {
            shard.sweep(now);
            if shard.len >= self.per_shard {
                return Err(Error::Storage(
                    "the replay cache is full of live nonces; refusing rather than forgetting one"
                        .into(),
                ));
            }
        }
        let Shard { keys, len } = &mut *shard;
        let entry = keys.entry(key).or_insert_with(|| KeyNonces {
            live: HashMap::new(),
            earliest: i64::MAX,
        });
        if entry.live.get(&nonce).is_some_and(|until| *until > now) {
            return Ok(NonceVerdict::Replayed);
        }
        let limit = usize::try_from(n.per_key_limit).unwrap_or(usize::MAX);
        let mut freed = 0;
        if entry.live.len() >= limit && entry.earliest <= now {
            let before = entry.live.len();
            entry.live.retain(|_, until| *until > now);
            entry.earliest = entry.live.values().copied().min().unwrap_or(i64::MAX);
            freed = before - entry.live.len();
        }
        if entry.live.len() >= limit {
            let first = quota_bucket(entry.earliest);
            *len -= freed;
            return Ok(NonceVerdict::OverQuota {
                retry_after_ms: quota_retry_after_ms(first, now),
            });
        }
        let added = usize::from(entry.live.insert(nonce, n.expires_at_ms).is_none());
        entry.earliest = entry.earliest.min(n.expires_at_ms);
        *len = *len + added - freed;
        Ok(NonceVerdict::Fresh)
    }

    async fn prune(&self, now_ms: i64) -> Result<u64, Error> {
        Ok(self.shards.iter().map(|s| s.lock().sweep(now_ms)).sum())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn use_of<'a>(key_id: &'a str, nonce: &'a str, expires: i64, now: i64) -> NonceUse<'a> {
        NonceUse {
            key_id,
            nonce,
            expires_at_ms: expires,
            created_ms: now,
            now_ms: now,
            per_key_limit: 1000,
        }
    }

    #[tokio::test]
    async fn remembers_until_expiry_and_per_key() {
        let store = MemoryNonceStore::new(64);
        let fresh = |v: NonceVerdict| v == NonceVerdict::Fresh;
        assert!(fresh(
            store
                .record(&use_of("key_a", "n1", 1_000, 0))
                .await
                .unwrap()
        ));
        assert_eq!(
            store
                .record(&use_of("key_a", "n1", 1_000, 999))
                .await
                .unwrap(),
            NonceVerdict::Replayed
        );
        assert!(fresh(
            store
                .record(&use_of("key_b", "n1", 1_000, 999))
                .await
                .unwrap()
        ));
        assert!(fresh(
            store
                .record(&use_of("key_a", "n1", 2_000, 1_000))
                .await
                .unwrap()
        ));
        assert_eq!(store.len(), 2);
        assert_eq!(store.prune(2_000).await.unwrap(), 2);
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn full_of_live_nonces_fails_closed_then_recovers() {
        let store = MemoryNonceStore::new(SHARDS);
        let mut refused = false;
        for i in 0..(SHARDS * 8) {
            let n = format!("n{i}");
            if store.record(&use_of("k", &n, 100, 0)).await.is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused, "a full cache must refuse, not forget");
        // Once the entries expire, room is made again.
        let later = store.record(&use_of("k", "later", 500, 200)).await;
        assert_eq!(later.unwrap(), NonceVerdict::Fresh);
    }

    async fn limited(store: &MemoryNonceStore, key: &str, nonce: &str, now: i64) -> NonceVerdict {
        let n = NonceUse {
            per_key_limit: 3,
            ..use_of(key, nonce, 25_000, now)
        };
        store.record(&n).await.unwrap()
    }

    #[tokio::test]
    async fn a_key_at_its_quota_is_refused_and_others_are_not() {
        let store = MemoryNonceStore::new(10_000);
        for n in ["n0", "n1", "n2"] {
            assert_eq!(limited(&store, "greedy", n, 0).await, NonceVerdict::Fresh);
        }
        // Refused without being recorded; a replay is still a replay.
        assert_eq!(
            limited(&store, "greedy", "n3", 0).await,
            NonceVerdict::OverQuota {
                retry_after_ms: 30_000
            }
        );
        assert_eq!(
            limited(&store, "greedy", "n0", 0).await,
            NonceVerdict::Replayed
        );
        assert_eq!(limited(&store, "other", "n3", 0).await, NonceVerdict::Fresh);
        assert_eq!(store.len(), 4);
        // Once the nonces expire the key has room again.
        assert_eq!(
            limited(&store, "greedy", "n3", 25_000).await,
            NonceVerdict::Fresh
        );
        assert_eq!(store.len(), 2);
    }
}
