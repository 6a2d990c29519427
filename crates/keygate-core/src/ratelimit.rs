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
    /// Refused only because the shared limiter could not answer and the
    /// policy is `deny`: not over any limit.
    pub unavailable: bool,
}

/// What a shared limiter does while its store (Redis) cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unavailable {
    /// An in-process GCRA at the limit divided by the live nodes: never over
    /// the limit while the node count is right; skewed traffic gets less.
    #[default]
    LocalShare,
    /// Refuse every request.
    Deny,
    /// Admit every request (no limit at all until the store is back).
    Allow,
}

impl Unavailable {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "local_share" => Some(Self::LocalShare),
            "deny" => Some(Self::Deny),
            "allow" => Some(Self::Allow),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LocalShare => "local_share",
            Self::Deny => "deny",
            Self::Allow => "allow",
        }
    }
}

/// A rate limiter keyed by a string (a key id, a user). The in-process one is
/// below; a shared implementation for many nodes can stand in its place.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// At most `burst` (1 to `limit`) requests at once; `on_unavailable`
    /// overrides the limiter's own fallback policy (a shared limiter's; an
    /// in-process one is always available and ignores it).
    async fn check_burst(
        &self,
        key: &str,
        spec: RateLimitSpec,
        burst: u32,
        on_unavailable: Option<Unavailable>,
        now_ms: i64,
    ) -> RateDecision;

    /// A full burst of `limit`, then one request per `period / limit`.
    async fn check(&self, key: &str, spec: RateLimitSpec, now_ms: i64) -> RateDecision {
        self.check_burst(key, spec, spec.limit, None, now_ms).await
    }

    /// Gives back one admitted request, when a later rule refused it after all.
    async fn refund(&self, key: &str, spec: RateLimitSpec, now_ms: i64);
}

/// GCRA's two numbers for a limit, in microseconds: the unit Redis `TIME`
/// gives, so a shared limiter computing in a Lua script (whose numbers are
/// doubles, exact below 2^53: µs since 1970 are ~2^51) makes exactly the
/// decisions this one does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// The emission interval: one request per `interval` µs.
    pub interval: i64,
    /// The tolerance: how far ahead of now the TAT may run (interval × burst).
    pub tolerance: i64,
    pub limit: u32,
}

impl Gcra {
    pub fn new(spec: RateLimitSpec, burst: u32) -> Self {
        Self::shared(spec, burst, 1)
    }

    /// A `1/share` part of the limit: the same burst shape, `share` times
    /// slower, with the burst divided too (at least one request).
    pub fn shared(spec: RateLimitSpec, burst: u32, share: u32) -> Self {
        let limit = i64::from(spec.limit.max(1));
        let share = i64::from(share.max(1));
        let period = i64::from(spec.period_seconds.max(1)) * 1_000_000;
        let interval = (period * share / limit).max(1);
        let burst = i64::from(burst.clamp(1, spec.limit.max(1)));
        Self {
            interval,
            tolerance: interval * (burst / share).max(1),
            limit: spec.limit,
        }
    }

    /// The decision for a request arriving when the TAT is `ahead` µs past
    /// now (0 if the TAT is in the past): admitted when the new TAT stays
    /// within the tolerance.
    pub fn decide(&self, ahead: i64) -> RateDecision {
        let ahead = ahead.max(0);
        let new_ahead = ahead + self.interval;
        let to_ms = |us: i64| (us + 999) / 1000;
        if new_ahead > self.tolerance {
            return RateDecision {
                allowed: false,
                limit: self.limit,
                remaining: 0,
                reset_ms: to_ms(ahead),
                retry_after_ms: to_ms(new_ahead - self.tolerance),
                unavailable: false,
            };
        }
        let remaining =
            ((self.tolerance - new_ahead) / self.interval).clamp(0, i64::from(self.limit));
        RateDecision {
            allowed: true,
            limit: self.limit,
            remaining: u32::try_from(remaining).unwrap_or(0),
            reset_ms: to_ms(new_ahead),
            retry_after_ms: 0,
            unavailable: false,
        }
    }
}

const SHARDS: usize = 64;
/// A shard prunes idle entries when it grows past this many.
const PRUNE_AT: usize = 16_384;

/// In-process GCRA, sharded to keep lock contention low across cores.
pub struct GcraLimiter {
    /// Key to TAT, in µs.
    shards: Vec<Mutex<HashMap<String, i64>>>,
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

    fn shard(&self, key: &str) -> &Mutex<HashMap<String, i64>> {
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
        self.decide_gcra(key, Gcra::new(spec, burst), now_ms)
    }

    /// The decision under explicit GCRA parameters (a share of a limit).
    pub fn decide_gcra(&self, key: &str, gcra: Gcra, now_ms: i64) -> RateDecision {
        let now = now_ms.saturating_mul(1000);
        let mut shard = self.shard(key).lock();
        let tat = shard.get(key).copied().unwrap_or(now).max(now);
        let decision = gcra.decide(tat - now);
        if !decision.allowed {
            return decision;
        }
        if shard.len() >= PRUNE_AT && !shard.contains_key(key) {
            shard.retain(|_, t| *t > now);
        }
        shard.insert(key.to_owned(), tat + gcra.interval);
        decision
    }
}

impl GcraLimiter {
    /// Moves the key's TAT back by one interval, never before `now`.
    pub fn give_back(&self, key: &str, spec: RateLimitSpec, now_ms: i64) {
        let now = now_ms.saturating_mul(1000);
        let interval = Gcra::new(spec, 1).interval;
        let mut shard = self.shard(key).lock();
        if let Some(tat) = shard.get_mut(key) {
            *tat = (*tat - interval).max(now);
        }
    }
}

#[async_trait]
impl RateLimiter for GcraLimiter {
    async fn check_burst(
        &self,
        key: &str,
        spec: RateLimitSpec,
        burst: u32,
        _on_unavailable: Option<Unavailable>,
        now_ms: i64,
    ) -> RateDecision {
        self.decide_with_burst(key, spec, burst, now_ms)
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

    #[test]
    fn a_share_of_a_limit_is_that_many_times_slower_with_its_part_of_the_burst() {
        let spec = RateLimitSpec {
            limit: 1200,
            period_seconds: 60,
        };
        let whole = Gcra::new(spec, 10);
        assert_eq!((whole.interval, whole.tolerance), (50_000, 500_000));
        let third = Gcra::shared(spec, 10, 3);
        assert_eq!((third.interval, third.tolerance), (150_000, 450_000));
        // Three nodes at a third each never admit more than one node would.
        let l = GcraLimiter::new();
        let admitted: usize = (0..3)
            .map(|node| {
                (0..30_000)
                    .filter(|ms| l.decide_gcra(&format!("n{node}"), third, *ms).allowed)
                    .count()
            })
            .sum();
        let one = (0..30_000)
            .filter(|ms| l.decide_gcra("one", whole, *ms).allowed)
            .count();
        assert!(admitted <= one, "{admitted} > {one}");
        // A burst smaller than the share still admits one at a time.
        assert_eq!(Gcra::shared(spec, 2, 3).tolerance, 150_000);
    }
}
