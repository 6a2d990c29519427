//! The in-process cache of verified keys, keyed by the key's stored hash.
//!
//! Entries live at most `ttl` and are dropped on revoke, rotate and update
//! before those calls return. A verifier that missed the cache inserts what it
//! read only if no invalidation happened meanwhile (the epoch check), so a
//! read that raced a revoke can never put the pre-revoke record back.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::RwLock;

use crate::keys::cache_map::HashMapCache;
use crate::keys::pepper::KeyHash;
use crate::keys::usage_counts::KeyCounter;
use crate::model::KeyRecord;

/// A key as the verifier needs it, with the expiry of the secret that matched.
///
/// The record is inline rather than behind another pointer, and `repr(C)`
/// puts what a hit reads first: with 100,000 keys cached most hits find the
/// entry cold, and each cache line touched is a memory miss.
#[derive(Debug)]
#[repr(C)]
pub struct CachedKey {
    cached_at_ms: i64,
    pub secret_expires_at: Option<i64>,
    /// Last time (Unix seconds) this key's use was queued for `last_used_at`.
    last_touch: AtomicI64,
    /// The key's verification counts (when usage counting is on): shared by
    /// every entry of the key, so a hit counts with one atomic add.
    pub usage: Option<Arc<KeyCounter>>,
    pub record: KeyRecord,
}

impl CachedKey {
    pub fn new(
        record: KeyRecord,
        secret_expires_at: Option<i64>,
        now_ms: i64,
        usage: Option<Arc<KeyCounter>>,
    ) -> Self {
        let last = record.last_used_at.unwrap_or(i64::MIN / 2);
        Self {
            usage,
            record,
            secret_expires_at,
            cached_at_ms: now_ms,
            last_touch: AtomicI64::new(last),
        }
    }

    /// True when the use at `now_secs` should be recorded: at most once per
    /// `every_secs` per entry.
    pub fn claim_touch(&self, now_secs: i64, every_secs: i64) -> bool {
        let last = self.last_touch.load(Ordering::Relaxed);
        now_secs - last >= every_secs
            && self
                .last_touch
                .compare_exchange(last, now_secs, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

pub enum Lookup {
    Hit(Arc<CachedKey>),
    /// Recently looked up and not found.
    Negative,
    Miss,
}

#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    pub capacity: usize,
    pub ttl_ms: i64,
    /// 0 disables negative caching.
    pub negative_ttl_ms: i64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            ttl_ms: 30_000,
            negative_ttl_ms: 5_000,
        }
    }
}

/// Proof that no invalidation has happened since it was taken. Two
/// counters: a key's creation can only make a remembered NOT_FOUND wrong,
/// never a cached record (a record is read after its key's commit), so it
/// moves only the negative one and leaves racing positive fills alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch {
    records: u64,
    negative: u64,
}

impl Epoch {
    /// Whether no cached record was invalidated between the two.
    pub fn same_records(&self, other: &Epoch) -> bool {
        self.records == other.records
    }
}

pub struct KeyCache {
    positive: HashMapCache<Arc<CachedKey>>,
    negative: HashMapCache<i64>,
    config: CacheConfig,
    epoch: AtomicU64,
    negative_epoch: AtomicU64,
    // Taken for writing by invalidations and for reading by inserts, so an
    // insert cannot slip between an invalidation's epoch bump and its removal.
    gate: RwLock<()>,
}

impl KeyCache {
    pub fn new(config: CacheConfig) -> Self {
        let cap = config.capacity.max(16);
        Self {
            positive: HashMapCache::new(cap),
            negative: HashMapCache::new((cap / 4).max(16)),
            config,
            epoch: AtomicU64::new(0),
            negative_epoch: AtomicU64::new(0),
            gate: RwLock::new(()),
        }
    }

    pub fn get(&self, hash: &KeyHash, now_ms: i64) -> Lookup {
        if let Some(entry) = self.positive.get(hash)
            && now_ms - entry.cached_at_ms < self.config.ttl_ms
        {
            return Lookup::Hit(entry);
        }
        if self.config.negative_ttl_ms > 0
            && let Some(at) = self.negative.get(hash)
            && now_ms - at < self.config.negative_ttl_ms
        {
            return Lookup::Negative;
        }
        Lookup::Miss
    }

    pub fn epoch(&self) -> Epoch {
        Epoch {
            records: self.epoch.load(Ordering::Acquire),
            negative: self.negative_epoch.load(Ordering::Acquire),
        }
    }

    pub fn insert(&self, hash: KeyHash, entry: Arc<CachedKey>, since: Epoch) {
        let _gate = self.gate.read();
        if self.epoch.load(Ordering::Acquire) == since.records {
            self.positive.insert(hash, entry);
        }
    }

    pub fn insert_negative(&self, hash: KeyHash, now_ms: i64, since: Epoch) {
        if self.config.negative_ttl_ms <= 0 {
            return;
        }
        let _gate = self.gate.read();
        if self.epoch() == since {
            self.negative.insert(hash, now_ms);
        }
    }

    /// Drops these hashes; call after the change is committed, before replying.
    pub fn invalidate(&self, hashes: &[KeyHash]) {
        let _gate = self.gate.write();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for h in hashes {
            self.positive.remove(h);
            self.negative.remove(h);
        }
    }

    /// Drops everything: used when the outcome of a write is unknown.
    pub fn invalidate_all(&self) {
        let _gate = self.gate.write();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.positive.clear();
        self.negative.clear();
    }

    /// Forgets that these hashes were unknown: they are new secrets.
    pub fn forget_negative(&self, hashes: &[KeyHash]) {
        let _gate = self.gate.write();
        self.negative_epoch.fetch_add(1, Ordering::AcqRel);
        for h in hashes {
            self.negative.remove(h);
        }
    }

    pub fn len(&self) -> usize {
        self.positive.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positive.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::apikey::{KeyEnv, KeyId};

    fn entry() -> Arc<CachedKey> {
        let record = KeyRecord {
            revoked_at: None,
            expires_at: None,
            remaining: None,
            rate_limit: None,
            tenant: None,
            scopes: Vec::new(),
            id: KeyId::generate().unwrap(),
            name: "k".into(),
            owner: "o".into(),
            metadata: Default::default(),
            env: KeyEnv::default(),
            prefix: "kg_live_x".into(),
            created_at: 0,
            updated_at: 0,
            last_used_at: None,
            version: 1,
        };
        Arc::new(CachedKey::new(record, None, 0, None))
    }

    #[test]
    fn a_creation_keeps_a_racing_record_fill_but_drops_a_racing_not_found() {
        let cache = KeyCache::new(CacheConfig::default());
        let (read, created) = ([1u8; 32], [2u8; 32]);
        let since = cache.epoch();
        cache.forget_negative(&[created]);
        cache.insert(read, entry(), since);
        cache.insert_negative(created, 0, since);
        assert!(matches!(cache.get(&read, 1), Lookup::Hit(_)));
        assert!(matches!(cache.get(&created, 1), Lookup::Miss));
    }

    #[test]
    fn an_invalidation_drops_both_kinds_of_racing_fill() {
        let cache = KeyCache::new(CacheConfig::default());
        let since = cache.epoch();
        cache.invalidate(&[[9u8; 32]]);
        cache.insert([1u8; 32], entry(), since);
        cache.insert_negative([2u8; 32], 0, since);
        assert!(matches!(cache.get(&[1u8; 32], 1), Lookup::Miss));
        assert!(matches!(cache.get(&[2u8; 32], 1), Lookup::Miss));
    }
}
