//! Time as a parameter: every service reads the time through a
//! `MillisClock`, so tests drive expiry, grace windows and rate limits
//! without sleeping.
//!
//! Why two traits and one `SystemClock`: keygate-verify, the crate
//! downstream services depend on alone, owns the name `Clock` (whole
//! seconds, unsigned: all a token check needs), and its users hand their own
//! clock to `RemoteVerifier`. Renaming it would break them for an internal
//! tidy-up, so the server's own clock, which needs milliseconds for rate
//! limits and signed values for the database, is `MillisClock` here. The
//! operating system's clock is one type, keygate-verify's `SystemClock`,
//! which this module also makes a `MillisClock`; `ManualClock` is both too.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub use keygate_verify::SystemClock;

/// The server's time source, in milliseconds since the Unix epoch.
pub trait MillisClock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> i64;

    /// Whole seconds since the Unix epoch, the unit stored in the database.
    fn now_secs(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }
}

/// The real clock. Beside keygate-verify's reading in seconds, the only
/// place in the project that reads the system time.
impl MillisClock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned reading of the system time
    fn now_millis(&self) -> i64 {
        // A clock before 1970 is a broken machine; treat it as the epoch
        // rather than panic on the request path.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to; for tests and benchmarks.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start_millis: i64) -> Self {
        Self(AtomicI64::new(start_millis))
    }

    /// Starts at the current system time, so records look realistic.
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now_millis())
    }

    pub fn advance_secs(&self, secs: i64) {
        self.0.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    pub fn advance_millis(&self, millis: i64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }

    pub fn set_millis(&self, millis: i64) {
        self.0.store(millis, Ordering::SeqCst);
    }
}

impl MillisClock for ManualClock {
    fn now_millis(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// keygate-verify's clock counts whole seconds, unsigned; a manual clock
/// serves its tests too, so the workspace has one test clock.
impl keygate_verify::Clock for ManualClock {
    fn now_secs(&self) -> u64 {
        u64::try_from(MillisClock::now_secs(self)).unwrap_or(0)
    }
}
