//! The time source the verifier reads, in whole seconds: always compiled
//! (not only with `remote`), so any crate can hand its own clock in.

use std::time::{SystemTime, UNIX_EPOCH};

/// The time source, in seconds since the epoch; tests inject their own.
/// The workspace's only `Clock`: downstream services implement it, so it
/// keeps its name; keygate's server clock is keygate-core's `MillisClock`.
pub trait Clock: Send + Sync {
    fn now_secs(&self) -> u64;
}

/// The operating system's clock. keygate-core re-exports this type and
/// makes it its `MillisClock` too, so `SystemClock` is one thing everywhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_secs(&self) -> u64 {
        // keygate-verify's one reading of the system time (it cannot use
        // keygate-core's MillisClock: downstream services depend on this crate
        // alone). A clock before 1970 is a broken host; 0 refuses every token.
        #[allow(clippy::disallowed_methods)]
        let now = SystemTime::now();
        now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }
}
