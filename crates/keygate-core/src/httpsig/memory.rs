//! `MemoryNonceStore`: live nonces in process memory, bounded. It serves
//! tests and benchmarks, a process that needs no memory beyond its own
//! life, and, in front of SQLite's append-only log, the one node a SQLite
//! database has: there it is the whole truth, loaded from the log at start
//! (`remember`), and a batch whose log write failed is taken back
//! (`forget`).

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use super::key_nonces::{KeyNonces, Map};
use super::replay::{NonceStore, NonceUse, NonceVerdict, quota_bucket, quota_retry_after_ms};
use crate::error::Error;

const SHARDS: usize = 16;

#[derive(Default)]
struct Shard {
    keys: Map<KeyNonces>,
}

impl Shard {
    fn sweep(&mut self, now_ms: i64) -> usize {
        let gone = self.keys.values_mut().map(|k| k.sweep(now_ms)).sum();
        self.keys.retain(|_, k| !k.is_empty());
        gone
    }

    fn key(&mut self, key: [u8; 16]) -> &mut KeyNonces {
        self.keys.entry(key).or_default()
    }
}

/// In-process, bounded. A key's nonces live in one shard, as 16-byte
/// hashes, so a long nonce costs no more memory than a short one. The bound
/// is on the whole store, not per shard, so one key may hold up to all of
/// it (its quota permitting).
pub struct MemoryNonceStore {
    shards: Vec<Mutex<Shard>>,
    len: AtomicUsize,
    capacity: usize,
}

impl MemoryNonceStore {
    /// Holds at most about `capacity` live nonces. When full of unexpired
    /// ones it refuses to record more (an error, so a 503): forgetting a
    /// live nonce would let its request be replayed.
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            len: AtomicUsize::new(0),
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `record`, without the future: the store never waits.
    pub fn record_now(&self, n: &NonceUse<'_>) -> Result<NonceVerdict, Error> {
        self.make_room(n.now_ms)?;
        let (key, nonce, now) = (hash16(n.key_id), hash16(n.nonce), n.now_ms);
        let mut shard = self.shard(&key);
        let entry = shard.key(key);
        if entry.get(&nonce).is_some_and(|until| until > now) {
            return Ok(NonceVerdict::Replayed);
        }
        let limit = usize::try_from(n.per_key_limit).unwrap_or(usize::MAX);
        if entry.len() >= limit && entry.earliest <= now {
            let freed = entry.sweep(now);
            self.len.fetch_sub(freed, Ordering::Relaxed);
        }
        if entry.len() >= limit {
            return Ok(NonceVerdict::OverQuota {
                retry_after_ms: quota_retry_after_ms(quota_bucket(entry.earliest), now),
            });
        }
        self.insert(entry, nonce, n.expires_at_ms);
        Ok(NonceVerdict::Fresh)
    }

    /// Takes in a nonce recorded before (loaded from a log), past the
    /// quota: it was admitted once already. An expired one is skipped.
    pub fn remember(
        &self,
        key_id: &str,
        nonce: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<(), Error> {
        if expires_at_ms <= now_ms {
            return Ok(());
        }
        self.make_room(now_ms)?;
        let key = hash16(key_id);
        let mut shard = self.shard(&key);
        let entry = shard.key(key);
        let nonce = hash16(nonce);
        match entry.get(&nonce) {
            Some(until) if until >= expires_at_ms => {}
            _ => self.insert(entry, nonce, expires_at_ms),
        }
        Ok(())
    }

    /// Takes back a nonce `record_now` answered Fresh for, whose request
    /// will not be served (its durable write failed).
    pub fn forget(&self, key_id: &str, nonce: &str) {
        let key = hash16(key_id);
        let mut shard = self.shard(&key);
        let Some(entry) = shard.keys.get_mut(&key) else {
            return;
        };
        if entry.remove(&hash16(nonce)) {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn shard(&self, key: &[u8; 16]) -> parking_lot::MutexGuard<'_, Shard> {
        self.shards[usize::from(key[0]) % SHARDS].lock()
    }

    fn insert(&self, entry: &mut KeyNonces, nonce: [u8; 16], expires_at_ms: i64) {
        if entry.insert(nonce, expires_at_ms) {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// At capacity, sweeps every shard; still full of live nonces, refuses.
    fn make_room(&self, now_ms: i64) -> Result<(), Error> {
        if self.len() < self.capacity {
            return Ok(());
        }
        self.sweep(now_ms);
        if self.len() >= self.capacity {
            return Err(Error::Storage(
                "the replay cache is full of live nonces; refusing rather than forgetting one"
                    .into(),
            ));
        }
        Ok(())
    }

    /// `prune`, without the future.
    pub fn prune_now(&self, now_ms: i64) -> u64 {
        self.sweep(now_ms)
    }

    fn sweep(&self, now_ms: i64) -> u64 {
        let gone: usize = self.shards.iter().map(|s| s.lock().sweep(now_ms)).sum();
        self.len.fetch_sub(gone, Ordering::Relaxed);
        gone as u64
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
        self.record_now(n)
    }

    async fn prune(&self, now_ms: i64) -> Result<u64, Error> {
        Ok(self.prune_now(now_ms))
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

    #[tokio::test]
    async fn one_key_may_fill_the_whole_store() {
        let store = MemoryNonceStore::new(64);
        for i in 0..64 {
            let n = format!("n{i}");
            let fresh = store.record(&use_of("one", &n, 100, 0)).await.unwrap();
            assert_eq!(fresh, NonceVerdict::Fresh, "{i}");
        }
        assert!(store.record(&use_of("one", "n64", 100, 0)).await.is_err());
    }

    #[tokio::test]
    async fn remembered_nonces_are_replays_and_count_against_the_quota() {
        let store = MemoryNonceStore::new(64);
        store.remember("k", "old", 25_000, 0).unwrap();
        store.remember("k", "gone", 10, 20).unwrap();
        // A later copy of a nonce keeps the later expiry.
        store.remember("k", "old", 20_000, 0).unwrap();
        assert_eq!(store.len(), 1);
        assert_eq!(
            limited(&store, "k", "old", 24_999).await,
            NonceVerdict::Replayed
        );
        assert_eq!(limited(&store, "k", "gone", 20).await, NonceVerdict::Fresh);
        assert_eq!(limited(&store, "k", "new", 20).await, NonceVerdict::Fresh);
        assert!(matches!(
            limited(&store, "k", "more", 20).await,
            NonceVerdict::OverQuota { .. }
        ));
    }

    #[tokio::test]
    async fn a_forgotten_nonce_is_fresh_again_and_frees_its_place() {
        let store = MemoryNonceStore::new(64);
        assert_eq!(limited(&store, "k", "n", 0).await, NonceVerdict::Fresh);
        store.forget("k", "n");
        store.forget("k", "never");
        store.forget("nobody", "n");
        assert!(store.is_empty());
        assert_eq!(limited(&store, "k", "n", 0).await, NonceVerdict::Fresh);
    }
}
