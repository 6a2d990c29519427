//! keygate's test harness, one copy for every crate's tests (a
//! dev-dependency only; nothing here ships).
//!
//! - [`TestDatabase`]: a fresh SQLite file or a fresh PostgreSQL database
//!   per test (from `KEYGATE_TEST_POSTGRES_URL`), removed when dropped, even
//!   when the test panicked.
//! - [`on_both_backends!`]: declares each case once per backend.
//! - [`redis`]: a key prefix per test on the shared Redis, cleaned on drop,
//!   and a private `redis-server` that tests may stop, pause and restart.
//! - [`certs`]: CAs, client and server leaves, self-signed certificates and
//!   CRLs (rcgen), for the client registry's suites and the TLS ones, with
//!   files for those that configure keygate by path.
//! - [`free_port`] and [`signal`] for tests that run other processes.
//!
//! A service that is not there skips the test (after saying why), unless
//! `KEYGATE_TEST_REQUIRE_SERVICES=1`, when it fails it: CI must not pass by
//! skipping. The test clock is `keygate_core::ManualClock`; there is no
//! second one here.

// Test code: a failed step is a failed test, said as loudly as possible.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backends;
pub mod certs;
mod database;
mod postgres;
pub mod redis;

pub use database::{Backend, TestDatabase, sqlite_url};
pub use postgres::PgDatabase;

/// Whether a missing service fails the test instead of skipping it.
pub fn services_required() -> bool {
    std::env::var("KEYGATE_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Says why a test is skipped: `missing` (say "X is not set" or "X is not
/// installed") is a failure instead when services are required.
pub fn skip_unless_required(missing: &str) {
    assert!(
        !services_required(),
        "KEYGATE_TEST_REQUIRE_SERVICES=1 but {missing}"
    );
    eprintln!("skipping: {missing}");
}

/// Random lowercase hex, for database names and key prefixes.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("random bytes");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A free loopback port: bound, read, released. Another process could take
/// it in between; the servers the tests start fail loudly if it does.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// Sends a signal to a process the test started.
pub fn signal(pid: u32, sig: rustix::process::Signal) {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .expect("a real pid");
    let _ = rustix::process::kill_process(pid, sig);
}

pub use rustix::process::Signal;
