//! keygate-cluster: what makes N keygate nodes on one PostgreSQL and one
//! Redis behave as one keygate.
//!
//! PostgreSQL stays the only truth: every change that can make a cached
//! answer wrong commits an entry in a gapless feed (keygate-store's `feed`)
//! with a NOTIFY, and each node applies the feed in order. Redis holds only
//! fast-changing counters (rate-limit TATs, nonces, login failures), never
//! an acknowledged write, and every Redis use has a declared fallback.
//!
//! - `redis`: the connection (deadline, breaker, data-loss detection), the
//!   shared rate limiter, nonce store and login throttle, with fallbacks.
#![forbid(unsafe_code)]

pub mod redis;
