//! What remembering a nonce costs a signed request: the stateless check
//! (parse `Signature-Input`/`Signature`, build the base, HMAC-SHA256)
//! beside recording a nonce in memory, in SQLite (a file on disk, WAL,
//! `synchronous = FULL`) and in PostgreSQL (a fresh database on
//! KEYGATE_TEST_POSTGRES_URL; skipped without it), in one run, with the
//! ratio of each signed request's cost to the stateless check; and on
//! SQLite, records per second of 64 concurrent tasks through group commit
//! against one transaction per record (`record_nonce_alone`), in turn.
//!
//! `cargo bench -p keygate-store --bench nonces -- --measurement-time 3 --warm-up-time 1`

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group};
use keygate_core::httpsig::base::SignatureParams;
use keygate_core::httpsig::{
    MemoryNonceStore, NonceStore, NonceUse, NonceVerdict, UrlParts, sign_hmac_sha256,
    verify_hmac_sha256,
};
use keygate_core::store::Store;
use keygate_core::{MillisClock as _, SystemClock};
use keygate_store::{ConnectOptions, SqlStore};
use sqlx::{AnyConnection, Connection};

const KEYS: u64 = 100;
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Records a nonce never used before, for one of `KEYS` keys.
async fn record_one(store: &dyn NonceStore) {
    let i = NEXT.fetch_add(1, Ordering::Relaxed);
    let key_id = format!("key_bench{:07}", i % KEYS);
    let nonce = format!("nonce-{i:016}");
    let now_ms = SystemClock.now_millis();
    let v = store
        .record(&NonceUse {
            key_id: &key_id,
            nonce: &nonce,
            expires_at_ms: now_ms + 301_000,
            created_ms: now_ms,
            now_ms,
            per_key_limit: u32::MAX,
        })
        .await
        .unwrap();
    assert_eq!(v, NonceVerdict::Fresh);
}

/// Concurrent signed requests: `TASKS` at once, as a busy gateway has.
const TASKS: usize = 64;

/// `TASKS` tasks each record `each` nonces never used before, through the
/// queue (group commit) or each in a transaction of its own (`alone`, the
/// path before it); records per second.
async fn concurrent_rate(store: &SqlStore, each: usize, alone: bool) -> f64 {
    let start = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let store = store.clone();
        tasks.spawn(async move {
            for _ in 0..each {
                let i = NEXT.fetch_add(1, Ordering::Relaxed);
                let key_id = format!("key_bench{:07}", i % KEYS);
                let nonce = format!("nonce-{i:016}");
                let now_ms = SystemClock.now_millis();
                let n = NonceUse {
                    key_id: &key_id,
                    nonce: &nonce,
                    expires_at_ms: now_ms + 301_000,
                    created_ms: now_ms,
                    now_ms,
                    per_key_limit: u32::MAX,
                };
                let v = if alone {
                    store.record_nonce_alone(&n).await
                } else {
                    store.record(&n).await
                };
                assert_eq!(v.unwrap(), NonceVerdict::Fresh);
            }
        });
    }
    tasks.join_all().await;
    (TASKS * each) as f64 / start.elapsed().as_secs_f64()
}

/// The median of `rounds` of `concurrent_rate`, alone and batched in turn.
fn concurrent_rates(rt: &tokio::runtime::Runtime, store: &SqlStore, rounds: usize) -> (f64, f64) {
    let (mut alone, mut batched) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        alone.push(rt.block_on(concurrent_rate(store, 20, true)));
        batched.push(rt.block_on(concurrent_rate(store, 20, false)));
    }
    for v in [&mut alone, &mut batched] {
        v.sort_by(f64::total_cmp);
    }
    (alone[rounds / 2], batched[rounds / 2])
}

