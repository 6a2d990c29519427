//! One connection to Redis for everything a node keeps there: a multiplexed
//! `ConnectionManager` (it reconnects by itself), every call under a short
//! deadline, a breaker so a dead or black-holed Redis costs nothing per
//! request once detected, and the detection of a Redis that lost its data
//! (its `run_id` changed: it restarted, and this machine's Redis keeps
//! nothing on disk).
//!
//! A call that timed out may still run on Redis later (a SIGSTOPped server
//! runs its queue when continued). Every script here is safe under that:
//! a late GCRA step or nonce only makes later decisions stricter.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisResult};

use super::breaker::{Breaker, BreakerState};

/// Where Redis is and how long a call may take; `[cluster]` maps onto it.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `redis://host:port/db` (or `rediss://`).
    pub url: String,
    /// Every key starts with `{prefix}:`, so several keygates (or tests)
    /// can share one Redis.
    pub prefix: String,
    /// Deadline of one call, including a reconnect; past it the call takes
    /// its fallback.
    pub timeout: Duration,
}

impl RedisOptions {
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: prefix.into(),
            timeout: Duration::from_millis(50),
        }
    }
}

/// Why a call got no answer; the caller takes its fallback either way.
#[derive(Debug)]
pub enum Unanswered {
    /// The breaker is open: Redis was not asked.
    Open,
    TimedOut,
    Failed(redis::RedisError),
}

/// Counters for metrics and `/v1/cluster`.
#[derive(Debug, Default)]
pub struct RedisStats {
    pub calls: AtomicU64,
    pub failures: AtomicU64,
    /// Decisions taken by a fallback, per user of Redis.
    pub limiter_fallbacks: AtomicU64,
    pub nonce_fallbacks: AtomicU64,
    pub throttle_fallbacks: AtomicU64,
    /// Times Redis was found to have restarted (a new `run_id`).
    pub data_losses: AtomicU64,
}

/// What `RedisConn::state` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisState {
    pub breaker: &'static str,
    pub run_id: Option<String>,
    pub data_losses: u64,
}

/// The key (after the prefix) of the epoch the nonce store refuses
/// signatures made before.
pub const EPOCH_KEY: &str = "nonce_epoch";

pub struct RedisConn {
    manager: ConnectionManager,
    prefix: String,
    timeout: Duration,
    breaker: Mutex<Breaker>,
    run_id: Mutex<Option<String>>,
    /// A call failed since the last `run_id` check: check before the next.
    suspect: AtomicBool,
    last_check: Mutex<Instant>,
    stats: RedisStats,
}

/// Sets the epoch (when this Redis's memory began, its `TIME` in ms) if
/// it is missing: missing means Redis never held our data or lost it.
const EPOCH_LUA: &str = "if redis.call('EXISTS', KEYS[1]) == 0 then \
    local t = redis.call('TIME') \
    redis.call('SET', KEYS[1], string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))) \
    end return 1";

/// A restart between two of our calls always drops the connection, so
/// checking after a failure suffices; the periodic check is a second line.
const RUN_ID_EVERY: Duration = Duration::from_secs(1);

impl RedisConn {
    /// Does not wait for Redis: a node starts while Redis is down and uses
    /// its fallbacks until Redis answers.
    pub fn new(opts: &RedisOptions) -> Result<Arc<Self>, redis::RedisError> {
        let client = Client::open(opts.url.as_str())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let manager = ConnectionManager::new_lazy_with_config(client, config)?;
        let now = Instant::now();
        Ok(Arc::new(Self {
            manager,
            prefix: opts.prefix.clone(),
            timeout: opts.timeout,
            breaker: Mutex::new(Breaker::new(now)),
            run_id: Mutex::new(None),
            suspect: AtomicBool::new(true),
            last_check: Mutex::new(now),
            stats: RedisStats::default(),
        }))
    }

