//! Each route's recent traffic for the dashboard: request rate, share of
//! 5xx answers and p99 latency over about the last minute.
//!
//! The Prometheus families in `metrics` count since the process started;
//! a rate needs a window, and a scraper is not always there. So each route
//! also keeps a short ring of 5-second slots. Every counter in a slot is
//! one `AtomicU64` holding the slot's number in its high half and the count
//! in its low half: a writer that finds an old slot number starts the
//! counter over with a compare-and-swap, so recording takes a few atomic
//! operations and never a lock, and a reader skips counters from slots
//! outside the window without any reset pass.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::RwLock;

/// Width of one slot.
pub const SLOT_MS: u64 = 5_000;
/// Slots in the ring: the window is the current slot and the 11 before it,
/// 55 to 60 seconds.
pub const SLOTS: usize = 12;
/// Latency buckets: values below 16 µs in the first, then four per power
/// of two (each at most 19 % wider than its lower bound) up to 2^26 µs
/// (67 s), the last one open-ended.
const BUCKETS: usize = 1 + 4 * 22 + 1;
const FIRST_EXP: u32 = 4;

/// The counters of one slot: requests, 5xx answers, latency buckets.
struct Slot {
    requests: AtomicU64,
    errors: AtomicU64,
    latency: [AtomicU64; BUCKETS],
}

impl Default for Slot {
    fn default() -> Self {
        Self {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Adds one to `counter` for slot `epoch` (a slot number, 32 bits kept),
/// starting the count over if the counter still holds an older slot's.
fn bump(counter: &AtomicU64, epoch: u32) {
    let tag = u64::from(epoch) << 32;
    let mut seen = counter.load(Ordering::Relaxed);
    loop {
        if seen & !0xFFFF_FFFF == tag {
            counter.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match counter.compare_exchange_weak(seen, tag | 1, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(now) => seen = now,
        }
    }
}

/// The count `counter` holds for slot `epoch`; zero if it holds another's.
fn read(counter: &AtomicU64, epoch: u32) -> u64 {
    let v = counter.load(Ordering::Relaxed);
    if (v >> 32) as u32 == epoch {
        v & 0xFFFF_FFFF
    } else {
        0
    }
}

/// The bucket of a latency in microseconds.
fn bucket(micros: u64) -> usize {
    if micros < 1 << FIRST_EXP {
        return 0;
    }
    let exp = 63 - micros.leading_zeros();
    let quarter = ((micros >> (exp - 2)) & 3) as usize;
    (1 + (exp - FIRST_EXP) as usize * 4 + quarter).min(BUCKETS - 1)
}

/// The largest latency (µs) bucket `i` holds; None for the open-ended last.
fn bucket_upper(i: usize) -> Option<u64> {
    if i == 0 {
        return Some((1 << FIRST_EXP) - 1);
    }
    if i >= BUCKETS - 1 {
        return None;
    }
    let exp = FIRST_EXP + ((i - 1) / 4) as u32;
    let quarter = ((i - 1) % 4) as u64;
    Some(((4 + quarter + 1) << (exp - 2)) - 1)
}

/// What a route did over the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RouteWindow {
    pub requests: u64,
    pub errors_5xx: u64,
    /// How long the window covered (its slots from the first to now).
    pub window: Duration,
    /// None without requests; the upper bound of the 99th percentile's
    /// bucket, so at most 19 % above the true value (never below).
    pub p99: Option<Duration>,
    /// Latencies past the last bucket's bound (67 s) make the p99 unknown
    /// but at least that.
    pub p99_beyond: bool,
}

impl RouteWindow {
    pub fn per_second(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }

    /// Share of 5xx answers, 0.0 to 1.0; None without requests.
    pub fn error_share(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors_5xx as f64 / self.requests as f64)
    }
}

/// One route's ring. Times are milliseconds since the registry's start.
pub struct RouteStats {
    slots: [Slot; SLOTS],
}

impl Default for RouteStats {
    fn default() -> Self {
        Self {
            slots: std::array::from_fn(|_| Slot::default()),
        }
    }
}

impl std::fmt::Debug for RouteStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteStats").finish_non_exhaustive()
    }
}

