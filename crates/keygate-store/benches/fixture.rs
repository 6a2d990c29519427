//! Shared by the benchmarks: a SQLite database holding N keys made the way
//! the service makes them, and a way to run the verifier's future without a
//! runtime when it completes without waiting (the cached path).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use keygate_core::keys::cache::CacheConfig;
use keygate_core::keys::pepper::Pepper;
use keygate_core::model::{KeyRecord, SecretRecord};
use keygate_core::ratelimit::GcraLimiter;
use keygate_core::{ApiKey, KeyEnv, KeyId, KeyService, SystemClock};
use keygate_store::{ConnectOptions, SqlStore};

pub fn pepper() -> Arc<Pepper> {
    Arc::new(Pepper::new(1, b"benchmark-pepper-0123456789abcdefghijklmnop").unwrap())
}

/// Creates `n` keys in a fresh database under `dir`; returns the store and the secrets.
pub async fn load(dir: &Path, n: usize, pepper: &Pepper) -> (SqlStore, Vec<String>) {
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let store = keygate_store::connect(&url, ConnectOptions::default())
        .await
        .unwrap();
    let mut secrets = Vec::with_capacity(n);
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..n {
        let key = ApiKey::generate(KeyEnv::Live).unwrap();
        let id = KeyId::generate().unwrap();
        let record = KeyRecord {
            id: id.clone(),
            name: format!("bench {i}"),
            owner: format!("owner-{}", i % 1000),
            tenant: None,
            scopes: vec![keygate_core::model::Scope::parse("orders:read").unwrap()],
            metadata: serde_json::Map::new(),
            env: KeyEnv::Live,
            prefix: key.display_prefix(),
            created_at: 1_700_000_000,
            updated_at: 1_700_000_000,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            rate_limit: None,
            remaining: None,
            version: 1,
        };
        let secret = SecretRecord {
            hash: pepper.hash(key.expose()),
            pepper_version: pepper.version(),
            key_id: id,
            created_at: 1_700_000_000,
            expires_at: None,
        };
        secrets.push(key.expose().to_owned());
        batch.push((record, secret));
        if batch.len() == batch.capacity() {
            store.bulk_insert_keys(&batch).await.unwrap();
            batch.clear();
        }
    }
    store.bulk_insert_keys(&batch).await.unwrap();
    (store, secrets)
}

/// The service as the server builds it, verification counting included.
pub fn service(store: SqlStore, pepper: Arc<Pepper>, cache: CacheConfig) -> KeyService {
    let store = Arc::new(store);
    KeyService::new(
        store.clone(),
        pepper,
        Arc::new(SystemClock),
        Arc::new(GcraLimiter::new()),
        cache,
    )
    .with_usage_store(store)
}

pub const NO_CACHE: CacheConfig = CacheConfig {
    capacity: 16,
    ttl_ms: 0,
    negative_ttl_ms: 0,
};

/// Polls a future once; returns None if it would wait.
pub fn now_or_never<F: Future>(f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// Median nanoseconds per call of `f`, over `rounds` rounds of `per_round` calls.
pub fn median_ns(rounds: usize, per_round: usize, mut f: impl FnMut(usize)) -> f64 {
    let mut samples = Vec::with_capacity(rounds);
    let mut i = 0;
    for _ in 0..rounds {
        let start = std::time::Instant::now();
        for _ in 0..per_round {
            f(i);
            i += 1;
        }
        samples.push(start.elapsed().as_nanos() as f64 / per_round as f64);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

pub fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Median nanoseconds per call of `f` over fresh copies of `keys`: each round
/// copies a batch (untimed), as a request handler holds a key it has just
/// read from the network, then times `f` over the batch.
pub fn median_fresh_ns(
    rounds: usize,
    batch: usize,
    keys: &[String],
    mut f: impl FnMut(&str),
) -> f64 {
    let mut samples = Vec::with_capacity(rounds);
    let mut next = 0usize;
    for _ in 0..rounds {
        let fresh: Vec<String> = (0..batch)
            .map(|_| {
                next = (next + 7919) % keys.len();
                keys[next].clone()
            })
            .collect();
        let start = std::time::Instant::now();
        for k in &fresh {
            f(k);
        }
        samples.push(start.elapsed().as_nanos() as f64 / batch as f64);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
