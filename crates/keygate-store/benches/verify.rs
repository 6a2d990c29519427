//! In-process key verification: a cached key among 100,000 cached keys
//! (format check + HMAC + cache hit + rules) against the bare HMAC-SHA256 on
//! the same bytes, and an uncached verification that reads SQLite.
//!
//! `cargo bench -p keygate-store --bench verify`

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture;

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group};
use keygate_core::ApiKey;
use keygate_core::keys::cache::CacheConfig;

/// Keys cached; KEYGATE_BENCH_CACHED_KEYS overrides it to see how much of a
/// hit is memory latency (a small set stays in the CPU cache).
fn keys() -> usize {
    std::env::var("KEYGATE_BENCH_CACHED_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pepper = fixture::pepper();
    let keys = keys();
    let (store, secrets) = rt.block_on(fixture::load(dir.path(), keys, &pepper));
    let cached = fixture::service(
        store.clone(),
        pepper.clone(),
        CacheConfig {
            capacity: keys * 2,
            ttl_ms: 3_600_000,
            negative_ttl_ms: 5_000,
        },
    );
    for s in &secrets {
        let v = rt.block_on(cached.verify_key(s, &[], None)).unwrap();
        assert!(v.is_valid());
    }
    assert_eq!(cached.cache_len(), keys, "every key is cached");
    let uncached = fixture::service(store, pepper.clone(), fixture::NO_CACHE);
    let n = secrets.len();

    let mut g = c.benchmark_group("verify");
    let mut i = 0;
    let mut fresh = || {
        i = (i + 7919) % n;
        secrets[i].clone()
    };
    g.bench_function("baseline_hmac_sha256", |b| {
        b.iter_batched_ref(
            &mut fresh,
            |key| black_box(pepper.hash(black_box(key))),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("format_and_checksum", |b| {
        b.iter_batched_ref(
            &mut fresh,
            |key| black_box(ApiKey::check(black_box(key)).is_ok()),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("cached_of_100k", |b| {
        b.iter_batched_ref(
            &mut fresh,
            |key| {
                let v = fixture::now_or_never(cached.verify_key(black_box(key), &[], None))
                    .expect("a cache hit never waits")
                    .unwrap();
                black_box(v.code)
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("uncached_sqlite_of_100k", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 7919) % n;
            let v = rt
                .block_on(uncached.verify_key(black_box(&secrets[i]), &[], None))
                .unwrap();
            black_box(v.code)
        })
    });
    g.finish();

    // The ratio, measured in this run on the same keys. Each key is a fresh
    // copy, as in a request; the cache entries are spread over 100,000.
    let hmac = fixture::median_fresh_ns(101, 512, &secrets, |k| {
        black_box(pepper.hash(k));
    });
    let check = fixture::median_fresh_ns(101, 512, &secrets, |k| {
        black_box(ApiKey::check(k).is_ok());
    });
    let clock = fixture::median_ns(31, 20_000, |_| {
        black_box(keygate_core::MillisClock::now_millis(
            &keygate_core::SystemClock,
        ));
    });
    let lookup = fixture::median_fresh_ns(101, 512, &secrets, |k| {
        black_box(cached.cache_probe(&pepper.hash(k)));
    });
    let hit = fixture::median_fresh_ns(101, 512, &secrets, |k| {
        let v = fixture::now_or_never(cached.verify_key(k, &[], None)).expect("a hit never waits");
        black_box(v.is_ok());
    });
    let miss = fixture::median_fresh_ns(21, 100, &secrets, |k| {
        let v = rt.block_on(uncached.verify_key(k, &[], None));
        black_box(v.is_ok());
    });
    println!("\nsummary (medians, {keys} keys):");
    println!("  bare HMAC-SHA256          {hmac:>10.0} ns");
    println!("  format + checksum         {check:>10.0} ns");
    println!("  clock read                {clock:>10.0} ns");
    println!("  HMAC + cache lookup       {lookup:>10.0} ns");
    println!(
        "  cached verification       {hit:>10.0} ns  ({:.2}x the HMAC; target < 1000 ns)",
        hit / hmac
    );
    println!(
        "  uncached, SQLite lookup   {miss:>10.0} ns  ({:.1} us; target < 100 us)",
        miss / 1000.0
    );
}

criterion_group!(group, benches);

fn main() {
    group();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
