//! What the cluster tests run against: a private PostgreSQL and Redis
//! (stopped, paused and restarted by the tests, never the shared ones) and
//! keygate processes from the real binary. Every process is killed when its
//! handle drops, every wait has a bound, and every port comes from a bind
//! to port 0.

#![allow(dead_code)]

pub mod cluster;
pub mod load;
pub mod node;
pub mod pg;
pub mod scenario;

use std::time::Duration;

pub use cluster::{Cluster, ClusterSpec};

/// The staleness bound the nodes run with (`confirm_within_ms`, default).
pub const S: Duration = Duration::from_millis(2000);

/// The longest any single wait in this target may take, pass or fail.
pub const BOUND: Duration = Duration::from_secs(20);

pub use keygate_test_support::{free_port, random_hex, services_required, signal};

/// One test of this target at a time: each starts a database and three
/// servers, and the staleness bounds they check should measure keygate, not
/// how many other clusters share the two cores.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