impl RouteStats {
    /// Records one answer at `now_ms`: its status and its latency.
    pub fn record_at(&self, now_ms: u64, status: u16, latency: Duration) {
        let epoch = now_ms / SLOT_MS;
        let slot = &self.slots[(epoch % SLOTS as u64) as usize];
        let epoch = epoch as u32;
        bump(&slot.requests, epoch);
        if status >= 500 {
            bump(&slot.errors, epoch);
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        bump(&slot.latency[bucket(micros)], epoch);
    }

    /// The window ending at `now_ms`: the current slot and the ones before
    /// it that are still in the ring (fewer right after the start).
    pub fn window_at(&self, now_ms: u64) -> RouteWindow {
        let current = now_ms / SLOT_MS;
        let first = current.saturating_sub(SLOTS as u64 - 1);
        let mut requests = 0;
        let mut errors_5xx = 0;
        let mut latency = [0u64; BUCKETS];
        for epoch in first..=current {
            let slot = &self.slots[(epoch % SLOTS as u64) as usize];
            let epoch = epoch as u32;
            requests += read(&slot.requests, epoch);
            errors_5xx += read(&slot.errors, epoch);
            for (sum, c) in latency.iter_mut().zip(&slot.latency) {
                *sum += read(c, epoch);
            }
        }
        let (p99, p99_beyond) = percentile(&latency, 99);
        RouteWindow {
            requests,
            errors_5xx,
            window: Duration::from_millis(now_ms - first * SLOT_MS),
            p99: p99.map(Duration::from_micros),
            p99_beyond,
        }
    }
}

/// The upper bound (µs) of the bucket holding the `pct`th percentile, and
/// whether it is the open-ended last bucket.
fn percentile(latency: &[u64; BUCKETS], pct: u64) -> (Option<u64>, bool) {
    let total: u64 = latency.iter().sum();
    if total == 0 {
        return (None, false);
    }
    // The smallest rank r with r >= pct% of total (nearest-rank method).
    let rank = (total * pct).div_ceil(100).max(1);
    let mut seen = 0;
    for (i, n) in latency.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return match bucket_upper(i) {
                Some(up) => (Some(up), false),
                None => (bucket_upper(i - 1), true),
            };
        }
    }
    (None, false)
}

/// Every route's ring, by route name: a reload builds new `Route`s, which
/// find the same ring here, so a reload does not reset the figures.
pub struct GatewayStats {
    started: Instant,
    routes: RwLock<HashMap<String, Arc<RouteStats>>>,
}

impl Default for GatewayStats {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            routes: RwLock::default(),
        }
    }
}

impl GatewayStats {
    /// The ring of `route`, made on first use.
    pub fn route(&self, route: &str) -> Arc<RouteStats> {
        if let Some(s) = self.routes.read().get(route) {
            return s.clone();
        }
        self.routes
            .write()
            .entry(route.to_owned())
            .or_default()
            .clone()
    }

