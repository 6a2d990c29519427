//! Tokens verified before, keyed by (audience, token): a client that reuses
//! its token pays one keyed hash instead of a signature check. A hit still
//! goes through the expiry and revocation checks; only the signature and
//! the parsing are skipped.
//!
//! The hash is foldhash (its `quality` variant) under a random seed made
//! per cache. It is not what keeps one token from being taken for
//! another: each entry keeps the audience and token it was made for, and
//! a hit must match both byte for byte, so a colliding token is a miss and
//! gets the full check. Nor can a client crowd a shard: only tokens that
//! passed the full check are stored, and their bytes are keygate's
//! signatures, not the client's choice. (A SHA-256 of the token did both
//! jobs, at 31.8k instructions per request under callgrind; std's
//! SipHash-1-3 then cost 1.5k for a session token, foldhash a tenth of
//! that. The price of this way is the token's bytes kept beside its
//! claims.)

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Arc;

use foldhash::quality::RandomState;

use parking_lot::Mutex;

const SHARDS: usize = 16;

/// Where (audience, token) is looked up and stored: its keyed hash, and
/// the pair itself to match an entry against.
pub(crate) struct TokenKey<'a> {
    hash: u64,
    audience: &'a str,
    token: &'a str,
}

pub(crate) struct Cached<V> {
    pub value: Arc<V>,
    /// `exp` in whole seconds, checked on every hit.
    pub exp: i64,
}

// By hand: a derive would demand `V: Clone`, but only the Arc is cloned.
impl<V> Clone for Cached<V> {
    fn clone(&self) -> Self {
        Self {
            value: Arc::clone(&self.value),
            exp: self.exp,
        }
    }
}

/// An entry and the (audience, token) it was verified for, as the
/// audience followed by the token, in one allocation.
struct Entry<V> {
    audience_len: usize,
    pair: Box<str>,
    cached: Cached<V>,
}

impl<V> Entry<V> {
    fn new(key: &TokenKey<'_>, cached: Cached<V>) -> Self {
        let mut pair = String::with_capacity(key.audience.len() + key.token.len());
        pair.push_str(key.audience);
        pair.push_str(key.token);
        Self {
            audience_len: key.audience.len(),
            pair: pair.into_boxed_str(),
            cached,
        }
    }

    fn is_for(&self, key: &TokenKey<'_>) -> bool {
        self.audience_len == key.audience.len()
            && self.pair.len() == key.audience.len() + key.token.len()
            && self.pair.starts_with(key.audience)
            && self.pair.ends_with(key.token)
    }
}

/// The map's own hasher: its keys are already keyed hashes, so hashing
/// them again would only add work.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the keys are u64); folded all the same.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Shard<V> = HashMap<u64, Entry<V>, BuildHasherDefault<Prehashed>>;

pub(crate) struct VerifiedCache<V> {
    keys: RandomState,
    shards: Vec<Mutex<Shard<V>>>,
    per_shard: usize,
}

impl<V> VerifiedCache<V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            keys: RandomState::default(),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: capacity.div_ceil(SHARDS),
        }
    }

    pub fn key<'a>(&self, audience: &'a str, token: &'a str) -> TokenKey<'a> {
        TokenKey {
            // A tuple of strs hashes each with its length marker, so no two
            // pairs feed the hasher the same bytes.
            hash: self.keys.hash_one((audience, token)),
            audience,
            token,
        }
    }

    fn shard(&self, hash: u64) -> &Mutex<Shard<V>> {
        // The top bits: the map's buckets come from the low ones.
        &self.shards[(hash >> 60) as usize % SHARDS]
    }

    pub fn get(&self, key: &TokenKey<'_>) -> Option<Cached<V>> {
        if self.per_shard == 0 {
            return None;
        }
        let shard = self.shard(key.hash).lock();
        let entry = shard.get(&key.hash)?;
        entry.is_for(key).then(|| entry.cached.clone())
    }

    /// Inserts, making room first: expired entries go, and if none had
    /// expired, one arbitrary entry (the keys are hashed under per-process
    /// random keys, so a client cannot aim evictions at someone else's
    /// token). A colliding entry of another token is replaced.
    pub fn insert(&self, key: &TokenKey<'_>, cached: Cached<V>, now: i64) {
        if self.per_shard == 0 {
            return;
        }
        let entry = Entry::new(key, cached);
        let mut shard = self.shard(key.hash).lock();
        if shard.len() >= self.per_shard && !shard.contains_key(&key.hash) {
            shard.retain(|_, e| e.cached.exp > now);
            if shard.len() >= self.per_shard
                && let Some(victim) = shard.keys().next().copied()
            {
                shard.remove(&victim);
            }
        }
        shard.insert(key.hash, entry);
    }

    pub fn clear(&self) {
        for shard in &self.shards {
            shard.lock().clear();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn claims(n: u32) -> Cached<u32> {
        Cached {
            value: Arc::new(n),
            exp: 10,
        }
    }

    #[test]
    fn bounded_and_keyed_by_audience_too() {
        let cache = VerifiedCache::<u32>::new(32);
        for i in 0..1000 {
            let token = format!("token-{i}");
            cache.insert(&cache.key("aud", &token), claims(7), 0);
        }
        let held: usize = cache.shards.iter().map(|s| s.lock().len()).sum();
        assert!(held <= 32, "{held}");
        cache.insert(&cache.key("x", "t"), claims(7), 0);
        assert!(cache.get(&cache.key("x", "t")).is_some());
        assert!(cache.get(&cache.key("y", "t")).is_none());
        // The same bytes split another way are another pair.
        cache.insert(&cache.key("a", "bc"), claims(1), 0);
        assert!(cache.get(&cache.key("ab", "c")).is_none());
        assert!(cache.get(&cache.key("a", "bc")).is_some());
    }

    /// A token whose hash collides with a cached one's is a miss, never
    /// the cached token's claims: the entry's own pair decides.
    #[test]
    fn a_colliding_token_is_a_miss() {
        let cache = VerifiedCache::<u32>::new(32);
        cache.insert(&cache.key("aud", "genuine"), claims(1), 0);
        let genuine = cache.key("aud", "genuine").hash;
        for (audience, token) in [("aud", "forged"), ("aud", "genuin"), ("au", "dgenuine")] {
            let forged = TokenKey {
                hash: genuine,
                audience,
                token,
            };
            assert!(cache.get(&forged).is_none(), "{audience} {token}");
        }
        // Verified in full, the colliding token takes the slot over.
        let forged = TokenKey {
            hash: genuine,
            audience: "aud",
            token: "forged",
        };
        cache.insert(&forged, claims(2), 0);
        assert_eq!(cache.get(&forged).map(|c| *c.value), Some(2));
        assert!(cache.get(&cache.key("aud", "genuine")).is_none());
    }
}
