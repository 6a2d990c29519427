//! Test support: a connection to the test Redis under a key prefix of its
//! own, or a skip (a failure with `KEYGATE_TEST_REQUIRE_SERVICES=1`).
#![allow(clippy::panic, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::conn::{RedisConn, RedisOptions};

/// A prefix no other test (or run) uses.
pub fn unique_prefix(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let millis = keygate_core::Clock::now_millis(&keygate_core::SystemClock);
    format!(
        "kgtest:{name}:{}:{millis}:{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The shared test Redis (`KEYGATE_TEST_REDIS_URL`, default
/// redis://127.0.0.1:6379), or None when it does not answer.
pub async fn test_conn(name: &str) -> Option<(Arc<RedisConn>, String)> {
    let url =
        std::env::var("KEYGATE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = unique_prefix(name);
    let mut opts = RedisOptions::new(url.clone(), prefix.clone());
    // Generous: a loaded CI machine is not what these tests measure.
    opts.timeout = Duration::from_secs(2);
    let conn = RedisConn::new(&opts).ok()?;
    let ping: Result<String, _> = conn
        .call(|mut c| async move { redis::cmd("PING").query_async(&mut c).await })
        .await;
    if ping.is_ok() {
        return Some((conn, prefix));
    }
    if std::env::var("KEYGATE_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("Redis at {url} does not answer and KEYGATE_TEST_REQUIRE_SERVICES=1");
    }
    eprintln!("skipped: Redis at {url} does not answer");
    None
}

/// Deletes every key under `prefix` (the nonce epoch never expires).
pub async fn cleanup(conn: &RedisConn, prefix: &str) {
    let mut c = conn.manager();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut c)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<i64, _> = redis::cmd("DEL").arg(&keys).query_async(&mut c).await;
    }
}
