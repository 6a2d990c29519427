//! How long each page takes with 10,000 keys, on both backends: printed,
//! never asserted (timings depend on the machine). Run it with
//! `cargo test -p keygate --test api dashboard_pages::render_times -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use super::Dash;
use crate::helpers::{Backend, TestApp};

const KEYS: usize = 10_000;
const RUNS: usize = 7;
/// Concurrent creators: SQLite has one writer, more only wait (and time out).
const WRITERS: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "builds 10,000 keys; run on demand to measure page times"]
async fn page_render_times_with_10k_keys() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if let Some(app) = crate::fixture(backend).await {
            measure(app).await;
        }
    }
}

async fn create_keys(app: Arc<TestApp>) -> String {
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..WRITERS {
        let app = app.clone();
        tasks.spawn(async move {
            let mut last = String::new();
            for i in (worker..KEYS).step_by(WRITERS) {
                // Spread over 11 tenants: at most 1000 live keys per tenant
                // by default ([keys] max_per_tenant).
                let body = json!({"name": format!("load-{i:05}"), "owner": format!("owner-{}", i % 97),
                    "tenant": format!("t{}", i % 11), "scopes": ["read"]});
                last = create_one(&app, body).await;
            }
            last
        });
    }
    let mut last = String::new();
    while let Some(done) = tasks.join_next().await {
        last = done.unwrap();
    }
    last
}

/// Creates one key, retrying a 503 (SQLite's one writer busy under load)
/// a few times; any other answer fails the run.
async fn create_one(app: &TestApp, body: serde_json::Value) -> String {
    for _ in 0..20 {
        let res = app.post("/v1/keys", body.clone()).await;
        if res.status == StatusCode::SERVICE_UNAVAILABLE {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        return res.body["id"].as_str().unwrap().to_owned();
    }
    panic!("storage stayed unavailable");
}

async fn measure(app: TestApp) {
    let app = Arc::new(app);
    let started = Instant::now();
    let some_key = create_keys(app.clone()).await;
    eprintln!(
        "{:?}: created {KEYS} keys in {:?}",
        app.backend,
        started.elapsed()
    );
    let dash = Dash::login(&app, &app.root_key).await;
    let pages = [
        "/dashboard".to_owned(),
        "/dashboard/keys".to_owned(),
        "/dashboard/keys?owner=owner-5".to_owned(),
        "/dashboard/keys?status=all".to_owned(),
        format!("/dashboard/keys/{some_key}"),
        "/dashboard/users".to_owned(),
        "/dashboard/signing-keys".to_owned(),
        "/dashboard/audit".to_owned(),
        "/dashboard/audit?action=key.created&since=2000-01-01".to_owned(),
        "/dashboard/routes".to_owned(),
    ];
    for path in &pages {
        let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let t = Instant::now();
            let page = dash.get(path).await;
            times.push(t.elapsed());
            assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        }
        times.sort();
        eprintln!(
            "{:?} {path}: median {:.1} ms, max {:.1} ms ({RUNS} runs)",
            app.backend,
            times[RUNS / 2].as_secs_f64() * 1e3,
            times[RUNS - 1].as_secs_f64() * 1e3
        );
    }
}
