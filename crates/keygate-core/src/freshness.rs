//! Freshness: whether this node may answer from its caches right now.
//!
//! On one node (SQLite, or no feed) every change goes through this process,
//! so the caches are always exact: `Freshness::always()`. With many nodes a
//! cached answer is exact only while the node has applied every change
//! committed anywhere. The node's watcher records `confirmed(t0)` each time
//! it has applied everything up to a head it read after `t0`; a cache may be
//! used only while `now - t0 <= S`. Past S, `ensure` runs one single-flight
//! catch-up (the installed [`Confirm`]) under a short deadline; when the
//! database cannot answer, the request fails with `Error::Storage` (503)
//! rather than risk a stale VALID. Serving stale is an explicit opt-in
//! (`StalePolicy::ServeCached`), counted and logged.
//!
//! The clock is a parameter too: the server passes [`BootClock`]
//! (CLOCK_BOOTTIME, which keeps counting while the machine is suspended;
//! `Instant` does not), tests a `ManualClock`. Only differences are used.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::RwLock;

use crate::clock::MillisClock;
use crate::error::Error;

/// After a failed confirmation, requests fail at once for this long
/// instead of each trying again: a dead database is not stampeded.
const RETRY_AFTER_FAILURE_MS: i64 = 100;
/// Stale answers are logged at most this often.
const STALE_LOG_EVERY_MS: i64 = 10_000;

/// What to do when this node cannot confirm within S.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StalePolicy {
    /// Answer 503 (the default): never a possibly revoked credential.
    FailClosed,
    /// Keep answering from the caches for up to `max_ms` past the last
    /// confirmation (Unkey-style), counted in a metric and logged.
    ServeCached { max_ms: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreshnessMode {
    /// Every change passes through this process: the caches are exact.
    Always,
    /// Caches are usable while confirmed within `bound_ms` (S).
    Bounded {
        bound_ms: i64,
        stale: StalePolicy,
        /// How long an on-demand confirmation may take before the request
        /// gives up on it.
        deadline_ms: i64,
    },
}

/// Brings this node up to the feed's head and calls
/// [`Freshness::confirmed`] with the time taken before reading the head.
#[async_trait]
pub trait Confirm: Send + Sync {
    async fn confirm(&self) -> Result<(), Error>;
}

/// A clock that counts suspended time (CLOCK_BOOTTIME where the system has
/// one, else CLOCK_MONOTONIC), in milliseconds since boot. It never goes
/// back, unlike the wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct BootClock;

impl MillisClock for BootClock {
    fn now_millis(&self) -> i64 {
        boot_millis()
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn boot_millis() -> i64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    t.tv_sec.saturating_mul(1000) + t.tv_nsec / 1_000_000
}

#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
fn boot_millis() -> i64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec.saturating_mul(1000) + t.tv_nsec / 1_000_000
}

#[cfg(not(unix))]
fn boot_millis() -> i64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX)
}

pub struct Freshness {
    mode: FreshnessMode,
    clock: Arc<dyn MillisClock>,
    /// Boot-clock time of the last confirmation; i64::MIN / 2 = never.
    confirmed_at: AtomicI64,
    failed_at: AtomicI64,
    confirm: RwLock<Option<Arc<dyn Confirm>>>,
    /// One confirmation at a time; the others wait for its outcome.
    flight: tokio::sync::Mutex<()>,
    stale_served: AtomicU64,
    refused: AtomicU64,
    last_stale_log: AtomicI64,
}

impl std::fmt::Debug for Freshness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Freshness")
            .field("mode", &self.mode)
            .field("confirmed_age_ms", &self.confirmed_age_ms())
            .finish_non_exhaustive()
    }
}

const NEVER: i64 = i64::MIN / 2;

impl Freshness {
    /// A single node: caches are always usable.
    pub fn always() -> Self {
        Self::new(FreshnessMode::Always, Arc::new(BootClock))
    }

    pub fn new(mode: FreshnessMode, clock: Arc<dyn MillisClock>) -> Self {
        Self {
            mode,
            clock,
            confirmed_at: AtomicI64::new(NEVER),
            failed_at: AtomicI64::new(NEVER),
            confirm: RwLock::new(None),
            flight: tokio::sync::Mutex::new(()),
            stale_served: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            last_stale_log: AtomicI64::new(NEVER),
        }
    }

    pub fn mode(&self) -> FreshnessMode {
        self.mode
    }

