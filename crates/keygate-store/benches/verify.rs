//! In-process key verification: a cached key among 100,000 cached keys
//! (format check + HMAC + cache hit + rules) against the bare HMAC-SHA256 on
//! the same bytes, and an uncached verification that reads SQLite.
//!
//! `cargo bench -p keygate-store --bench verify`

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture;

use std::hint::black_box;

use criterion::{Criterion, criterion_group};
use keygate_core::ApiKey;
use keygate_core::cache::CacheConfig;

const KEYS: usize = 100_000;

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pepper = fixture::pepper();
    let (store, secrets) = rt.block_on(fixture::load(dir.path(), KEYS, &pepper));
    let cached = fixture::service(
        store.clone(),
        pepper.clone(),
        CacheConfig {
            capacity: KEYS * 2,
            ttl_ms: 3_600_000,
            negative_ttl_ms: 5_000,
        },
    );
    for s in &secrets {
        let v = rt.block_on(cached.verify_key(s, &[], None)).unwrap();
        assert!(v.is_valid());
    }
    assert_eq!(cached.cache_len(), KEYS, "every key is cached");
    let uncached = fixture::service(store, pepper.clone(), fixture::NO_CACHE);
    let n = secrets.len();

    let mut g = c.benchmark_group("verify");
    g.bench_function("baseline_hmac_sha256", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 7919) % n;
            black_box(pepper.hash(black_box(&secrets[i])))
        })
    });
    g.bench_function("parse_and_checksum", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 7919) % n;
            black_box(ApiKey::parse(black_box(&secrets[i])).is_ok())
        })
    });
    g.bench_function("cached_of_100k", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 7919) % n;
            let v = fixture::now_or_never(cached.verify_key(black_box(&secrets[i]), &[], None))
                .expect("a cache hit never waits")
                .unwrap();
            black_box(v.code)
        })
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

    // The ratio, measured in this run on the same keys.
    let hmac = fixture::median_ns(31, 20_000, |i| {
        black_box(pepper.hash(&secrets[(i * 7919) % n]));
    });
    let hit = fixture::median_ns(31, 20_000, |i| {
        let v = fixture::now_or_never(cached.verify_key(&secrets[(i * 7919) % n], &[], None));
        black_box(v.is_some());
    });
    let miss = fixture::median_ns(21, 200, |i| {
        let v = rt.block_on(uncached.verify_key(&secrets[(i * 7919) % n], &[], None));
        black_box(v.is_ok());
    });
    println!("\nsummary (medians, {KEYS} keys):");
    println!("  bare HMAC-SHA256          {hmac:>10.0} ns");
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
