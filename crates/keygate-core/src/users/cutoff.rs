//! The per-user session cut-off as the token verification path reads it:
//! a small in-process cache with a short TTL, dropped locally on every
//! change, and on other nodes when the invalidation feed reaches them.
//!
//! A reader that missed inserts what it read only if no invalidation
//! happened meanwhile (the epoch check), so a read racing a password change
//! cannot put the old cut-off back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::model::UserId;

/// What the verifier needs: `None` for a user that does not exist.
pub type Cutoff = Option<(i64, bool)>;

pub struct CutoffCache {
    ttl_ms: i64,
    max_entries: usize,
    epoch: AtomicU64,
    entries: Mutex<HashMap<UserId, (Cutoff, i64)>>,
}

impl CutoffCache {
    pub fn new(ttl_ms: i64, max_entries: usize) -> Self {
        Self {
            ttl_ms,
            max_entries: max_entries.max(1),
            epoch: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cached value if fresh, else the epoch to hand back to `insert`.
    pub fn get(&self, id: &UserId, now_ms: i64) -> Result<Cutoff, u64> {
        let epoch = self.epoch.load(Ordering::Acquire);
        match self.entries.lock().get(id) {
            Some((value, at)) if now_ms - at < self.ttl_ms && now_ms >= *at => Ok(*value),
            _ => Err(epoch),
        }
    }

    pub fn insert(&self, id: UserId, value: Cutoff, now_ms: i64, epoch: u64) {
        let mut entries = self.entries.lock();
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if entries.len() >= self.max_entries && !entries.contains_key(&id) {
            let ttl = self.ttl_ms;
            entries.retain(|_, (_, at)| now_ms - *at < ttl);
            if entries.len() >= self.max_entries {
                entries.clear();
            }
        }
        entries.insert(id, (value, now_ms));
    }

    pub fn invalidate(&self, id: &UserId) {
        let mut entries = self.entries.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.remove(id);
    }

    pub fn invalidate_all(&self) {
        let mut entries = self.entries.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn entries_expire_are_bounded_and_races_lose() {
        let c = CutoffCache::new(1000, 2);
        let a = UserId::generate().unwrap();
        let epoch = c.get(&a, 0).unwrap_err();
        c.insert(a.clone(), Some((5, false)), 0, epoch);
        assert_eq!(c.get(&a, 999), Ok(Some((5, false))));
        assert!(c.get(&a, 1000).is_err());

        // A read that started before an invalidation does not insert.
        let epoch = c.get(&a, 2000).unwrap_err();
        c.invalidate(&a);
        c.insert(a.clone(), Some((5, false)), 2000, epoch);
        assert!(c.get(&a, 2000).is_err());

        for _ in 0..10 {
            let id = UserId::generate().unwrap();
            let epoch = c.get(&id, 3000).unwrap_err();
            c.insert(id, None, 3000, epoch);
        }
        assert!(c.len() <= 2);
    }
}
