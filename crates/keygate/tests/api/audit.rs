//! The audit log under attack: failures from one source are tallied per
//! reason and minute instead of written one row each, admin actions are
//! never folded into a tally, and old rows are pruned after the retention
//! period.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app_with_toml};

crate::on_both_backends!(a_flood_of_failures_is_tallied_into_a_few_rows);
mod retention {
    use super::{old_rows_are_pruned_after_the_retention_period, spawn_with_retention};
    crate::on_both_backends!(spawn = super::spawn_with_retention; old_rows_are_pruned_after_the_retention_period);
}

async fn auth_failures(app: &TestApp) -> Vec<Value> {
    let res = app.get("/v1/audit?action=auth.failed&limit=500").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    res.body["data"].as_array().unwrap().clone()
}

fn count(row: &Value) -> u64 {
    // Rows written before tallies existed count once.
    row["count"].as_u64().unwrap_or(1)
}

/// Polls until the failures written add up to `total` (the tallies reach
/// storage in the background), or fails after a generous bound.
async fn failures_adding_up_to(app: &TestApp, total: u64) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = auth_failures(app).await;
        let sum: u64 = rows.iter().map(count).sum();
        if sum >= total || Instant::now() > deadline {
            assert_eq!(sum, total, "{rows:#?}");
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_flood_of_failures_is_tallied_into_a_few_rows(app: TestApp) {
    const REFUSED: u64 = 150;
    const LOGINS: u64 = 40;
    for _ in 0..REFUSED {
        let res = app
            .request(Method::GET, "/v1/keys", Some("kg_live_not_a_key"), None)
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    }
    for _ in 0..LOGINS {
        let res = app
            .request(
                Method::POST,
                "/v1/auth/login",
                None,
                Some(json!({"username": "mallory", "password": "guess"})),
            )
            .await;
        assert!(
            matches!(
                res.status,
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
            ),
            "{}",
            res.body
        );
    }
    let rows = failures_adding_up_to(&app, REFUSED + LOGINS).await;
    // One row per reason and route within the minute: the refused key, the
    // failed and the throttled logins.
    assert!(rows.len() <= 3, "{rows:#?}");
    let refused: Vec<&Value> = rows
        .iter()
        .filter(|r| r["detail"]["route"] == "/v1/keys")
        .collect();
    assert_eq!(refused.len(), 1, "{rows:#?}");
    let refused = refused[0];
    assert_eq!(count(refused), REFUSED);
    assert_eq!(refused["detail"]["method"], "GET");
    assert_eq!(refused["detail"]["source"], "127.0.0.1");
    assert!(refused["first_seen"].is_string(), "{refused}");
    assert!(refused["last_seen"].is_string(), "{refused}");
    let logins: u64 = rows
        .iter()
        .filter(|r| r["detail"]["route"] == "/v1/auth/login")
        .map(count)
        .sum();
    assert_eq!(logins, LOGINS);

    // More of the same in the same minute adds to the same row.
    for _ in 0..10 {
        app.request(Method::GET, "/v1/keys", Some("kg_live_not_a_key"), None)
            .await;
    }
    let rows = failures_adding_up_to(&app, REFUSED + LOGINS + 10).await;
    assert!(rows.len() <= 3, "{rows:#?}");

    // Admin actions amid the flood are each written, never tallied.
    let (id, _) = app.create_key(json!({"name": "a", "owner": "o"})).await;
    let res = app.post(&format!("/v1/keys/{id}/revoke"), json!({})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    for action in ["key.created", "key.revoked"] {
        let res = app
            .get(&format!("/v1/audit?action={action}&target={id}"))
            .await;
        let data = res.body["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "{}", res.body);
        assert_eq!(data[0]["count"], 1);
    }
    assert_eq!(app.metric("keygate_audit_dropped_total").await, 0.0);
}

async fn spawn_with_retention(backend: Backend) -> Option<TestApp> {
    spawn_app_with_toml(backend, Some("audit_retention_days = 30\n"), |_| {}).await
}

async fn old_rows_are_pruned_after_the_retention_period(mut app: TestApp) {
    let (old, _) = app.create_key(json!({"name": "old", "owner": "o"})).await;
    app.clock.advance_secs(31 * 24 * 3600);
    let (new, _) = app.create_key(json!({"name": "new", "owner": "o"})).await;
    // Pruning runs at start and then periodically.
    app.restart().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = app.get(&format!("/v1/audit?target={old}")).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        if res.body["data"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "never pruned: {}", res.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let res = app.get(&format!("/v1/audit?target={new}")).await;
    assert_eq!(
        res.body["data"].as_array().unwrap().len(),
        1,
        "{}",
        res.body
    );
    // The record of the prune follows its last delete: wait for it too.
    let res = loop {
        let res = app.get("/v1/audit?action=audit.pruned").await;
        if !res.body["data"].as_array().unwrap().is_empty() {
            break res;
        }
        assert!(
            Instant::now() < deadline,
            "no audit.pruned row: {}",
            res.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let data = res.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{}", res.body);
    // At least the root key's creation and the old key's.
    assert!(
        data[0]["detail"]["rows"].as_u64().unwrap() >= 2,
        "{}",
        res.body
    );
    // Keys themselves are not audit rows: the old key is still there.
    assert_eq!(
        app.get(&format!("/v1/keys/{old}")).await.status,
        StatusCode::OK
    );
}
