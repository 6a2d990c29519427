//! keygate-cluster: what makes N keygate nodes on one PostgreSQL and one
//! Redis behave as one keygate.
//!
//! PostgreSQL stays the only truth: every change that can make a cached
//! answer wrong commits an entry in a gapless feed (keygate-store's `feed`)
//! with a NOTIFY, and each node applies the feed in order. Redis holds only
//! fast-changing counters (rate-limit TATs, nonces, login failures), never
//! an acknowledged write, and every Redis use has a declared fallback.
//!
//! - `watch`: a node's applied position, gap detection, catch-up, and the
//!   confirmation `Freshness` asks for past S.
//! - `run`: the loop that feeds `watch` from LISTEN and a 250 ms head poll.
//! - `membership`: heartbeats, live nodes, feed pruning.
//! - `acks`: the other nodes' acknowledgements, as heard here.
//! - `wait`: `?wait=all`, waiting for every live node's acknowledgement.
//! - `redis`: the connection (deadline, breaker, data-loss detection), the
//!   shared rate limiter, nonce store and login throttle, with fallbacks.
#![forbid(unsafe_code)]

pub mod acks;
pub mod membership;
pub mod redis;
pub mod run;
pub mod wait;
pub mod watch;

pub use membership::Membership;
pub use run::{Listen, NoticeSource, PgListen};
pub use wait::Propagation;
pub use watch::Node;
