//! A bounded, sharded hash table keyed by key hashes: the storage under the
//! key cache.
//!
//! Why not a cache crate: with 100,000 keys cached most hits find their
//! entry cold, so a hit costs what it touches in memory. Measured here,
//! `quick_cache` spent about 540 ns per hit and `std`'s HashMap (control
//! bytes and buckets apart, then the entry) about 600 ns, against a 1 µs
//! budget for the whole verification. This table stores the full key hash
//! and the value side by side in one slot (open addressing, linear probing),
//! so a hit usually touches one cache line before the entry itself. The keys
//! are HMAC outputs, uniformly random and unknown to clients, so their bytes
//! serve as the hash. When a shard is full the entry in the new key's home
//! slot is evicted: random replacement, which keeps hot keys with high
//! probability and costs nothing to track. Expiry is checked by the caller.

use parking_lot::RwLock;

use crate::keys::pepper::KeyHash;

const SHARDS: usize = 64;
const MIN_SLOTS: usize = 16;

/// One slot per cache line: a 48-byte slot would straddle two lines every
/// other time, and each line is a memory miss when the table is cold.
#[repr(align(64))]
struct Slot<V>(Option<(KeyHash, V)>);

struct Table<V> {
    slots: Vec<Slot<V>>,
    len: usize,
    max_len: usize,
}

fn home(key: &KeyHash, mask: usize) -> usize {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[..8]);
    (u64::from_le_bytes(b) as usize) & mask
}

impl<V> Table<V> {
    fn new(max_len: usize) -> Self {
        Self {
            slots: (0..MIN_SLOTS).map(|_| Slot(None)).collect(),
            len: 0,
            max_len,
        }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot holding `key`, if any. The load factor stays at or under one
    /// half, so a probe ends at an empty slot quickly.
    fn find(&self, key: &KeyHash) -> Option<usize> {
        let mask = self.mask();
        let mut i = home(key, mask);
        loop {
            match &self.slots[i].0 {
                None => return None,
                Some((k, _)) if k == key => return Some(i),
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    fn get(&self, key: &KeyHash) -> Option<&V> {
        self.find(key)
            .and_then(|i| self.slots[i].0.as_ref().map(|(_, v)| v))
    }

    fn insert(&mut self, key: KeyHash, value: V) {
        if let Some(i) = self.find(&key) {
            self.slots[i] = Slot(Some((key, value)));
            return;
        }
        if self.len >= self.max_len {
            // Evict whatever sits in the new key's home slot, or the next
            // occupied one: an arbitrary entry, since keys are random.
            let mask = self.mask();
            let mut i = home(&key, mask);
            while self.slots[i].0.is_none() {
                i = (i + 1) & mask;
            }
            self.remove_at(i);
        } else if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.mask();
        let mut i = home(&key, mask);
        while self.slots[i].0.is_some() {
            i = (i + 1) & mask;
        }
        self.slots[i] = Slot(Some((key, value)));
        self.len += 1;
    }

    fn grow(&mut self) {
        let bigger = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, (0..bigger).map(|_| Slot(None)).collect());
        let mask = bigger - 1;
        for (k, v) in old.into_iter().filter_map(|slot| slot.0) {
            let mut i = home(&k, mask);
            while self.slots[i].0.is_some() {
                i = (i + 1) & mask;
            }
            self.slots[i] = Slot(Some((k, v)));
        }
    }

    fn remove(&mut self, key: &KeyHash) {
        if let Some(i) = self.find(key) {
            self.remove_at(i);
        }
    }

    /// Backward-shift deletion: later entries of the same probe run move up,
    /// so lookups never need tombstones.
    fn remove_at(&mut self, mut hole: usize) {
        let mask = self.mask();
        self.slots[hole] = Slot(None);
        self.len -= 1;
        let mut i = (hole + 1) & mask;
        while let Some((k, _)) = &self.slots[i].0 {
            let h = home(k, mask);
            // Move the entry into the hole if its home is not in (hole, i].
            let stays = if hole <= i {
                hole < h && h <= i
            } else {
                hole < h || h <= i
            };
            if !stays {
                self.slots[hole] = Slot(self.slots[i].0.take());
                hole = i;
            }
            i = (i + 1) & mask;
        }
    }

    fn clear(&mut self) {
        self.slots = (0..MIN_SLOTS).map(|_| Slot(None)).collect();
        self.len = 0;
    }
}

pub struct HashMapCache<V> {
    shards: Vec<RwLock<Table<V>>>,
}

impl<V: Clone> HashMapCache<V> {
    pub fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS)
                .map(|_| RwLock::new(Table::new(per_shard)))
                .collect(),
        }
    }

    fn shard(&self, key: &KeyHash) -> &RwLock<Table<V>> {
        // The last byte picks the shard; the first eight place it within.
        &self.shards[usize::from(key[31]) % SHARDS]
    }

    pub fn get(&self, key: &KeyHash) -> Option<V> {
        self.shard(key).read().get(key).cloned()
    }

    pub fn insert(&self, key: KeyHash, value: V) {
        self.shard(&key).write().insert(key, value);
    }

    pub fn remove(&self, key: &KeyHash) {
        self.shard(key).write().remove(key);
    }

    pub fn clear(&self) {
        for shard in &self.shards {
            shard.write().clear();
        }
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn key(seed: u64, shard: u8) -> KeyHash {
        let mut k = [0u8; 32];
        // Few distinct home bits, so probe runs collide and wrap around.
        k[..8].copy_from_slice(&(seed % 24).to_le_bytes());
        k[8..16].copy_from_slice(&seed.to_le_bytes());
        k[31] = shard;
        k
    }

    #[test]
    fn stays_bounded() {
        let c = HashMapCache::new(640);
        for i in 0..10_000 {
            c.insert(key(i, (i % 256) as u8), i);
        }
        assert!(c.len() <= 640, "{}", c.len());
        c.clear();
        assert!(c.is_empty());
    }

    proptest! {
        /// Against a HashMap: any sequence of inserts and removes in one
        /// shard, with heavy collisions, leaves the same contents.
        #[test]
        fn behaves_like_a_map(ops in prop::collection::vec((any::<bool>(), 0u64..64), 1..400)) {
            let mut t = Table::new(usize::MAX);
            let mut model = HashMap::new();
            for (insert, seed) in ops {
                let k = key(seed, 0);
                if insert {
                    t.insert(k, seed);
                    model.insert(k, seed);
                } else {
                    t.remove(&k);
                    model.remove(&k);
                }
                prop_assert_eq!(t.len, model.len());
            }
            for seed in 0..64 {
                let k = key(seed, 0);
                prop_assert_eq!(t.get(&k), model.get(&k));
            }
        }
    }
}
