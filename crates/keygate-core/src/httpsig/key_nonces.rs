//! One key's live nonces, for `MemoryNonceStore`.
//!
//! A busy key holds hundreds of thousands of nonces. In one hash map, each
//! doubling of it (at 114k, 229k, 458k…) moved every entry at once, under
//! the shard's lock: 26–40 ms measured on the bench machine, during which
//! every signed request of every key in the shard waited. Past `SPLIT_AT`
//! the nonces are spread over `PARTS` maps by a byte of their hash, so a
//! map that grows moves a 256th of them.

use std::collections::HashMap;

/// The maps' keys are SHA-256 prefixes and the maps seeded per process, so
/// foldhash suffices; SipHash was a fifth of a record's cost.
pub(super) type Map<V> = HashMap<[u8; 16], V, foldhash::quality::RandomState>;

/// Below this a key's nonces are one map: most keys never reach it, and
/// the parts cost some 12 KB even empty.
const SPLIT_AT: usize = 8_192;
const PARTS: usize = 256;
const _: () = assert!(PARTS.is_power_of_two() && PARTS <= 256);

pub(super) struct KeyNonces {
    /// Nonce hash to expiry: one map, or `PARTS` chosen by the hash's last
    /// byte (the shard is chosen by the key hash's first).
    parts: Vec<Map<i64>>,
    len: usize,
    /// The smallest expiry held (or earlier): no sweep before it.
    pub(super) earliest: i64,
}

impl Default for KeyNonces {
    fn default() -> Self {
        Self {
            parts: vec![Map::default()],
            len: 0,
            earliest: i64::MAX,
        }
    }
}

impl KeyNonces {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(super) fn get(&self, nonce: &[u8; 16]) -> Option<i64> {
        self.parts[self.part_of(nonce)].get(nonce).copied()
    }

    /// Holds `nonce` until `until`; answers whether it was new.
    pub(super) fn insert(&mut self, nonce: [u8; 16], until: i64) -> bool {
        if self.len == SPLIT_AT && self.parts.len() == 1 {
            self.split();
        }
        let part = self.part_of(&nonce);
        let new = self.parts[part].insert(nonce, until).is_none();
        self.len += usize::from(new);
        self.earliest = self.earliest.min(until);
        new
    }

    /// Answers whether `nonce` was held.
    pub(super) fn remove(&mut self, nonce: &[u8; 16]) -> bool {
        let part = self.part_of(nonce);
        let held = self.parts[part].remove(nonce).is_some();
        self.len -= usize::from(held);
        held
    }

    /// Drops what expired by `now_ms`; answers how many went.
    pub(super) fn sweep(&mut self, now_ms: i64) -> usize {
        let mut earliest = i64::MAX;
        let mut gone = 0;
        for part in &mut self.parts {
            part.retain(|_, until| {
                let live = *until > now_ms;
                if live {
                    earliest = earliest.min(*until);
                } else {
                    gone += 1;
                }
                live
            });
        }
        self.len -= gone;
        self.earliest = earliest;
        gone
    }

    fn part_of(&self, nonce: &[u8; 16]) -> usize {
        // 1 or PARTS, both powers of two: a mask, not a division.
        usize::from(nonce[15]) & (self.parts.len() - 1)
    }

    /// Once, at `SPLIT_AT`: spreads the one map over `PARTS`, each sized
    /// for a fair share of twice as many.
    fn split(&mut self) {
        let whole = std::mem::take(&mut self.parts);
        let room = 2 * SPLIT_AT / PARTS;
        self.parts = (0..PARTS)
            .map(|_| Map::with_capacity_and_hasher(room, Default::default()))
            .collect();
        for (nonce, until) in whole.into_iter().flatten() {
            let part = self.part_of(&nonce);
            self.parts[part].insert(nonce, until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonce(i: usize) -> [u8; 16] {
        let mut n = [0u8; 16];
        n[..8].copy_from_slice(&(i as u64).to_le_bytes());
        // The part is chosen by the last byte: spread them as a hash would.
        n[15] = (i.wrapping_mul(151) % 256) as u8;
        n
    }

    #[test]
    fn a_key_split_into_parts_keeps_every_nonce_and_its_count() {
        let mut key = KeyNonces::default();
        let total = SPLIT_AT * 3;
        for i in 0..total {
            assert!(key.insert(nonce(i), 1_000 + (i % 7) as i64));
        }
        assert_eq!(key.parts.len(), PARTS);
        assert_eq!(key.len(), total);
        assert!(!key.insert(nonce(5), 2_000), "a nonce held is not new");
        assert_eq!(key.get(&nonce(5)), Some(2_000));
        assert_eq!(key.get(&nonce(0)), Some(1_000));
        assert_eq!(key.get(&nonce(total)), None);
        assert!(key.remove(&nonce(1)));
        assert!(!key.remove(&nonce(1)));
        assert_eq!(key.len(), total - 1);
        // Expiries 1000..=1006; nonce 5 was moved to 2000.
        let gone = key.sweep(1_003);
        assert_eq!(key.len(), total - 1 - gone);
        assert_eq!(key.earliest, 1_004);
        assert_eq!(key.sweep(1_006), total - 2 - gone);
        assert_eq!(key.len(), 1, "only the nonce held until 2000");
        assert_eq!(key.earliest, 2_000);
        assert_eq!(key.sweep(2_000), 1);
        assert!(key.is_empty());
    }
}
