//! Per-key rate limits with GCRA (the generic cell rate algorithm).
//!
//! GCRA keeps one number per key, the theoretical arrival time (TAT), and a
//! refused request leaves it unchanged, so refusals never use up quota. We
//! write our own rather than use `governor` because its keyed limiter gives
//! every key the same quota, and ours differ per key.

use std::collections::HashMap;
use std::hash::BuildHasher;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::model::RateLimitSpec;

/// What a limiter decided, with what the RateLimit headers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u32,
    /// Requests that could still be made right now.
    pub remaining: u32,
    /// Milliseconds until the quota is fully restored.
    pub reset_ms: i64,
    /// Milliseconds until the next request could be admitted (0 when allowed).
    pub retry_after_ms: i64,
}

/// A rate limiter keyed by a string (a key id, a user). The in-process one is
/// below; a shared implementation for many nodes can stand in its place.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    async fn check(&self, key: &str, spec: RateLimitSpec, now_ms: i64) -> RateDecision;
    /// Gives back one admitted request, when a later rule refused it after all.
    async fn refund(&self, key: &str, spec: RateLimitSpec, now_ms: i64);
}

const SHARDS: usize = 64;
/// A shard prunes idle entries when it grows past this many.
const PRUNE_AT: usize = 16_384;

/// In-process GCRA, sharded to keep lock contention low across cores.
pub struct GcraLimiter {
    shards: Vec<Mutex<HashMap<String, i128>>>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for GcraLimiter {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }
}

impl GcraLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    fn shard(&self, key: &str) -> &Mutex<HashMap<String, i128>> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    /// The decision, synchronously; the trait method wraps this. A full
    /// burst of `limit` is allowed, then one request per `period / limit`.
    pub fn decide(&self, key: &str, spec: RateLimitSpec, now_ms: i64) -> RateDecision {
        self.decide_with_burst(key, spec, spec.limit, now_ms)
    }

    /// As `decide`, with at most `burst` (1 to `limit`) requests at once.
    /// Any `period` then admits at most `burst - 1 + limit` requests; with
    /// `burst = 1` requests are evenly paced and no window of `period` sees
    /// more than `limit`.
    pub fn decide_with_burst(
        &self,
        key: &str,
        spec: RateLimitSpec,
        burst: u32,
        now_ms: i64,
    ) -> RateDecision {
        // Nanoseconds keep the emission interval exact enough for any
        // limit/period pair (1000/min is 60 ms, 7/min is 8.571... s).
        let now = i128::from(now_ms) * 1_000_000;
        let limit = i128::from(spec.limit.max(1));
        let full_period = i128::from(spec.period_seconds.max(1)) * 1_000_000_000;
        let interval = full_period / limit;
        // GCRA's tolerance: how far ahead of now the TAT may run.
        let period = interval * i128::from(burst.clamp(1, spec.limit.max(1)));
        let mut shard = self.shard(key).lock();
        let tat = shard.get(key).copied().unwrap_or(now).max(now);
        let new_tat = tat + interval;
        let to_ms = |ns: i128| i64::try_from((ns + 999_999) / 1_000_000).unwrap_or(i64::MAX);
        if new_tat - now > period {
            let retry = new_tat - period - now;
            return RateDecision {
                allowed: false,
                limit: spec.limit,
                remaining: 0,
                reset_ms: to_ms(tat - now),
                retry_after_ms: to_ms(retry),
            };
        }
        if shard.len() >= PRUNE_AT && !shard.contains_key(key) {
            shard.retain(|_, t| *t > now);
        }
        shard.insert(key.to_owned(), new_tat);
        let remaining = ((period - (new_tat - now)) / interval).clamp(0, limit) as u32;
        RateDecision {
            allowed: true,
            limit: spec.limit,
            remaining,
            reset_ms: to_ms(new_tat - now),
            retry_after_ms: 0,
        }
    }
}

