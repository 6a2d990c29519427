//! Faults on a private redis-server (never the shared one): restarted
//! empty, and black-holed with SIGSTOP. Every wait is bounded.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use keygate_cluster::redis::{
    LimiterOptions, RedisConn, RedisGcraLimiter, RedisLoginThrottle, RedisNonceStore, RedisOptions,
};
use keygate_core::MillisClock;
use keygate_core::httpsig::{MemoryNonceStore, NonceStore, NonceUse, NonceVerdict};
use keygate_core::model::RateLimitSpec;
use keygate_core::ratelimit::{RateLimiter, Unavailable};
use keygate_core::users::throttle::{Outcome, Throttle, ThrottleConfig};
use keygate_test_support::redis::PrivateRedis;

fn now_ms() -> i64 {
    keygate_core::SystemClock.now_millis()
}

fn nonce(n: &str, created_ms: i64) -> NonceUse<'_> {
    NonceUse {
        key_id: "key_a",
        nonce: n,
        expires_at_ms: created_ms + 60_000,
        created_ms,
        now_ms: now_ms(),
        per_key_limit: 1000,
    }
}

const SPEC: RateLimitSpec = RateLimitSpec {
    limit: 10,
    period_seconds: 60,
};

fn options(nodes: u32, policy: Unavailable) -> LimiterOptions {
    LimiterOptions {
        on_unavailable: policy,
        live_nodes: Arc::new(AtomicU32::new(nodes)),
    }
}

/// Calls `probe` every 20 ms until `done`, for at most `secs`.
async fn until<F: AsyncFnMut() -> bool>(secs: u64, mut done: F) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_redis_restarted_empty_is_detected_and_older_signatures_are_refused() {
    let Some(mut server) = PrivateRedis::start() else {
        return;
    };
    let mut opts = RedisOptions::new(server.url(), "kg");
    // Generous: this test is about detection, not the deadline.
    opts.timeout = Duration::from_millis(500);
    let conn = RedisConn::new(&opts).unwrap();
    let nonces = RedisNonceStore::new(conn.clone(), Arc::new(MemoryNonceStore::new(100)));
    let limiter = RedisGcraLimiter::new(conn.clone(), options(1, Unavailable::Deny));
    // Connected: the epoch is set before any signature is checked.
    let ping = async || {
        let r: Result<String, _> = conn
            .call(|mut c| async move { redis::cmd("PING").query_async(&mut c).await })
            .await;
        r.is_ok()
    };
    assert!(until(5, ping).await);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before = now_ms() - 10;
    assert_eq!(
        nonces.record(&nonce("n1", before)).await.unwrap(),
        NonceVerdict::Fresh
    );
    assert_eq!(
        nonces.record(&nonce("n1", before)).await.unwrap(),
        NonceVerdict::Replayed
    );
    for _ in 0..10 {
        assert!(limiter.check("k", SPEC, now_ms()).await.allowed);
    }
    assert!(!limiter.check("k", SPEC, now_ms()).await.allowed);
    let first_run = conn.state().run_id.expect("run_id read at the first call");

    server.restart_empty();
    let ping = async || {
        let r: Result<String, _> = conn
            .call(|mut c| async move { redis::cmd("PING").query_async(&mut c).await })
            .await;
        r.is_ok() && conn.state().data_losses == 1
    };
    assert!(
        until(10, ping).await,
        "the restart was not detected: {:?}",
        conn.state()
    );
    assert_ne!(conn.state().run_id.unwrap(), first_run);
    // The nonce seen before the restart cannot be replayed: everything
    // signed before the loss is refused, while new signatures pass.
    assert_eq!(
        nonces.record(&nonce("n1", before)).await.unwrap(),
        NonceVerdict::BeforeEpoch
    );
    let after = now_ms() + 5;
    assert_eq!(
        nonces.record(&nonce("n2", after)).await.unwrap(),
        NonceVerdict::Fresh
    );
    assert_eq!(
        nonces.record(&nonce("n2", after)).await.unwrap(),
        NonceVerdict::Replayed
    );
    // The limiter lost its TAT: at most one more burst (declared).
    let d = limiter.check("other", SPEC, now_ms()).await;
    assert!(d.allowed && !d.unavailable);
}

#[tokio::test]
async fn a_black_holed_redis_fails_fast_opens_the_breaker_falls_back_and_recovers() {
    let Some(mut server) = PrivateRedis::start() else {
        return;
    };
    let conn = RedisConn::new(&RedisOptions::new(server.url(), "kg")).unwrap();
    // The production fallback: the database's nonce table (SQLite here).
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", db.path().join("n.db").display());
    let fallback = Arc::new(
        keygate_store::connect(&url, keygate_store::ConnectOptions::default())
            .await
            .unwrap(),
    );
    let nonces = RedisNonceStore::new(conn.clone(), fallback.clone());
    let deny = RedisGcraLimiter::new(conn.clone(), options(2, Unavailable::Deny));
    let share = RedisGcraLimiter::new(conn.clone(), options(2, Unavailable::LocalShare));
    let throttle = RedisLoginThrottle::new(
        conn.clone(),
        ThrottleConfig::default(),
        Arc::new(AtomicU32::new(2)),
    );
    // Warm: the connection is up, the first run_id read.
    let warm = async || deny.check("warm", SPEC, now_ms()).await.allowed;
    assert!(until(5, warm).await);
    assert_eq!(conn.stats().limiter_fallbacks.load(Ordering::Relaxed), 0);

    server.pause();
    // Each call gives up at its deadline (50 ms; slack for a loaded CI).
    for _ in 0..5 {
        let t = Instant::now();
        let d = deny.check("k", SPEC, now_ms()).await;
        assert!(
            t.elapsed() < Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
        assert!(!d.allowed && d.unavailable);
    }
    assert_eq!(conn.state().breaker, "open");
    // Open: Redis is not asked; the fallbacks answer at once.
    let calls = conn.stats().calls.load(Ordering::Relaxed);
    let t = Instant::now();
    let mut shared = 0;
    for _ in 0..20 {
        if share.check("k", SPEC, now_ms()).await.allowed {
            shared += 1;
        }
    }
    assert_eq!(
        shared, 5,
        "local share: half the burst of 10 on each of 2 nodes"
    );
    let during = now_ms();
    assert_eq!(
        nonces.record(&nonce("n1", during)).await.unwrap(),
        NonceVerdict::Fresh
    );
    assert_eq!(
        fallback.record(&nonce("n1", during)).await.unwrap(),
        NonceVerdict::Replayed,
        "recorded in the database"
    );
    for i in 0..2 {
        let a = throttle
            .admit("alice", IpAddr::from([192, 0, 2, i]), now_ms())
            .await
            .unwrap();
        throttle.settle(a, Outcome::Failed).await;
    }
    assert!(
        throttle
            .admit("alice", IpAddr::from([192, 0, 2, 9]), now_ms())
            .await
            .is_err(),
        "5 free failures / 2 nodes"
    );
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(conn.stats().calls.load(Ordering::Relaxed), calls);

    server.resume();
    // A probe a second closes the breaker once Redis answers again.
    let recovered = async || {
        let d = deny.check("after", SPEC, now_ms()).await;
        d.allowed && !d.unavailable
    };
    assert!(until(5, recovered).await, "{:?}", conn.state());
    assert_eq!(conn.state().breaker, "closed");
    // The nonce recorded in the fallback during the outage still counts.
    assert_eq!(
        nonces.record(&nonce("n1", during)).await.unwrap(),
        NonceVerdict::Replayed
    );
}