    /// `{prefix}:{rest}`.
    pub fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }

    /// The connection itself, without deadline or breaker: for tests and
    /// tools, never for a request path.
    pub fn manager(&self) -> ConnectionManager {
        self.manager.clone()
    }

    pub fn stats(&self) -> &RedisStats {
        &self.stats
    }

    pub fn available(&self) -> bool {
        self.breaker.lock().state() == BreakerState::Closed
    }

    pub fn state(&self) -> RedisState {
        RedisState {
            breaker: self.breaker.lock().state().as_str(),
            run_id: self.run_id.lock().clone(),
            data_losses: self.stats.data_losses.load(Ordering::Relaxed),
        }
    }

    /// Runs `f` on the connection under the deadline and the breaker.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, Unanswered>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if !self.breaker.lock().allow(Instant::now()) {
            return Err(Unanswered::Open);
        }
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let conn = self.manager.clone();
        let check = self.suspect.load(Ordering::Acquire) || self.check_due();
        let work = async {
            if check {
                self.check_run_id(conn.clone()).await?;
            }
            f(conn).await
        };
        let result = match tokio::time::timeout(self.timeout, work).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Unanswered::Failed(e)),
            Err(_) => Err(Unanswered::TimedOut),
        };
        let now = Instant::now();
        let mut breaker = self.breaker.lock();
        let before = breaker.state();
        match &result {
            Ok(_) => breaker.success(now),
            Err(e) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                self.suspect.store(true, Ordering::Release);
                breaker.failure(now);
                tracing::debug!(error = ?e, "redis call failed");
            }
        }
        match (before, breaker.state()) {
            (BreakerState::Closed, BreakerState::Open) => tracing::warn!(
                "Redis does not answer within {} ms: limits, nonces and login throttles use their fallbacks",
                self.timeout.as_millis()
            ),
            (BreakerState::HalfOpen, BreakerState::Closed) => {
                tracing::warn!("Redis answers again: limits, nonces and throttles are shared again")
            }
            _ => {}
        }
        result
    }

    fn check_due(&self) -> bool {
        let mut last = self.last_check.lock();
        let now = Instant::now();
        if now.duration_since(*last) < RUN_ID_EVERY {
            return false;
        }
        *last = now;
        true
    }

    /// Reads `run_id` from `INFO server`; a change from the one known is a
    /// restart, and this machine's Redis starts empty.
    async fn check_run_id(&self, mut conn: ConnectionManager) -> RedisResult<()> {
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await?;
        // At the first connection and after a restart, before any use: a
        // node starting on a new Redis sets the epoch before its traffic.
        let _: i64 = redis::Script::new(EPOCH_LUA)
            .key(self.key(EPOCH_KEY))
            .invoke_async(&mut conn)
            .await?;
        self.suspect.store(false, Ordering::Release);
        let Some(id) = parse_run_id(&info) else {
            return Ok(());
        };
        if !self.note_run_id(id) {
            return Ok(());
        }
        // A new server: one that may evict keys can forget a live nonce,
        // and a forgotten nonce can be replayed.
        let memory: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut conn)
            .await?;
        if let Some(policy) = evicting_policy(&memory) {
            tracing::warn!(
                maxmemory_policy = policy,
                "Redis may evict keys when full; set maxmemory-policy noeviction, or a \
                 nonce evicted early could be replayed"
            );
        }
        Ok(())
    }

    /// Records the server's `run_id`; true when it is new (the first one,
    /// or a restart, which counts as a data loss).
    fn note_run_id(&self, id: &str) -> bool {
        let mut known = self.run_id.lock();
        match known.as_deref() {
            Some(old) if old != id => {
                self.stats.data_losses.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    old_run_id = old,
                    new_run_id = id,
                    "Redis restarted: its rate-limit state, nonces and login failures may be lost; \
                     limits may admit one extra burst per key, and signatures made before now are refused"
                );
                *known = Some(id.to_owned());
                true
            }
            Some(_) => false,
            None => {
                *known = Some(id.to_owned());
                true
            }
        }
    }
}

/// The eviction policy, when Redis has a memory limit and may evict.
fn evicting_policy(info: &str) -> Option<&str> {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let limited = field("maxmemory:").is_some_and(|m| m != "0");
    let policy = field("maxmemory_policy:")?;
    (limited && policy != "noeviction").then_some(policy)
}

fn parse_run_id(info: &str) -> Option<&str> {
    info.lines()
        .find_map(|l| l.strip_prefix("run_id:"))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_id_is_read_from_info() {
        let info = "# Server\r\nredis_version:7.0.15\r\nrun_id:abc123\r\ntcp_port:6379\r\n";
        assert_eq!(parse_run_id(info), Some("abc123"));
        assert_eq!(parse_run_id("# Server\r\n"), None);
    }

    #[test]
    fn only_a_limited_evicting_redis_is_reported() {
        let info = |max: &str, policy: &str| {
            format!("# Memory\r\nmaxmemory:{max}\r\nmaxmemory_policy:{policy}\r\n")
        };
        assert_eq!(evicting_policy(&info("0", "allkeys-lru")), None);
        assert_eq!(evicting_policy(&info("1000000", "noeviction")), None);
        assert_eq!(
            evicting_policy(&info("1000000", "volatile-lru")),
            Some("volatile-lru")
        );
    }
}
