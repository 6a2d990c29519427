//! Verification counts per key, hour and outcome, kept off the request path.
//!
//! Each key has one `KeyCounter`, shared by every cache entry of the key
//! (an `Arc` in `CachedKey`), so a cache hit counts with one atomic add on
//! memory the verifier already touches: no map, no lock. The registry
//! (`UsageCounter`) is consulted only when the cache fills an entry, and by
//! HMAC-signed requests (`charge`), through one of several shard locks. A
//! background task drains the counters into the store every
//! `[keys] usage_flush_secs`; a batch the store refused is re-queued, so
//! nothing counted is dropped unless the process dies.
//!
//! A counter holds two hour slots (even and odd hours). Moving a slot to a
//! new hour takes the key's own lock once per hour and sets the previous
//! hour's counts aside (`spill`) for the next drain. The drain takes the
//! same lock, so it never attributes a count to the wrong hour.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::keys::apikey::KeyId;
use crate::keys::code::VerifyCode;
pub use crate::store::UsageCount;
use crate::store::UsageStore;

pub const HOUR_SECS: i64 = 3600;
const CODES: usize = VerifyCode::ALL.len();
const SHARDS: usize = 16;
/// A slot that has never held an hour.
const NO_HOUR: i64 = i64::MIN;

/// The outcomes that can be counted against a key: MALFORMED and NOT_FOUND
/// have no key to count against.
pub const COUNTED: [VerifyCode; 6] = [
    VerifyCode::Valid,
    VerifyCode::RateLimited,
    VerifyCode::UsageExceeded,
    VerifyCode::Revoked,
    VerifyCode::Expired,
    VerifyCode::InsufficientScope,
];

/// What a key service needs to count and read usage: the store, the
/// in-memory counts, and the lock that orders flushes against reads.
pub(crate) struct UsageParts {
    pub(crate) store: Arc<dyn UsageStore>,
    pub(crate) counter: UsageCounter,
    /// Held by a flush from drain to commit and by reads from the store query
    /// to the in-memory snapshot, so a read sees each count exactly once.
    /// Never taken on the verification path.
    pub(crate) flushing: tokio::sync::Mutex<()>,
}

/// The start of the hour holding `at_secs`.
pub fn hour_of(at_secs: i64) -> i64 {
    at_secs.div_euclid(HOUR_SECS) * HOUR_SECS
}

fn index(code: VerifyCode) -> usize {
    // `VerifyCode::ALL` lists the variants in declaration order.
    code as usize
}

struct HourSlot {
    hour: AtomicI64,
    counts: [AtomicU64; CODES],
}

impl HourSlot {
    fn new() -> Self {
        Self {
            hour: AtomicI64::new(NO_HOUR),
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Appends the slot's counts to `out`, either emptying them (`take`) or not.
    fn collect(&self, id: &KeyId, take: bool, out: &mut Vec<UsageCount>) {
        let hour = self.hour.load(Ordering::Acquire);
        for code in VerifyCode::ALL {
            let cell = &self.counts[index(code)];
            let count = if take {
                cell.swap(0, Ordering::AcqRel)
            } else {
                cell.load(Ordering::Acquire)
            };
            if count > 0 && hour != NO_HOUR {
                out.push(UsageCount {
                    key_id: id.clone(),
                    hour,
                    code,
                    count,
                });
            }
        }
    }
}

/// One key's counts not yet handed to the store.
pub struct KeyCounter {
    id: KeyId,
    slots: [HourSlot; 2],
    /// Taken when a slot changes hour and by the drain; never per request.
    turn: Mutex<Vec<UsageCount>>,
}

impl std::fmt::Debug for KeyCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCounter").field("id", &self.id).finish()
    }
}

impl KeyCounter {
    fn new(id: KeyId) -> Self {
        Self {
            id,
            slots: [HourSlot::new(), HourSlot::new()],
            turn: Mutex::new(Vec::new()),
        }
    }

    /// Counts one verification answered `code` at `at_secs`: one atomic add
    /// unless this is the slot's first count of a new hour.
    pub fn add(&self, at_secs: i64, code: VerifyCode) {
        let hour = hour_of(at_secs);
        let slot = &self.slots[(hour / HOUR_SECS).rem_euclid(2) as usize];
        if slot.hour.load(Ordering::Acquire) != hour && self.turn_slot(slot, hour, code) {
            return;
        }
        slot.counts[index(code)].fetch_add(1, Ordering::Relaxed);
    }

