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
pub mod redis;
pub mod scenario;

use std::time::Duration;

pub use cluster::{Cluster, ClusterSpec};

/// The staleness bound the nodes run with (`confirm_within_ms`, default).
pub const S: Duration = Duration::from_millis(2000);

/// The longest any single wait in this target may take, pass or fail.
pub const BOUND: Duration = Duration::from_secs(20);

pub fn services_required() -> bool {
    std::env::var("KEYGATE_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// A free loopback port: bound, read, released. Another process could take
/// it in between; the servers started here fail loudly if it does.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// Sends a signal to a process we started.
pub fn signal(pid: u32, sig: rustix::process::Signal) {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .expect("a real pid");
    let _ = rustix::process::kill_process(pid, sig);
}

/// One test of this target at a time: each starts a database and three
/// servers, and the staleness bounds they check should measure keygate, not
/// how many other clusters share the two cores.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Random lowercase hex, for names and secrets.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).expect("random");
    hex::encode(buf)
}