/// A fresh database on the PostgreSQL server, if one is configured: its
/// store, and the admin URL and name to drop it by.
async fn postgres() -> Option<(SqlStore, String, String)> {
    let admin = std::env::var("KEYGATE_TEST_POSTGRES_URL").ok()?;
    sqlx::any::install_default_drivers();
    let name = format!(
        "kg_bench_{}",
        keygate_core::keys::apikey::random_id("", 10)
            .unwrap()
            .to_lowercase()
    );
    let mut conn = AnyConnection::connect(&admin).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let (base, query) = admin.split_once('?').unwrap_or((&admin, ""));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    let url = match query {
        "" => format!("{base}/{name}"),
        q => format!("{base}/{name}?{q}"),
    };
    let store = keygate_store::connect(&url, ConnectOptions::default())
        .await
        .unwrap();
    Some((store, admin, name))
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The signed request: the gateway's usual GET with a query.
    let secret = [7u8; 32];
    let url = UrlParts::parse("https://api.example.com/orders?id=7").unwrap();
    let unsigned: Vec<(String, String)> = Vec::new();
    let params = SignatureParams::new(
        &["@method", "@authority", "@path", "@query"],
        SystemClock.now_secs(),
        "nonce-0123456789abcdef",
        "key_bench0000000",
    );
    let (input, sig) =
        sign_hmac_sha256(&url.view("GET", &unsigned), "sig1", &params, &secret).unwrap();
    let headers = vec![
        ("signature-input".to_owned(), input),
        ("signature".to_owned(), sig),
    ];
    let check = || verify_hmac_sha256(&url.view("GET", &headers), None, &secret).unwrap();

    let memory = MemoryNonceStore::new(10_000_000);
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("nonces.db").display());
    let sqlite = rt
        .block_on(keygate_store::connect(
            &sqlite_url,
            ConnectOptions::default(),
        ))
        .unwrap();
    let pg = rt.block_on(postgres());
    if pg.is_none() {
        eprintln!("KEYGATE_TEST_POSTGRES_URL is not set: no PostgreSQL figures");
    }
    let mut stores: Vec<(&str, &dyn NonceStore)> = vec![("memory", &memory), ("sqlite", &sqlite)];
    if let Some((store, _, _)) = &pg {
        stores.push(("postgres", store));
    }

    let mut g = c.benchmark_group("nonces");
    g.bench_function("signature_check", |b| b.iter(|| black_box(check())));
    for (name, store) in &stores {
        g.bench_function(format!("record_{name}"), |b| {
            b.iter(|| rt.block_on(record_one(*store)))
        });
    }
    for (name, alone) in [("alone", true), ("batched", false)] {
        g.bench_function(format!("record_sqlite_{TASKS}_concurrent_{name}"), |b| {
            b.iter(|| rt.block_on(concurrent_rate(&sqlite, 1, alone)))
        });
    }
    g.finish();

    // The ratios, measured in this run: each signed request is the check
    // plus one record.
    let base = fixture::median_ns(31, 2_000, |_| {
        black_box(check());
    });
    println!("\nsummary (medians per signed request):");
    println!("  signature check alone     {base:>10.0} ns");
    for (name, store) in &stores {
        let (rounds, per_round) = if *name == "memory" {
            (31, 2_000)
        } else {
            (11, 200)
        };
        let rec = fixture::median_ns(rounds, per_round, |_| rt.block_on(record_one(*store)));
        println!(
            "  + nonce in {name:<9}      {:>10.0} ns  ({:.1}x the check alone)",
            base + rec,
            (base + rec) / base
        );
    }
    let (alone, batched) = concurrent_rates(&rt, &sqlite, 7);
    println!("  sqlite, {TASKS} concurrent tasks recording distinct nonces:");
    println!("    one transaction each     {alone:>10.0} records/s");
    println!(
        "    group commit             {batched:>10.0} records/s  ({:.1}x)",
        batched / alone
    );
    // What one statement's round trip costs here, for scale: the SQL
    // stores run four (PostgreSQL) or five (SQLite) per record.
    let mut pings: Vec<(&str, &dyn Store)> = vec![("sqlite", &sqlite)];
    if let Some((store, _, _)) = &pg {
        pings.push(("postgres", store));
    }
    for (name, store) in pings {
        let ping = fixture::median_ns(11, 200, |_| rt.block_on(store.ping()).unwrap());
        println!("  one SELECT 1 on {name:<9} {ping:>10.0} ns");
    }
    rt.block_on(sqlite.close());
    if let Some((store, admin, name)) = pg {
        rt.block_on(async {
            store.close().await;
            let mut conn = AnyConnection::connect(&admin).await.unwrap();
            let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
                .execute(&mut conn)
                .await
                .unwrap();
        });
    }
}

criterion_group!(group, benches);

fn main() {
    group();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
