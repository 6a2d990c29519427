#![allow(clippy::unwrap_used)]

use std::sync::atomic::AtomicUsize;

use super::*;
use crate::clock::ManualClock;

/// A confirmation that succeeds (confirming at the time it starts), fails,
/// or hangs, counting its calls.
struct Scripted {
    freshness: parking_lot::Mutex<Option<Arc<Freshness>>>,
    clock: Arc<ManualClock>,
    outcome: parking_lot::Mutex<Outcome>,
    calls: AtomicUsize,
}

#[derive(Clone, Copy)]
enum Outcome {
    Ok,
    Fail,
    Hang,
}

#[async_trait]
impl Confirm for Scripted {
    async fn confirm(&self) -> Result<(), Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let t0 = self.clock.now_millis();
        let outcome = *self.outcome.lock();
        match outcome {
            Outcome::Ok => {
                tokio::task::yield_now().await;
                let f = self.freshness.lock().clone().unwrap();
                f.confirmed(t0);
                Ok(())
            }
            Outcome::Fail => Err(Error::Storage("down".into())),
            Outcome::Hang => {
                std::future::pending::<()>().await;
                Ok(())
            }
        }
    }
}

fn setup(stale: StalePolicy) -> (Arc<Freshness>, Arc<Scripted>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let mode = FreshnessMode::Bounded {
        bound_ms: 2000,
        stale,
        deadline_ms: 50,
    };
    let f = Arc::new(Freshness::new(mode, clock.clone()));
    let c = Arc::new(Scripted {
        freshness: parking_lot::Mutex::new(Some(f.clone())),
        clock: clock.clone(),
        outcome: parking_lot::Mutex::new(Outcome::Ok),
        calls: AtomicUsize::new(0),
    });
    f.install(c.clone());
    (f, c, clock)
}

#[tokio::test]
async fn a_single_node_is_always_fresh() {
    let f = Freshness::always();
    assert!(f.ensure().await.is_ok());
    assert!(f.is_fresh());
    assert_eq!(f.bound_ms(), None);
}

#[tokio::test]
async fn within_s_nothing_is_asked_and_past_s_one_confirmation_runs() {
    let (f, c, clock) = setup(StalePolicy::FailClosed);
    f.confirmed(clock.now_millis());
    clock.advance_millis(2000);
    f.ensure().await.unwrap();
    assert_eq!(
        c.calls.load(Ordering::SeqCst),
        0,
        "at S exactly: still fresh"
    );
    clock.advance_millis(1);
    assert!(!f.is_fresh());
    f.ensure().await.unwrap();
    assert_eq!(c.calls.load(Ordering::SeqCst), 1);
    assert!(f.is_fresh());
    assert_eq!(f.confirmed_age_ms(), Some(0));
}

#[tokio::test]
async fn concurrent_requests_share_one_confirmation() {
    let (f, c, clock) = setup(StalePolicy::FailClosed);
    clock.advance_millis(10_000);
    let waits: Vec<_> = (0..20)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move { f.ensure().await })
        })
        .collect();
    for w in waits {
        w.await.unwrap().unwrap();
    }
    assert_eq!(c.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_database_that_cannot_answer_fails_closed_and_is_not_stampeded() {
    let (f, c, clock) = setup(StalePolicy::FailClosed);
    f.confirmed(clock.now_millis());
    clock.advance_millis(2001);
    *c.outcome.lock() = Outcome::Fail;
    assert!(matches!(f.ensure().await, Err(Error::Storage(_))));
    // Within the back-off, no new attempt.
    clock.advance_millis(50);
    assert!(matches!(f.ensure().await, Err(Error::Storage(_))));
    assert_eq!(c.calls.load(Ordering::SeqCst), 1);
    clock.advance_millis(RETRY_AFTER_FAILURE_MS);
    *c.outcome.lock() = Outcome::Ok;
    f.ensure().await.unwrap();
    assert_eq!(c.calls.load(Ordering::SeqCst), 2);
    assert_eq!(f.counts(), (0, 2));
}

#[tokio::test]
async fn a_hanging_confirmation_ends_at_the_deadline() {
    let (f, c, clock) = setup(StalePolicy::FailClosed);
    clock.advance_millis(5000);
    *c.outcome.lock() = Outcome::Hang;
    let started = std::time::Instant::now();
    assert!(matches!(f.ensure().await, Err(Error::Storage(_))));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn without_a_confirmation_installed_it_fails_closed() {
    let clock = Arc::new(ManualClock::new(0));
    let f = Freshness::new(
        FreshnessMode::Bounded {
            bound_ms: 500,
            stale: StalePolicy::FailClosed,
            deadline_ms: 50,
        },
        clock,
    );
    assert!(f.ensure().await.is_err(), "never confirmed");
    assert_eq!(f.confirmed_age_ms(), None);
}

#[tokio::test]
async fn serve_cached_serves_stale_up_to_its_limit_and_counts() {
    let (f, c, clock) = setup(StalePolicy::ServeCached { max_ms: 10_000 });
    f.confirmed(clock.now_millis());
    *c.outcome.lock() = Outcome::Fail;
    clock.advance_millis(3000);
    f.ensure().await.unwrap();
    clock.advance_millis(7000);
    f.ensure().await.unwrap();
    clock.advance_millis(1);
    assert!(f.ensure().await.is_err(), "past stale_serve_max");
    assert_eq!(f.counts(), (2, 1));
}

#[test]
fn confirmations_never_move_back_and_the_boot_clock_moves_forward() {
    let (f, _, clock) = setup(StalePolicy::FailClosed);
    let now = clock.now_millis();
    f.confirmed(now);
    f.confirmed(now - 5000);
    assert_eq!(f.confirmed_age_ms(), Some(0));
    let a = BootClock.now_millis();
    let b = BootClock.now_millis();
    assert!(a > 0 && b >= a);
}
