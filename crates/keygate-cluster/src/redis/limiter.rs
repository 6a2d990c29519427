//! `RedisGcraLimiter`: keygate's GCRA decided in Redis, one script per
//! decision on Redis's clock, so N nodes admit what one node would
//! (`Gcra::decide` computes the answer from the script's reading of the
//! TAT, the same function the in-process limiter uses).
//!
//! A refusal leaves the TAT unchanged, so after one this node skips Redis
//! for that key until the refusal's `retry_after` (the deny cache): still
//! exact, because only a refund elsewhere could open a slot sooner, and
//! missing that can only under-admit.
//!
//! While Redis cannot answer, the policy decides: `local_share` runs the
//! in-process GCRA at `1/N` of the limit (N live nodes, as membership last
//! counted them), `deny` refuses, `allow` admits. When Redis comes back its
//! TATs lag what was admitted meanwhile: at most one extra burst per key.
//! A Redis restart that lost the TATs costs the same, once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use keygate_core::model::RateLimitSpec;
use keygate_core::ratelimit::{Gcra, GcraLimiter, RateDecision, RateLimiter, Unavailable};
use parking_lot::Mutex;
use redis::Script;

use super::conn::RedisConn;

pub(crate) const GCRA_LUA: &str = include_str!("lua/gcra.lua");
const REFUND_LUA: &str = include_str!("lua/refund.lua");
/// The deny cache is cleared whole past this many keys.
const DENY_CACHE_MAX: usize = 100_000;

/// The limiter's own settings; `[cluster]` maps onto them.
#[derive(Debug, Clone)]
pub struct LimiterOptions {
    /// The policy of limits that name none (keys' own limits, routes
    /// without `on_limiter_unavailable`).
    pub on_unavailable: Unavailable,
    /// Live nodes, kept current by membership; 0 counts as 1.
    pub live_nodes: Arc<AtomicU32>,
}

pub struct RedisGcraLimiter {
    conn: Arc<RedisConn>,
    options: LimiterOptions,
    gcra: Script,
    refund: Script,
    /// Key to (TAT in the caller's clock, µs; the parameters it was under).
    denied: Mutex<HashMap<String, (i64, Gcra)>>,
    local: GcraLimiter,
}

impl RedisGcraLimiter {
    pub fn new(conn: Arc<RedisConn>, options: LimiterOptions) -> Self {
        Self {
            conn,
            options,
            gcra: Script::new(GCRA_LUA),
            refund: Script::new(REFUND_LUA),
            denied: Mutex::new(HashMap::new()),
            local: GcraLimiter::new(),
        }
    }

    fn redis_key(&self, key: &str) -> String {
        // The braces are a hash tag: one key, one slot, on a Redis Cluster.
        self.conn.key(&format!("rl:{{{key}}}"))
    }

    /// A refusal remembered here, still in force at `now_ms`.
    fn cached_refusal(&self, key: &str, gcra: Gcra, now_ms: i64) -> Option<RateDecision> {
        let mut denied = self.denied.lock();
        let (tat, under) = *denied.get(key)?;
        let d = gcra.decide(tat - now_ms.saturating_mul(1000));
        if under == gcra && !d.allowed {
            return Some(d);
        }
        denied.remove(key);
        None
    }

    fn remember_refusal(&self, key: &str, gcra: Gcra, ahead: i64, now_ms: i64) {
        let mut denied = self.denied.lock();
        if denied.len() >= DENY_CACHE_MAX {
            denied.clear();
        }
        denied.insert(key.to_owned(), (now_ms.saturating_mul(1000) + ahead, gcra));
    }

    /// The step in Redis: `(admitted, TAT - now before it)`.
    async fn step(&self, key: &str, gcra: Gcra) -> Option<(bool, i64)> {
        let rkey = self.redis_key(key);
        let script = &self.gcra;
        let r: Result<(i64, i64), _> = self
            .conn
            .call(|mut c| async move {
                script
                    .key(rkey)
                    .arg(gcra.interval)
                    .arg(gcra.tolerance)
                    .invoke_async(&mut c)
                    .await
            })
            .await;
        r.ok().map(|(admitted, ahead)| (admitted == 1, ahead))
    }

    fn fallback(
        &self,
        key: &str,
        spec: RateLimitSpec,
        burst: u32,
        policy: Unavailable,
        now_ms: i64,
    ) -> RateDecision {
        self.conn
            .stats()
            .limiter_fallbacks
            .fetch_add(1, Ordering::Relaxed);
        let answer = |allowed| RateDecision {
            allowed,
            limit: spec.limit,
            remaining: 0,
            reset_ms: 0,
            retry_after_ms: if allowed { 0 } else { 1000 },
            unavailable: !allowed,
        };
        match policy {
            Unavailable::Allow => answer(true),
            Unavailable::Deny => answer(false),
            Unavailable::LocalShare => {
                let n = self.options.live_nodes.load(Ordering::Relaxed).max(1);
                self.local
                    .decide_gcra(key, Gcra::shared(spec, burst, n), now_ms)
            }
        }
    }
}

