//! Does verification slow down as the key table grows? Uncached
//! verifications of random keys (every one reads SQLite) with 1,000 keys and
//! with KEYGATE_BENCH_KEYS (default 1,000,000) keys, in one run, with the
//! database size and this process's resident memory.
//!
//! `cargo bench -p keygate-store --bench scale`

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture;

use std::hint::black_box;
use std::time::Instant;

const SAMPLES: usize = 20_000;

fn rate(rt: &tokio::runtime::Runtime, svc: &keygate_core::KeyService, secrets: &[String]) -> f64 {
    // A fixed-seed LCG picks keys all over the table, so the B-tree's cold
    // pages are part of the measurement.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let start = Instant::now();
    for _ in 0..SAMPLES {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let key = &secrets[(x >> 33) as usize % secrets.len()];
        let v = rt.block_on(svc.verify_key(key, &[], None)).unwrap();
        assert!(v.is_valid());
        black_box(v);
    }
    SAMPLES as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let big: usize = std::env::var("KEYGATE_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pepper = fixture::pepper();
    let mut results = Vec::new();
    for n in [1_000, big] {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let (store, secrets) = rt.block_on(fixture::load(dir.path(), n, &pepper));
        let load_secs = started.elapsed().as_secs_f64();
        let svc = fixture::service(store.clone(), pepper.clone(), fixture::NO_CACHE);
        rate(&rt, &svc, &secrets[..secrets.len().min(1000)]); // warm-up
        let per_sec = rate(&rt, &svc, &secrets);
        let bytes: u64 = ["bench.db", "bench.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.path().join(f)).ok())
            .map(|m| m.len())
            .sum();
        println!(
            "{n:>9} keys: {per_sec:>8.0} uncached verifications/s, database {:.1} MiB, RSS {:.0} MiB (loaded in {load_secs:.1} s)",
            bytes as f64 / 1_048_576.0,
            fixture::rss_mib()
        );
        results.push(per_sec);
        rt.block_on(store.close());
    }
    println!(
        "ratio: rate at {big} keys / rate at 1000 keys = {:.2} (target >= 0.50)",
        results[1] / results[0]
    );
}
