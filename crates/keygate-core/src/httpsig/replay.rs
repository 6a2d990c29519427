//! Replay protection: a signature's nonce is remembered until its
//! `created` time has left the acceptance window, so a captured request
//! cannot be sent again while it would still pass the time check.
//!
//! `NonceStore` is a trait so several nodes can share one (Redis `SET NX
//! PX`); `MemoryNonceStore` serves a single node.

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::error::Error;

#[async_trait]
pub trait NonceStore: Send + Sync {
    /// Records `nonce` for `key_id` until `expires_at_ms`. `Ok(true)` when
    /// it was new, `Ok(false)` when it was seen before and has not expired.
    /// A store that cannot answer returns an error: never guess "new".
    async fn first_use(
        &self,
        key_id: &str,
        nonce: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, Error>;
}

const SHARDS: usize = 16;

/// In-process, bounded. Entries are a 16-byte hash of (key id, nonce), so a
/// long nonce costs no more memory than a short one.
pub struct MemoryNonceStore {
    shards: Vec<Mutex<HashMap<[u8; 16], i64>>>,
    per_shard: usize,
}

impl MemoryNonceStore {
    /// Holds at most about `capacity` live nonces. When full of unexpired
    /// ones it refuses to record more (an error, so a 503): forgetting a
    /// live nonce would let its request be replayed.
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
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

fn entry_key(key_id: &str, nonce: &str) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(key_id.as_bytes());
    h.update([0u8]);
    h.update(nonce.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize()[..16]);
    out
}

#[async_trait]
impl NonceStore for MemoryNonceStore {
    async fn first_use(
        &self,
        key_id: &str,
        nonce: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, Error> {
        let key = entry_key(key_id, nonce);
        let shard = &self.shards[usize::from(key[0]) % SHARDS];
        let mut map = shard.lock();
        if let Some(&until) = map.get(&key)
            && until > now_ms
        {
            return Ok(false);
        }
        if map.len() >= self.per_shard {
            map.retain(|_, until| *until > now_ms);
            if map.len() >= self.per_shard {
                return Err(Error::Storage(
                    "the replay cache is full of live nonces; refusing rather than forgetting one"
                        .into(),
                ));
            }
        }
        map.insert(key, expires_at_ms);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn remembers_until_expiry_and_per_key() {
        let store = MemoryNonceStore::new(64);
        assert!(store.first_use("key_a", "n1", 1_000, 0).await.unwrap());
        assert!(!store.first_use("key_a", "n1", 1_000, 999).await.unwrap());
        assert!(store.first_use("key_b", "n1", 1_000, 999).await.unwrap());
        assert!(store.first_use("key_a", "n1", 2_000, 1_000).await.unwrap());
    }

    #[tokio::test]
    async fn full_of_live_nonces_fails_closed_then_recovers() {
        let store = MemoryNonceStore::new(SHARDS);
        let mut refused = false;
        for i in 0..(SHARDS * 8) {
            if store
                .first_use("k", &format!("n{i}"), 100, 0)
                .await
                .is_err()
            {
                refused = true;
                break;
            }
        }
        assert!(refused, "a full cache must refuse, not forget");
        // Once the entries expire, room is made again.
        assert!(store.first_use("k", "later", 500, 200).await.unwrap());
    }
}