    /// Moves `slot` to `hour`, setting its old hour's counts aside. `true`
    /// when the count was recorded here (an hour older than the slot's, from
    /// a clock that stepped back): it goes straight to the spill.
    #[cold]
    fn turn_slot(&self, slot: &HourSlot, hour: i64, code: VerifyCode) -> bool {
        let mut spill = self.turn.lock();
        let current = slot.hour.load(Ordering::Acquire);
        if current > hour {
            spill.push(UsageCount {
                key_id: self.id.clone(),
                hour,
                code,
                count: 1,
            });
            return true;
        }
        if current != hour {
            slot.collect(&self.id, true, &mut spill);
            slot.hour.store(hour, Ordering::Release);
        }
        false
    }

    fn drain(&self, out: &mut Vec<UsageCount>) {
        let mut spill = self.turn.lock();
        out.append(&mut spill);
        for slot in &self.slots {
            slot.collect(&self.id, true, out);
        }
    }

    fn peek(&self, out: &mut Vec<UsageCount>) {
        let spill = self.turn.lock();
        out.extend(spill.iter().cloned());
        for slot in &self.slots {
            slot.collect(&self.id, false, out);
        }
    }
}

type Shard = Mutex<HashMap<KeyId, Arc<KeyCounter>>>;

/// Every key's counter, and batches the store refused.
pub struct UsageCounter {
    shards: Vec<Shard>,
    hasher: RandomState,
    requeued: Mutex<Vec<UsageCount>>,
}

impl Default for UsageCounter {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            requeued: Mutex::new(Vec::new()),
        }
    }
}

impl UsageCounter {
    fn shard(&self, id: &KeyId) -> &Shard {
        let h = self.hasher.hash_one(id.as_str()) as usize;
        &self.shards[h % SHARDS]
    }

    /// The key's counter, created on first use: for a cache entry being filled.
    pub fn counter(&self, id: &KeyId) -> Arc<KeyCounter> {
        self.shard(id)
            .lock()
            .entry(id.clone())
            .or_insert_with(|| Arc::new(KeyCounter::new(id.clone())))
            .clone()
    }

    /// Counts one verification of a key that has no cache entry at hand.
    pub fn add(&self, id: &KeyId, at_secs: i64, code: VerifyCode) {
        self.counter(id).add(at_secs, code);
    }

    /// Takes every count so far, merged per key, hour and code. Counters no
    /// cache entry holds any more are dropped once emptied: they can gain
    /// nothing (a new entry would get a new counter under the shard lock).
    pub fn drain(&self) -> Vec<UsageCount> {
        let mut out = std::mem::take(&mut *self.requeued.lock());
        for shard in &self.shards {
            let mut map = shard.lock();
            for counter in map.values() {
                counter.drain(&mut out);
            }
            map.retain(|_, c| Arc::strong_count(c) > 1);
        }
        merge(out)
    }

    /// Puts back a batch the store refused; the next drain takes it again.
    pub fn requeue(&self, rows: Vec<UsageCount>) {
        self.requeued.lock().extend(rows);
    }

    /// The counts of `ids` not yet drained (nothing is taken).
    pub fn pending(&self, ids: &[KeyId]) -> Vec<UsageCount> {
        let mut out: Vec<UsageCount> = {
            let requeued = self.requeued.lock();
            requeued
                .iter()
                .filter(|r| ids.contains(&r.key_id))
                .cloned()
                .collect()
        };
        for id in ids {
            let counter = self.shard(id).lock().get(id).cloned();
            if let Some(c) = counter {
                c.peek(&mut out);
            }
        }
        merge(out)
    }
}