impl GcraLimiter {
    /// Moves the key's TAT back by one interval, never before `now`.
    pub fn give_back(&self, key: &str, spec: RateLimitSpec, now_ms: i64) {
        let now = i128::from(now_ms) * 1_000_000;
        let interval =
            i128::from(spec.period_seconds.max(1)) * 1_000_000_000 / i128::from(spec.limit.max(1));
        let mut shard = self.shard(key).lock();
        if let Some(tat) = shard.get_mut(key) {
            *tat = (*tat - interval).max(now);
        }
    }
}

#[async_trait]
impl RateLimiter for GcraLimiter {
    async fn check(&self, key: &str, spec: RateLimitSpec, now_ms: i64) -> RateDecision {
        self.decide(key, spec, now_ms)
    }

    async fn refund(&self, key: &str, spec: RateLimitSpec, now_ms: i64) {
        self.give_back(key, spec, now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_PER_MIN: RateLimitSpec = RateLimitSpec {
        limit: 10,
        period_seconds: 60,
    };

    #[test]
    fn admits_a_full_burst_then_refuses() {
        let l = GcraLimiter::new();
        let now = 1_000_000;
        for i in 0..10 {
            let d = l.decide("k", TEN_PER_MIN, now);
            assert!(d.allowed, "request {i}");
            assert_eq!(d.remaining, 9 - i);
        }
        let d = l.decide("k", TEN_PER_MIN, now);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_ms, 6_000);
        assert!(
            l.decide("other", TEN_PER_MIN, now).allowed,
            "keys are independent"
        );
    }

    #[test]
    fn refusals_do_not_use_quota() {
        let l = GcraLimiter::new();
        let now = 0;
        for _ in 0..10 {
            assert!(l.decide("k", TEN_PER_MIN, now).allowed);
        }
        for _ in 0..1000 {
            assert!(!l.decide("k", TEN_PER_MIN, now).allowed);
        }
        // One interval later exactly one more request fits.
        assert!(l.decide("k", TEN_PER_MIN, now + 6_000).allowed);
        assert!(!l.decide("k", TEN_PER_MIN, now + 6_000).allowed);
    }

    #[test]
    fn a_refund_gives_back_exactly_one_request() {
        let l = GcraLimiter::new();
        for _ in 0..10 {
            assert!(l.decide("k", TEN_PER_MIN, 0).allowed);
        }
        assert!(!l.decide("k", TEN_PER_MIN, 0).allowed);
        l.give_back("k", TEN_PER_MIN, 0);
        assert!(l.decide("k", TEN_PER_MIN, 0).allowed);
        assert!(!l.decide("k", TEN_PER_MIN, 0).allowed);
    }

    #[test]
    fn admits_the_limit_over_a_long_run() {
        let l = GcraLimiter::new();
        let spec = RateLimitSpec {
            limit: 1000,
            period_seconds: 60,
        };
        let mut admitted = 0;
        // One attempt per millisecond for two minutes.
        for ms in 0..120_000 {
            if l.decide("k", spec, ms).allowed {
                admitted += 1;
            }
        }
        // A full burst of 1000 at the start, then exactly one per 60 ms.
        assert_eq!(admitted, 1000 + 1999);
    }

    #[test]
    fn a_burst_of_one_paces_evenly_and_never_exceeds_the_limit_per_period() {
        let l = GcraLimiter::new();
        let spec = RateLimitSpec {
            limit: 1000,
            period_seconds: 60,
        };
        let mut admitted = Vec::new();
        for ms in 0..120_000 {
            if l.decide_with_burst("k", spec, 1, ms).allowed {
                admitted.push(ms);
            }
        }
        assert_eq!(admitted.len(), 2000);
        assert!(admitted.windows(2).all(|w| w[1] - w[0] == 60));
        // A burst of 10 allows 10 at once, then the same pace.
        let l = GcraLimiter::new();
        let at_once = (0..50)
            .filter(|_| l.decide_with_burst("b", spec, 10, 0).allowed)
            .count();
        assert_eq!(at_once, 10);
    }
}
