//! Gateway and forward-auth refusals in the audit log: tallied per route,
//! reason, principal (else client address) and minute, so a flood of
//! refused requests is one row, not a row each; admitted requests write
//! nothing.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::gateway_upstream::Gw;
use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    spawn = crate::gateway_upstream::spawn_gateway;
    a_flood_of_refusals_is_one_tally,
    principals_over_their_limit_are_tallied_apart,
    forward_auth_refusals_are_tallied,
);

async fn refusals(app: &TestApp, query: &str) -> Vec<Value> {
    let res = app
        .get(&format!(
            "/v1/audit?action=gateway.refused&limit=500{query}"
        ))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    res.body["data"].as_array().unwrap().clone()
}

fn count(row: &Value) -> u64 {
    row["count"].as_u64().unwrap()
}

/// Polls until the refusals written add up to `total` (tallies reach
/// storage in the background), or fails after a generous bound.
async fn refusals_adding_up_to(app: &TestApp, total: u64) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = refusals(app, "").await;
        let sum: u64 = rows.iter().map(count).sum();
        if sum >= total || Instant::now() > deadline {
            assert_eq!(sum, total, "{rows:#?}");
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn only<'a>(rows: &'a [Value], actor: &str, reason: &str) -> &'a Value {
    let found: Vec<&Value> = rows
        .iter()
        .filter(|r| r["actor"] == actor && r["detail"]["reason"] == reason)
        .collect();
    assert_eq!(found.len(), 1, "{actor} {reason}: {rows:#?}");
    found[0]
}

async fn a_flood_of_refusals_is_one_tally(gw: Gw) {
    const FLOOD: u64 = 120;
    let (_, good) = gw.key(&["orders:read"]).await;
    // Admitted requests, with and without credentials, write nothing.
    for _ in 0..5 {
        let res = gw
            .app
            .raw(gw.get("/keys/1").header("x-api-key", &good))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(gw.app.raw(gw.get("/open/a")).await.status, StatusCode::OK);
    }
    for _ in 0..FLOOD {
        let res = gw.app.raw(gw.get("/keys/1")).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
    }
    let rows = refusals_adding_up_to(&gw.app, FLOOD).await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let row = only(&rows, "anonymous", "missing_credentials");
    assert_eq!(count(row), FLOOD);
    assert_eq!(row["detail"]["route"], "keys");
    assert_eq!(row["detail"]["method"], "GET");
    assert_eq!(row["detail"]["source"], "127.0.0.1");
    // The admin API's own failures are another action.
    assert!(
        gw.app.get("/v1/audit?action=auth.failed").await.body["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(gw.app.metric("keygate_audit_dropped_total").await, 0.0);
}

async fn principals_over_their_limit_are_tallied_apart(gw: Gw) {
    let (a_id, a) = gw.key(&[]).await;
    let (b_id, b) = gw.key(&[]).await;
    for (key, refused) in [(&a, 5), (&b, 3)] {
        for _ in 0..2 {
            let ok = gw
                .app
                .raw(gw.get("/limited").header("x-api-key", key))
                .await;
            assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
        }
        for _ in 0..refused {
            let res = gw
                .app
                .raw(gw.get("/limited").header("x-api-key", key))
                .await;
            assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.body);
        }
    }
    // A key short of the route's scope, and a key that is no key.
    let res = gw.app.raw(gw.get("/keys/1").header("x-api-key", &a)).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    let res = gw
        .app
        .raw(gw.get("/keys/1").header("x-api-key", "kg_live_not_a_key"))
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
    let rows = refusals_adding_up_to(&gw.app, 5 + 3 + 2).await;
    assert_eq!(rows.len(), 4, "{rows:#?}");
    let over_a = only(&rows, &a_id, "rate_limited");
    assert_eq!(count(over_a), 5);
    assert_eq!(over_a["detail"]["route"], "limited");
    // A principal's requests may come from anywhere: no one address.
    assert!(over_a["detail"].get("source").is_none(), "{over_a}");
    assert_eq!(count(only(&rows, &b_id, "rate_limited")), 3);
    assert_eq!(count(only(&rows, &a_id, "insufficient_scope")), 1);
    let unknown = only(&rows, "anonymous", "key_malformed");
    assert_eq!(unknown["detail"]["source"], "127.0.0.1");
    // The listing's actor filter finds one principal's refusals.
    let of_b = refusals(&gw.app, &format!("&actor={b_id}")).await;
    assert_eq!(of_b.len(), 1, "{of_b:#?}");
    assert_eq!(count(&of_b[0]), 3);
}

async fn forward_auth_refusals_are_tallied(gw: Gw) {
    let (weak_id, weak) = gw.key(&[]).await;
    let (_, good) = gw.key(&["orders:read"]).await;
    let at = |uri: &'static str| {
        gw.app
            .http
            .get(format!("{}/v1/forward-auth", gw.app.base))
            .header("x-original-uri", uri)
            .header("x-original-method", "GET")
    };
    let allowed = gw.app.raw(at("/keys/1").header("x-api-key", &good)).await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.body);
    for _ in 0..4 {
        let res = gw.app.raw(at("/keys/1")).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
    }
    for _ in 0..2 {
        let res = gw.app.raw(at("/keys/1").header("x-api-key", &weak)).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    }
    let rows = refusals_adding_up_to(&gw.app, 4 + 2).await;
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let missing = only(&rows, "anonymous", "missing_credentials");
    assert_eq!(count(missing), 4);
    assert_eq!(missing["detail"]["route"], "keys");
    assert_eq!(missing["detail"]["method"], "GET");
    let scope = only(&rows, &weak_id, "insufficient_scope");
    assert_eq!(count(scope), 2);
}