    /// Milliseconds since this registry started, the rings' clock.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The window of `route` now; None if it has served nothing since start.
    pub fn window(&self, route: &str) -> Option<RouteWindow> {
        let stats = self.routes.read().get(route).cloned()?;
        Some(stats.window_at(self.now_ms()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn buckets_cover_each_value_and_their_bounds_are_tight() {
        for micros in [
            0, 1, 15, 16, 17, 19, 20, 31, 32, 100, 999, 1000, 12_345, 10_000_000,
        ] {
            let i = bucket(micros);
            let upper = bucket_upper(i).unwrap();
            assert!(micros <= upper, "{micros} above its bucket's bound {upper}");
            if i > 0 {
                let lower = bucket_upper(i - 1).unwrap() + 1;
                assert!(micros >= lower, "{micros} below its bucket's start {lower}");
                // Four per power of two: a bucket spans at most 25 % of its start.
                assert!((upper + 1 - lower) * 4 <= lower, "bucket {i} too wide");
            }
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_upper(BUCKETS - 1), None);
        // The last bounded bucket ends just below 2^26 µs.
        assert_eq!(bucket_upper(BUCKETS - 2), Some((1 << 26) - 1));
    }

    #[test]
    fn counts_requests_and_5xx_within_the_window() {
        let s = RouteStats::default();
        for i in 0..90 {
            s.record_at(1_000 + i, 200, ms(2));
        }
        for i in 0..10 {
            s.record_at(7_000 + i, 502, ms(2));
        }
        let w = s.window_at(9_000);
        assert_eq!((w.requests, w.errors_5xx), (100, 10));
        assert_eq!(w.error_share(), Some(0.1));
        // Window from slot 0's start to now: 9 s, so 100 / 9 per second.
        assert_eq!(w.window, ms(9_000));
        assert!((w.per_second() - 100.0 / 9.0).abs() < 1e-9);
    }

    #[test]
    fn old_slots_leave_the_window_and_reused_slots_start_over() {
        let s = RouteStats::default();
        s.record_at(0, 500, ms(1));
        s.record_at(SLOT_MS * 11 + 1, 200, ms(1));
        let w = s.window_at(SLOT_MS * 11 + 2);
        assert_eq!((w.requests, w.errors_5xx), (2, 1));
        // One slot later the first slot is out of the window.
        let w = s.window_at(SLOT_MS * 12);
        assert_eq!((w.requests, w.errors_5xx), (1, 0));
        assert_eq!(w.window, ms(SLOT_MS * 11));
        // Writing into slot 12 (same place in the ring as slot 0) starts
        // from zero, not from slot 0's count.
        s.record_at(SLOT_MS * 12 + 5, 200, ms(1));
        let w = s.window_at(SLOT_MS * 12 + 10);
        assert_eq!((w.requests, w.errors_5xx), (2, 0));
        // Much later, nothing.
        let w = s.window_at(SLOT_MS * 100);
        assert_eq!(w.requests, 0);
        assert_eq!(w.error_share(), None);
        assert_eq!(w.p99, None);
    }

    #[test]
    fn p99_is_the_bucket_bound_of_the_99th_percentile() {
        let s = RouteStats::default();
        // 990 fast answers (1 ms), 10 slow ones (800 ms): the 990th is fast.
        for _ in 0..990 {
            s.record_at(100, 200, ms(1));
        }
        for _ in 0..10 {
            s.record_at(100, 200, ms(800));
        }
        let p99 = s.window_at(200).p99.unwrap();
        assert!(
            p99 >= ms(1) && p99 < Duration::from_micros(1_250),
            "{p99:?}"
        );
        // Two more slow ones move the 99th percentile into the slow bucket.
        s.record_at(100, 200, ms(800));
        s.record_at(100, 200, ms(800));
        let p99 = s.window_at(200).p99.unwrap();
        assert!(p99 >= ms(800) && p99 < ms(1_000), "{p99:?}");
        assert!(!s.window_at(200).p99_beyond);
    }

    #[test]
    fn latency_past_the_last_bound_is_reported_as_beyond() {
        let s = RouteStats::default();
        s.record_at(0, 504, Duration::from_secs(120));
        let w = s.window_at(1);
        assert!(w.p99_beyond);
        assert_eq!(w.p99, Some(Duration::from_micros((1 << 26) - 1)));
    }

    #[test]
    fn concurrent_writers_lose_no_count() {
        let s = Arc::new(RouteStats::default());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        s.record_at(SLOT_MS * 20 + i % 7, if t == 0 { 503 } else { 200 }, ms(3));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let w = s.window_at(SLOT_MS * 21);
        assert_eq!((w.requests, w.errors_5xx), (40_000, 10_000));
    }

    #[test]
    fn the_registry_keeps_one_ring_per_route_name() {
        let g = GatewayStats::default();
        assert!(g.window("orders").is_none());
        let a = g.route("orders");
        let now = g.now_ms();
        a.record_at(now, 200, ms(1));
        assert!(Arc::ptr_eq(&a, &g.route("orders")));
        assert_eq!(g.window("orders").unwrap().requests, 1);
        assert!(g.window("billing").is_none());
    }
}
