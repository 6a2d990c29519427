//! The circuit breaker in front of Redis: after 5 consecutive failures, or
//! when at least half of the last second's calls failed (of 10 or more),
//! calls stop going to Redis and take their fallback at once, instead of
//! each waiting out its deadline. While open, one call per second goes
//! through as a probe; its success closes the breaker.
//!
//! Time is a parameter (`Instant`), so the rules are tested without sleeps.

use std::time::{Duration, Instant};

const CONSECUTIVE: u32 = 5;
const WINDOW: Duration = Duration::from_secs(1);
const MIN_CALLS: u32 = 10;
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    /// Failing fast; a probe is let through at the time given.
    Open,
    /// One probe is in flight.
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
pub struct Breaker {
    state: BreakerState,
    consecutive: u32,
    window_start: Instant,
    calls: u32,
    failures: u32,
    /// Open: when the next probe may go; half-open: when the probe is
    /// presumed lost (its deadline passed without a report).
    next_probe: Instant,
}

impl Breaker {
    pub fn new(now: Instant) -> Self {
        Self {
            state: BreakerState::Closed,
            consecutive: 0,
            window_start: now,
            calls: 0,
            failures: 0,
            next_probe: now,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// May a call go to Redis now? While open, exactly one per
    /// `PROBE_EVERY` may (the probe), and the breaker becomes half-open.
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.state {
            BreakerState::Closed => true,
            BreakerState::Open | BreakerState::HalfOpen if now >= self.next_probe => {
                self.state = BreakerState::HalfOpen;
                self.next_probe = now + PROBE_EVERY;
                true
            }
            BreakerState::Open | BreakerState::HalfOpen => false,
        }
    }

    pub fn success(&mut self, now: Instant) {
        self.roll(now);
        self.calls += 1;
        self.consecutive = 0;
        if self.state != BreakerState::Closed {
            // The probe answered: start afresh.
            self.state = BreakerState::Closed;
            self.window_start = now;
            self.calls = 0;
            self.failures = 0;
        }
    }

    pub fn failure(&mut self, now: Instant) {
        self.roll(now);
        self.calls += 1;
        self.failures += 1;
        self.consecutive += 1;
        let mostly_failing = self.calls >= MIN_CALLS && self.failures * 2 >= self.calls;
        if self.state != BreakerState::Closed || self.consecutive >= CONSECUTIVE || mostly_failing {
            self.state = BreakerState::Open;
            self.next_probe = now + PROBE_EVERY;
        }
    }

    fn roll(&mut self, now: Instant) {
        if now.duration_since(self.window_start) >= WINDOW {
            self.window_start = now;
            self.calls = 0;
            self.failures = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_consecutive_failures_open_it_and_a_probe_per_second_closes_it() {
        let t0 = Instant::now();
        let mut b = Breaker::new(t0);
        for _ in 0..4 {
            assert!(b.allow(t0));
            b.failure(t0);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        b.success(t0);
        for _ in 0..5 {
            assert!(b.allow(t0));
            b.failure(t0);
        }
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.allow(t0 + Duration::from_millis(999)));
        // One probe after a second, and only one.
        let t1 = t0 + PROBE_EVERY;
        assert!(b.allow(t1));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(!b.allow(t1));
        b.failure(t1);
        assert_eq!(b.state(), BreakerState::Open);
        let t2 = t1 + PROBE_EVERY;
        assert!(b.allow(t2));
        b.success(t2);
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.allow(t2));
    }

    #[test]
    fn half_the_calls_of_a_second_failing_opens_it() {
        let t0 = Instant::now();
        let mut b = Breaker::new(t0);
        for i in 0..10 {
            let t = t0 + Duration::from_millis(i * 50);
            assert!(b.allow(t));
            if i % 2 == 1 {
                b.failure(t);
            } else {
                b.success(t);
            }
        }
        assert_eq!(b.state(), BreakerState::Open);
        // Fewer failures than half, or spread over seconds, do not.
        let mut b = Breaker::new(t0);
        for i in 0..40 {
            let t = t0 + Duration::from_millis(i * 100);
            if i % 3 == 0 {
                b.failure(t);
            } else {
                b.success(t);
            }
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn a_lost_probe_lets_another_through_a_second_later() {
        let t0 = Instant::now();
        let mut b = Breaker::new(t0);
        for _ in 0..5 {
            b.failure(t0);
        }
        assert!(b.allow(t0 + PROBE_EVERY));
        // No report came back (the probe's task was dropped).
        assert!(!b.allow(t0 + PROBE_EVERY + Duration::from_millis(500)));
        assert!(b.allow(t0 + PROBE_EVERY * 2));
    }
}