#[async_trait]
impl RateLimiter for RedisGcraLimiter {
    async fn check_burst(
        &self,
        key: &str,
        spec: RateLimitSpec,
        burst: u32,
        on_unavailable: Option<Unavailable>,
        now_ms: i64,
    ) -> RateDecision {
        let gcra = Gcra::new(spec, burst);
        if let Some(d) = self.cached_refusal(key, gcra, now_ms) {
            return d;
        }
        match self.step(key, gcra).await {
            Some((admitted, ahead)) => {
                let d = gcra.decide(ahead);
                if !admitted {
                    self.remember_refusal(key, gcra, ahead, now_ms);
                }
                // The script and `decide` apply the same test; trust the
                // script, which is what the TAT now says.
                RateDecision {
                    allowed: admitted,
                    ..d
                }
            }
            None => {
                let policy = on_unavailable.unwrap_or(self.options.on_unavailable);
                self.fallback(key, spec, burst, policy, now_ms)
            }
        }
    }

    async fn refund(&self, key: &str, spec: RateLimitSpec, now_ms: i64) {
        let interval = Gcra::new(spec, 1).interval;
        self.denied.lock().remove(key);
        let rkey = self.redis_key(key);
        let script = &self.refund;
        let r: Result<i64, _> = self
            .conn
            .call(|mut c| async move { script.key(rkey).arg(interval).invoke_async(&mut c).await })
            .await;
        if r.is_err() {
            // Admitted by the local share, or lost: giving back locally
            // can only make the fallback stricter than the refund meant.
            self.local.give_back(key, spec, now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::redis::{RedisConn, RedisOptions};
    use keygate_core::ratelimit::GcraLimiter;
    use keygate_test_support::redis::TestPrefix;

    /// The production script with `now` taken from ARGV[3] instead of
    /// `TIME`: built here only, so no caller can move Redis's clock.
    fn script_with_explicit_now() -> Script {
        let time =
            "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000000 + tonumber(t[2])";
        assert!(GCRA_LUA.contains(time));
        Script::new(&GCRA_LUA.replace(time, "local now = tonumber(ARGV[3])"))
    }

    /// Arrivals in ms: bursts, gaps, and steady pacing around the interval.
    fn arrivals(seed: u64) -> Vec<i64> {
        let mut x = seed;
        let mut t = 1_733_000_000_000_i64;
        (0..600)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let r = (x >> 33) as i64;
                t += match i % 50 {
                    0..=9 => 0,
                    10..=39 => r % 120,
                    _ => r % 3_000,
                };
                t
            })
            .collect()
    }

    #[tokio::test]
    async fn the_script_decides_exactly_as_the_in_process_limiter() {
        // The shared test Redis, under a prefix whose keys go at the end.
        let Some(ns) = TestPrefix::claim("lua") else {
            return;
        };
        let mut opts = RedisOptions::new(ns.url.clone(), ns.prefix.clone());
        opts.timeout = std::time::Duration::from_secs(2);
        let conn = RedisConn::new(&opts).unwrap();
        let script = script_with_explicit_now();
        let specs = [
            (10, 60, 10),
            (1200, 60, 10),
            (7, 60, 3),
            (100, 1, 1),
            (3, 3600, 2),
        ];
        for (n, (limit, period, burst)) in specs.into_iter().enumerate() {
            let spec = RateLimitSpec {
                limit,
                period_seconds: period,
            };
            let gcra = Gcra::new(spec, burst);
            let local = GcraLimiter::new();
            let key = conn.key(&format!("rl:{{eq{n}}}"));
            for (i, at) in arrivals(n as u64 + 1).into_iter().enumerate() {
                let expected = local.decide_with_burst("k", spec, burst, at);
                let (admitted, ahead): (i64, i64) = script
                    .key(&key)
                    .arg(gcra.interval)
                    .arg(gcra.tolerance)
                    .arg(at * 1000)
                    .invoke_async(&mut conn.manager())
                    .await
                    .unwrap();
                let got = RateDecision {
                    allowed: admitted == 1,
                    ..gcra.decide(ahead)
                };
                assert_eq!(got, expected, "spec {n}, arrival {i} at {at}");
                assert_eq!(admitted == 1, gcra.decide(ahead).allowed);
            }
        }
    }
}
