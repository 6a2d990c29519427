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
    for worker in 0..8 {
        let app = app.clone();
        tasks.spawn(async move {
            let mut last = String::new();
            for i in (worker..KEYS).step_by(8) {
                let body = json!({"name": format!("load-{i:05}"), "owner": format!("owner-{}", i % 97), "scopes": ["read"]});
                last = app.create_key(body).await.0;
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
        "/dashboard/".to_owned(),
        "/dashboard/keys".to_owned(),
        "/dashboard/keys?q=load-0999".to_owned(),
        "/dashboard/keys?status=all&expiring=7".to_owned(),
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
