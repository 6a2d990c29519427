//! Identification answers per leaf thumbprint, so a connection's requests
//! cost a hash lookup: positive answers, and the negative ones a flood of
//! unknown or revoked certificates would otherwise send to the store.
//!
//! Any client change drops every entry: a pattern change can alter the
//! answer for certificates no one can list, and clients change rarely.
//! The epoch keeps a lookup that read the store before a change from
//! caching what it read after the change was applied.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use crate::clients::outcome::Identified;
use crate::clients::refusal::ClientRefusal;
use crate::keys::cache_map::HashMapCache;

/// Entries a node keeps; one per distinct client certificate seen.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// How long an answer is reused without asking the store; changes made on
/// this node or through the feed drop entries sooner.
pub const DEFAULT_TTL_MS: i64 = 30_000;

struct Entry {
    outcome: Result<Identified, ClientRefusal>,
    /// The leaf's notAfter (Unix seconds): past it the answer is `Expired`.
    not_after: i64,
    cached_at_ms: i64,
}

pub(crate) struct IdentifyCache {
    map: HashMapCache<Arc<Entry>>,
    ttl_ms: i64,
    epoch: AtomicU64,
    // Held for writing by invalidation and for reading by inserts, so an
    // insert cannot slip between the epoch bump and the clearing.
    gate: RwLock<()>,
}

impl IdentifyCache {
    pub(crate) fn new(capacity: usize, ttl_ms: i64) -> Self {
        Self {
            map: HashMapCache::new(capacity.max(16)),
            ttl_ms,
            epoch: AtomicU64::new(0),
            gate: RwLock::new(()),
        }
    }

    pub(crate) fn get(
        &self,
        thumbprint: &[u8; 32],
        now_ms: i64,
    ) -> Option<Result<Identified, ClientRefusal>> {
        let entry = self.map.get(thumbprint)?;
        if now_ms - entry.cached_at_ms >= self.ttl_ms {
            return None;
        }
        if now_ms.div_euclid(1000) > entry.not_after {
            return Some(Err(ClientRefusal::Expired));
        }
        Some(entry.outcome.clone())
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub(crate) fn insert(
        &self,
        thumbprint: [u8; 32],
        outcome: Result<Identified, ClientRefusal>,
        not_after: i64,
        now_ms: i64,
        since: u64,
    ) {
        if self.ttl_ms <= 0 {
            return;
        }
        let _gate = self.gate.read();
        if self.epoch.load(Ordering::Acquire) == since {
            let entry = Entry {
                outcome,
                not_after,
                cached_at_ms: now_ms,
            };
            self.map.insert(thumbprint, Arc::new(entry));
        }
    }

    pub(crate) fn invalidate_all(&self) {
        let _gate = self.gate.write();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.map.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}
