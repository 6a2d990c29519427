//! Tokens verified before, keyed by SHA-256 of (audience, token): a client
//! that reuses its token pays one hash instead of a signature check. A hit
//! still goes through the expiry and revocation checks; only the signature
//! and the parsing are skipped. The digest is cryptographic because a
//! colliding token would inherit another token's verified claims.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

const SHARDS: usize = 16;

pub(crate) type TokenDigest = [u8; 32];

pub(crate) fn digest(audience: &str, token: &str) -> TokenDigest {
    let mut hasher = Sha256::new();
    hasher.update(audience.as_bytes());
    // The separator cannot occur in an audience we accept, so no two
    // (audience, token) pairs hash the same input.
    hasher.update([0u8]);
    hasher.update(token.as_bytes());
    hasher.finalize().into()
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

pub(crate) struct VerifiedCache<V> {
    shards: Vec<Mutex<HashMap<TokenDigest, Cached<V>>>>,
    per_shard: usize,
}

impl<V> VerifiedCache<V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS),
        }
    }

    fn shard(&self, digest: &TokenDigest) -> &Mutex<HashMap<TokenDigest, Cached<V>>> {
        &self.shards[usize::from(digest[0]) % SHARDS]
    }

    pub fn get(&self, digest: &TokenDigest) -> Option<Cached<V>> {
        if self.per_shard == 0 {
            return None;
        }
        self.shard(digest).lock().get(digest).cloned()
    }

    /// Inserts, making room first: expired entries go, and if none had
    /// expired, one arbitrary entry (the map's iteration order is seeded per
    /// process, so a client cannot aim evictions at someone else's token).
    pub fn insert(&self, digest: TokenDigest, entry: Cached<V>, now: i64) {
        if self.per_shard == 0 {
            return;
        }
        let mut shard = self.shard(&digest).lock();
        if shard.len() >= self.per_shard && !shard.contains_key(&digest) {
            shard.retain(|_, e| e.exp > now);
            if shard.len() >= self.per_shard
                && let Some(victim) = shard.keys().next().copied()
            {
                shard.remove(&victim);
            }
        }
        shard.insert(digest, entry);
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

    fn claims() -> Arc<u32> {
        Arc::new(7)
    }

    #[test]
    fn bounded_and_keyed_by_audience_too() {
        let cache = VerifiedCache::<u32>::new(32);
        for i in 0..1000 {
            let d = digest("aud", &format!("token-{i}"));
            cache.insert(
                d,
                Cached {
                    value: claims(),
                    exp: 10,
                },
                0,
            );
        }
        let held: usize = cache.shards.iter().map(|s| s.lock().len()).sum();
        assert!(held <= 32, "{held}");
        assert_ne!(digest("a", "bc"), digest("ab", "c"));
        let d = digest("x", "t");
        cache.insert(
            d,
            Cached {
                value: claims(),
                exp: 10,
            },
            0,
        );
        assert!(cache.get(&d).is_some());
        assert!(cache.get(&digest("y", "t")).is_none());
    }
}
