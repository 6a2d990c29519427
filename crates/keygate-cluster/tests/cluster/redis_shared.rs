//! The Redis-backed limiter, nonce store and login throttle against the
//! shared test Redis, each test under its own key prefix.

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
use keygate_core::ratelimit::{GcraLimiter, RateLimiter, Unavailable};
use keygate_core::users::throttle::{Outcome, Throttle, ThrottleConfig};

use crate::test_conn;

fn now_ms() -> i64 {
    keygate_core::SystemClock.now_millis()
}

fn limiter_options(nodes: u32) -> LimiterOptions {
    LimiterOptions {
        on_unavailable: Unavailable::LocalShare,
        live_nodes: Arc::new(AtomicU32::new(nodes)),
    }
}

/// Real time, Redis's clock against this process's: the same arrivals
/// admitted by both limiters in the same numbers (one either way for the
/// instant the two clocks are read apart), and that number is GCRA's.
#[tokio::test]
async fn over_a_real_time_run_redis_admits_what_one_node_admits() {
    let Some((conn, _ns)) = test_conn("realtime").await else {
        return;
    };
    let redis = RedisGcraLimiter::new(conn.clone(), limiter_options(1));
    let local = GcraLimiter::new();
    let spec = RateLimitSpec {
        limit: 40,
        period_seconds: 1,
    };
    let (mut by_redis, mut by_local) = (0, 0);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        let now = now_ms();
        if redis.check_burst("k", spec, 5, None, now).await.allowed {
            by_redis += 1;
        }
        if local.decide_with_burst("k", spec, 5, now).allowed {
            by_local += 1;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = start.elapsed().as_millis() as i64;
    // A burst of 5, then one per 25 ms.
    let expected = 5 + elapsed / 25;
    assert!(
        (by_redis - by_local as i64).abs() <= 1,
        "{by_redis} vs {by_local}"
    );
    // Never over; under only if this process stalled past the burst.
    assert!(by_redis <= expected + 1, "{by_redis} vs {expected}");
    assert!(by_redis * 10 >= expected * 8, "{by_redis} vs {expected}");
}

#[tokio::test]
async fn two_nodes_share_one_limit_and_a_refusal_is_cached_until_its_retry() {
    let Some((conn, ns)) = test_conn("share").await else {
        return;
    };
    // A second node: its own connection, the same Redis and prefix.
    let b_conn = RedisConn::new(&RedisOptions::new(ns.url.clone(), ns.prefix.clone())).unwrap();
    let a = RedisGcraLimiter::new(conn.clone(), limiter_options(2));
    let b = RedisGcraLimiter::new(b_conn, limiter_options(2));
    let spec = RateLimitSpec {
        limit: 10,
        period_seconds: 60,
    };
    let now = now_ms();
    let mut admitted = 0;
    for i in 0..30 {
        let node: &RedisGcraLimiter = if i % 2 == 0 { &a } else { &b };
        if node.check("key_x", spec, now).await.allowed {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 10, "one burst across both nodes");
    // Refused: the next refusals are answered without asking Redis.
    let calls = conn.stats().calls.load(Ordering::Relaxed);
    for _ in 0..100 {
        let d = a.check("key_x", spec, now).await;
        assert!(!d.allowed && !d.unavailable);
        assert!(d.retry_after_ms > 0 && d.retry_after_ms <= 6_000);
    }
    assert_eq!(conn.stats().calls.load(Ordering::Relaxed), calls);
    // A refund gives exactly one back. The other node still refuses from
    // its deny cache: a refund elsewhere can only be missed, never doubled.
    a.refund("key_x", spec, now).await;
    assert!(!b.check("key_x", spec, now).await.allowed);
    assert!(a.check("key_x", spec, now).await.allowed);
    assert!(!a.check("key_x", spec, now).await.allowed);
}

fn nonce<'a>(key: &'a str, n: &'a str, created_ms: i64, limit: u32) -> NonceUse<'a> {
    let now = now_ms();
    NonceUse {
        key_id: key,
        nonce: n,
        expires_at_ms: created_ms + 60_000,
        created_ms,
        now_ms: now,
        per_key_limit: limit,
    }
}

#[tokio::test]
async fn nonces_are_fresh_once_per_key_within_the_quota_and_epoch() {
    let Some((conn, ns)) = test_conn("nonce").await else {
        return;
    };
    let store = RedisNonceStore::new(conn.clone(), Arc::new(MemoryNonceStore::new(1000)));
    let now = now_ms();
    let store = &store;
    let r = |n: NonceUse<'static>| store_record(store, n);
    assert_eq!(r(nonce("key_a", "n1", now, 2)).await, NonceVerdict::Fresh);
    assert_eq!(
        r(nonce("key_a", "n1", now, 2)).await,
        NonceVerdict::Replayed
    );
    assert_eq!(r(nonce("key_b", "n1", now, 2)).await, NonceVerdict::Fresh);
    assert_eq!(r(nonce("key_a", "n2", now, 2)).await, NonceVerdict::Fresh);
    match r(nonce("key_a", "n3", now, 2)).await {
        NonceVerdict::OverQuota { retry_after_ms } => {
            assert!((1..=60_000).contains(&retry_after_ms), "{retry_after_ms}")
        }
        other => panic!("{other:?}"),
    }
    // Redis forgets everything (a restart or a flush): the epoch goes with
    // it, and a signature made before the loss is refused.
    let mut m = conn.manager();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", ns.prefix))
        .query_async(&mut m)
        .await
        .unwrap();
    let _: i64 = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut m)
        .await
        .unwrap();
    assert_eq!(
        r(nonce("key_a", "n1", now - 5, 2)).await,
        NonceVerdict::BeforeEpoch
    );
    let later = now_ms() + 1;
    assert_eq!(r(nonce("key_a", "n9", later, 2)).await, NonceVerdict::Fresh);
}

async fn store_record(store: &RedisNonceStore, n: NonceUse<'static>) -> NonceVerdict {
    store.record(&n).await.unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn two_nodes_throttle_a_username_and_an_address_as_one() {
    let Some((conn, _ns)) = test_conn("throttle").await else {
        return;
    };
    let nodes = Arc::new(AtomicU32::new(2));
    let a = RedisLoginThrottle::new(conn.clone(), ThrottleConfig::default(), nodes.clone());
    let b = RedisLoginThrottle::new(conn.clone(), ThrottleConfig::default(), nodes);
    let now = now_ms();
    // Five free failures, counted across both nodes.
    for i in 0..5 {
        let node = if i % 2 == 0 { &a } else { &b };
        let at = node
            .admit("alice", ip(&format!("192.0.2.{i}")), now)
            .await
            .unwrap();
        node.settle(at, Outcome::Failed).await;
    }
    assert_eq!(
        a.admit("alice", ip("192.0.2.50"), now).await.unwrap_err(),
        1
    );
    assert_eq!(
        b.admit("alice", ip("192.0.2.51"), now).await.unwrap_err(),
        1
    );
    // Another name is free; a success starts a name afresh everywhere.
    let at = a.admit("bob", ip("192.0.2.60"), now).await.unwrap();
    a.settle(at, Outcome::Failed).await;
    let at = b.admit("bob", ip("192.0.2.61"), now).await.unwrap();
    b.settle(at, Outcome::Succeeded).await;
    // 20 failures per address (a burst of 20 in the GCRA), then a wait.
    for i in 0..20 {
        let node = if i % 2 == 0 { &a } else { &b };
        let at = node
            .admit(&format!("u{i}"), ip("203.0.113.7"), now)
            .await
            .unwrap();
        node.settle(at, Outcome::Failed).await;
    }
    let wait = a.admit("fresh", ip("203.0.113.7"), now).await.unwrap_err();
    assert!((1..=45).contains(&wait), "{wait}");
    // Another address is not affected.
    assert!(b.admit("fresh", ip("203.0.113.8"), now).await.is_ok());
}