/// Sums rows with the same key, hour and code.
pub fn merge(rows: Vec<UsageCount>) -> Vec<UsageCount> {
    let mut sums: BTreeMap<(KeyId, i64, VerifyCode), u64> = BTreeMap::new();
    for r in rows {
        *sums.entry((r.key_id, r.hour, r.code)).or_default() += r.count;
    }
    sums.into_iter()
        .map(|((key_id, hour, code), count)| UsageCount {
            key_id,
            hour,
            code,
            count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(rows: &[UsageCount], hour: i64, code: VerifyCode) -> u64 {
        rows.iter()
            .filter(|r| r.hour == hour && r.code == code)
            .map(|r| r.count)
            .sum()
    }

    #[test]
    fn counts_each_hour_and_code_apart_and_drains_once() {
        let usage = UsageCounter::default();
        let id = KeyId::generate().unwrap();
        let c = usage.counter(&id);
        for _ in 0..5 {
            c.add(7200 + 10, VerifyCode::Valid);
        }
        c.add(7200 + 20, VerifyCode::RateLimited);
        // Two hours on, the even slot turns: hour 7200 moves to the spill.
        c.add(3 * 3600 + 1, VerifyCode::Valid);
        c.add(4 * 3600 + 1, VerifyCode::Expired);
        let rows = usage.drain();
        assert_eq!(total(&rows, 7200, VerifyCode::Valid), 5);
        assert_eq!(total(&rows, 7200, VerifyCode::RateLimited), 1);
        assert_eq!(total(&rows, 3 * 3600, VerifyCode::Valid), 1);
        assert_eq!(total(&rows, 4 * 3600, VerifyCode::Expired), 1);
        assert_eq!(rows.len(), 4);
        assert!(usage.drain().is_empty());
    }

    #[test]
    fn a_clock_stepping_back_still_counts_in_its_own_hour() {
        let usage = UsageCounter::default();
        let id = KeyId::generate().unwrap();
        usage.add(&id, 4 * 3600, VerifyCode::Valid);
        usage.add(&id, 2 * 3600, VerifyCode::Valid);
        let rows = usage.drain();
        assert_eq!(total(&rows, 2 * 3600, VerifyCode::Valid), 1);
        assert_eq!(total(&rows, 4 * 3600, VerifyCode::Valid), 1);
    }

    #[test]
    fn requeued_rows_come_back_merged_and_pending_shows_them() {
        let usage = UsageCounter::default();
        let id = KeyId::generate().unwrap();
        let c = usage.counter(&id);
        c.add(0, VerifyCode::Valid);
        let batch = usage.drain();
        c.add(1, VerifyCode::Valid);
        usage.requeue(batch);
        assert_eq!(
            total(
                &usage.pending(std::slice::from_ref(&id)),
                0,
                VerifyCode::Valid
            ),
            2
        );
        let rows = usage.drain();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].count, 2);
    }

    #[test]
    fn counters_nobody_holds_are_dropped_once_empty() {
        let usage = UsageCounter::default();
        let id = KeyId::generate().unwrap();
        usage.add(&id, 0, VerifyCode::Valid);
        assert_eq!(usage.drain().len(), 1);
        let held = usage.counter(&id);
        assert_eq!(usage.drain().len(), 0);
        held.add(0, VerifyCode::Revoked);
        assert_eq!(usage.drain().len(), 1);
    }

    #[test]
    fn concurrent_adds_are_all_counted() {
        let usage = Arc::new(UsageCounter::default());
        let id = KeyId::generate().unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (usage, id) = (usage.clone(), id.clone());
                std::thread::spawn(move || {
                    let c = usage.counter(&id);
                    let mut drained = Vec::new();
                    for i in 0..10_000i64 {
                        c.add(i, VerifyCode::Valid);
                        if t == 0 && i % 1000 == 0 {
                            drained.extend(usage.drain());
                        }
                    }
                    drained
                })
            })
            .collect();
        let mut rows: Vec<UsageCount> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        rows.extend(usage.drain());
        let sum: u64 = rows.iter().map(|r| r.count).sum();
        assert_eq!(sum, 40_000);
        assert_eq!(total(&rows, 0, VerifyCode::Valid), 4 * 3600);
    }

    /// A measurement, not a check (run with `--release --ignored
    /// --nocapture`): nanoseconds per count on one hot counter, and on
    /// 100,000 counters visited in a scattered order, as cache hits over
    /// 100,000 keys would.
    #[test]
    #[ignore]
    fn measure_add() {
        let usage = UsageCounter::default();
        let counters: Vec<Arc<KeyCounter>> = (0..100_000)
            .map(|_| usage.counter(&KeyId::generate().unwrap()))
            .collect();
        let n = 10_000_000usize;
        let start = std::time::Instant::now();
        for i in 0..n {
            counters[0].add(i as i64 / 1000, VerifyCode::Valid);
        }
        let hot = start.elapsed().as_nanos() as f64 / n as f64;
        let start = std::time::Instant::now();
        for i in 0..n {
            counters[(i * 7919) % counters.len()].add(0, VerifyCode::Valid);
        }
        let cold = start.elapsed().as_nanos() as f64 / n as f64;
        let sum: u64 = usage.drain().iter().map(|r| r.count).sum();
        assert_eq!(sum, 2 * n as u64);
        println!("add: {hot:.1} ns hot, {cold:.1} ns over 100k counters");
    }
}
