//! A connection's requests in flight and when its last one ended: the
//! connection is idle once none has been in flight for a while.
//!
//! Kept in two atomics that the connection's watchdog (`idle`) reads only
//! when its own timer fires, so a request costs two atomic updates and a
//! clock read. (It was a `watch` channel: every request woke the watchdog
//! twice and re-armed its timer, about 4k instructions of a proxied
//! request's 54k.) The price is a watchdog that may look again without
//! reason: while a request is in flight it checks every quarter of the
//! idle timeout, so a connection is closed at most a quarter late after a
//! request that outlasted a whole timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Requests in flight on one connection, and when the last one ended.
pub struct Activity {
    opened: Instant,
    active: AtomicUsize,
    /// Milliseconds from `opened` to the end of the last request, plus
    /// one; 0 while none has ended.
    last_end: AtomicU64,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            active: AtomicUsize::new(0),
            last_end: AtomicU64::new(0),
        })
    }

    /// When the connection has been quiet since, if it is quiet: its
    /// opening before any request, else the end of its last one.
    fn quiet_since(&self) -> Option<(Instant, bool)> {
        // Acquire: a request that ended wrote `last_end` before leaving.
        if self.active.load(Ordering::Acquire) > 0 {
            return None;
        }
        match self.last_end.load(Ordering::Relaxed) {
            0 => Some((self.opened, false)),
            ms => Some((self.opened + Duration::from_millis(ms - 1), true)),
        }
    }
}

/// One request in flight; the connection is idle once none is.
pub struct Busy(Arc<Activity>);

impl Busy {
    pub fn enter(activity: &Arc<Activity>) -> Self {
        activity.active.fetch_add(1, Ordering::Relaxed);
        Self(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &self.0;
        let ms = u64::try_from(a.opened.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        a.last_end.fetch_max(ms + 1, Ordering::Relaxed);
        a.active.fetch_sub(1, Ordering::Release);
    }
}

/// Resolves once the connection has had no request in flight for `first`
/// (before its first request) or `idle` (after one).
pub async fn idle(activity: &Activity, first: Duration, idle: Duration) {
    loop {
        let wake = match activity.quiet_since() {
            None => Instant::now() + (idle / 4).max(Duration::from_millis(10)),
            Some((since, seen)) => {
                let deadline = since + if seen { idle } else { first };
                if deadline <= Instant::now() {
                    return;
                }
                deadline
            }
        };
        tokio::time::sleep_until(wake).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn resolves_within(f: impl std::future::Future<Output = ()>, d: Duration) -> bool {
        tokio::time::timeout(d, f).await.is_ok()
    }

    const FIRST: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_requests_is_idle_after_the_first_wait() {
        let a = Activity::new();
        assert!(!resolves_within(idle(&a, FIRST, IDLE), FIRST - Duration::from_millis(1)).await);
        let a = Activity::new();
        assert!(resolves_within(idle(&a, FIRST, IDLE), FIRST).await);
    }

    #[tokio::test(start_paused = true)]
    async fn the_idle_wait_counts_from_the_end_of_the_last_request() {
        let a = Activity::new();
        let watchdog = idle(&a, FIRST, IDLE);
        tokio::pin!(watchdog);
        let busy = Busy::enter(&a);
        // In flight far beyond both waits: never idle.
        assert!(!resolves_within(watchdog.as_mut(), IDLE * 3).await);
        drop(busy);
        assert!(!resolves_within(watchdog.as_mut(), IDLE - Duration::from_millis(1)).await);
        // At most a quarter late, as the module says.
        assert!(resolves_within(watchdog.as_mut(), IDLE / 4 + Duration::from_millis(2)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_between_checks_restarts_the_wait() {
        let a = Activity::new();
        let watchdog = idle(&a, FIRST, IDLE);
        tokio::pin!(watchdog);
        tokio::time::sleep(FIRST / 2).await;
        drop(Busy::enter(&a));
        // The first wait no longer applies; the idle one runs from here.
        assert!(!resolves_within(watchdog.as_mut(), IDLE - Duration::from_millis(1)).await);
        assert!(resolves_within(watchdog.as_mut(), Duration::from_millis(2)).await);
    }
}