    /// S in milliseconds, or None on a single node.
    pub fn bound_ms(&self) -> Option<i64> {
        match self.mode {
            FreshnessMode::Always => None,
            FreshnessMode::Bounded { bound_ms, .. } => Some(bound_ms),
        }
    }

    /// The clock `confirmed` times come from.
    pub fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    /// Installs what `ensure` runs past S (the node's watcher).
    pub fn install(&self, confirm: Arc<dyn Confirm>) {
        *self.confirm.write() = Some(confirm);
    }

    /// Everything committed before `t0` (a reading of `now()`) has been
    /// applied. Never moves the confirmation back.
    pub fn confirmed(&self, t0: i64) {
        self.confirmed_at.fetch_max(t0, Ordering::AcqRel);
    }

    /// Milliseconds since the last confirmation (None: never confirmed).
    pub fn confirmed_age_ms(&self) -> Option<i64> {
        let at = self.confirmed_at.load(Ordering::Acquire);
        (at != NEVER).then(|| self.clock.now_millis() - at)
    }

    /// Whether the caches may be used now without a catch-up.
    pub fn is_fresh(&self) -> bool {
        match self.mode {
            FreshnessMode::Always => true,
            FreshnessMode::Bounded { bound_ms, .. } => {
                self.clock.now_millis() - self.confirmed_at.load(Ordering::Acquire) <= bound_ms
            }
        }
    }

    /// How many answers were served stale (`serve_cached`), and refused
    /// because the node could not confirm; for metrics.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.stale_served.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }

    /// Call before consulting any cache that the feed keeps exact. Ok: the
    /// caches may be used. Err(Storage): answer 503.
    pub async fn ensure(&self) -> Result<(), Error> {
        let FreshnessMode::Bounded {
            bound_ms,
            stale,
            deadline_ms,
        } = self.mode
        else {
            return Ok(());
        };
        let now = self.clock.now_millis();
        if now - self.confirmed_at.load(Ordering::Acquire) <= bound_ms {
            return Ok(());
        }
        self.catch_up(bound_ms, stale, deadline_ms).await
    }

    async fn catch_up(
        &self,
        bound_ms: i64,
        stale: StalePolicy,
        deadline_ms: i64,
    ) -> Result<(), Error> {
        let deadline = Duration::from_millis(u64::try_from(deadline_ms).unwrap_or(0));
        let confirmed = tokio::time::timeout(deadline, async {
            let _flight = self.flight.lock().await;
            // Whoever held the flight may have confirmed meanwhile.
            let now = self.clock.now_millis();
            if now - self.confirmed_at.load(Ordering::Acquire) <= bound_ms {
                return true;
            }
            if now - self.failed_at.load(Ordering::Acquire) < RETRY_AFTER_FAILURE_MS {
                return false;
            }
            let confirm = self.confirm.read().clone();
            let ok = match confirm {
                Some(c) => crate::home::run(async move { c.confirm().await })
                    .await
                    .is_ok(),
                None => false,
            };
            let now = self.clock.now_millis();
            let fresh = now - self.confirmed_at.load(Ordering::Acquire) <= bound_ms;
            if !(ok && fresh) {
                self.failed_at.store(now, Ordering::Release);
            }
            ok && fresh
        })
        .await;
        match confirmed {
            Ok(true) => Ok(()),
            Ok(false) => self.stale_or_refuse(stale),
            Err(_) => {
                self.failed_at
                    .store(self.clock.now_millis(), Ordering::Release);
                self.stale_or_refuse(stale)
            }
        }
    }

    fn stale_or_refuse(&self, stale: StalePolicy) -> Result<(), Error> {
        let now = self.clock.now_millis();
        let age = now - self.confirmed_at.load(Ordering::Acquire);
        if let StalePolicy::ServeCached { max_ms } = stale
            && age <= max_ms
        {
            self.stale_served.fetch_add(1, Ordering::Relaxed);
            let last = self.last_stale_log.load(Ordering::Relaxed);
            if now - last >= STALE_LOG_EVERY_MS
                && self
                    .last_stale_log
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                tracing::warn!(
                    confirmed_age_ms = age,
                    "serving from caches that could not be confirmed (stale_policy = serve_cached)"
                );
            }
            return Ok(());
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        Err(Error::Storage(format!(
            "this node could not confirm its caches against the database (last confirmed {} ms ago)",
            if age > i64::MAX / 4 { -1 } else { age }
        )))
    }
}

#[cfg(test)]
#[path = "freshness_tests.rs"]
mod tests;
