//! Verification counts per key over the API: a known number of each
//! outcome driven through `POST /v1/keys/verify` reads back equal from
//! `GET /v1/keys/{id}/usage` and `GET /v1/keys/usage`, before and after a
//! restart (the shutdown flush), and from `keygate keys usage`; bad windows
//! and lists are 400s; a tenant admin sees only its tenant's keys.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestApp;

crate::on_both_backends!(
    each_outcome_is_counted_and_survives_a_restart,
    bad_usage_requests_are_400_and_unknown_keys_404,
    a_tenant_admin_reads_only_its_tenants_usage,
);

fn total(usage: &Value, code: &str) -> u64 {
    usage["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["counts"][code].as_u64().unwrap())
        .sum()
}

async fn verify_n(app: &TestApp, key: &str, scopes: &[&str], n: usize) {
    for _ in 0..n {
        app.verify(key, scopes).await;
    }
}

/// Each outcome's count, as `GET /v1/keys/{id}/usage` and the many-keys
/// endpoint answer them.
async fn read(app: &TestApp, id: &str) -> Value {
    let one = app.get(&format!("/v1/keys/{id}/usage")).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(one.body["buckets"].as_array().unwrap().len(), 24);
    let many = app.get(&format!("/v1/keys/usage?ids={id}")).await;
    assert_eq!(many.status, StatusCode::OK, "{}", many.body);
    assert_eq!(many.body["data"][0], one.body);
    one.body
}

async fn each_outcome_is_counted_and_survives_a_restart(mut app: TestApp) {
    let (plain, plain_key) = app
        .create_key(json!({"name": "p", "owner": "o", "scopes": ["orders:read"]}))
        .await;
    let (limited, limited_key) = app
        .create_key(
            json!({"name": "l", "owner": "o", "rate_limit": {"limit": 2, "period_seconds": 3600}}),
        )
        .await;
    let (metered, metered_key) = app
        .create_key(json!({"name": "m", "owner": "o", "remaining": 1}))
        .await;
    let expires = time_after(&app, 60);
    let (expiring, expiring_key) = app
        .create_key(json!({"name": "e", "owner": "o", "expires_at": expires}))
        .await;
    let (revoked, revoked_key) = app.create_key(json!({"name": "r", "owner": "o"})).await;

    verify_n(&app, &plain_key, &["orders:read"], 4).await;
    verify_n(&app, &plain_key, &["orders:write"], 3).await;
    verify_n(&app, &limited_key, &[], 5).await;
    verify_n(&app, &metered_key, &[], 3).await;
    verify_n(&app, &expiring_key, &[], 1).await;
    let res = app
        .post(&format!("/v1/keys/{revoked}/revoke"), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    verify_n(&app, &revoked_key, &[], 2).await;
    app.clock.advance_secs(61);
    verify_n(&app, &expiring_key, &[], 2).await;

    let want = [
        (&plain, "VALID", 4),
        (&plain, "INSUFFICIENT_SCOPE", 3),
        (&limited, "VALID", 2),
        (&limited, "RATE_LIMITED", 3),
        (&metered, "VALID", 1),
        (&metered, "USAGE_EXCEEDED", 2),
        (&expiring, "VALID", 1),
        (&expiring, "EXPIRED", 2),
        (&revoked, "REVOKED", 2),
        (&revoked, "VALID", 0),
    ];
    for round in ["before the restart", "after the restart"] {
        for (id, code, n) in want {
            assert_eq!(total(&read(&app, id).await, code), n, "{id} {code} {round}");
        }
        // Counted once: the shutdown flush writes what memory held.
        app.restart().await;
    }
    let ids = format!("{plain},{limited},{revoked}");
    let many = app.get(&format!("/v1/keys/usage?ids={ids}")).await;
    let data = many.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[1]["key_id"], limited.as_str());
    assert_eq!(total(&data[1], "RATE_LIMITED"), 3);
    let days = app
        .get(&format!("/v1/keys/{plain}/usage?granularity=day"))
        .await;
    assert_eq!(days.status, StatusCode::OK, "{}", days.body);
    assert_eq!(days.body["granularity"], "day");
    assert_eq!(total(&days.body, "VALID"), 4);
    cli_reads_the_same(&app, &plain).await;
}

/// `keygate keys usage <id> --json` answers what the API does.
async fn cli_reads_the_same(app: &TestApp, id: &str) {
    let (base, root, id) = (app.base.clone(), app.root_key.clone(), id.to_owned());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_keygate"))
            .args(["keys", "usage", &id, "--granularity", "day", "--json"])
            .env("KEYGATE_URL", base)
            .env("KEYGATE_ADMIN_KEY", root)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(total(&body, "VALID"), 4);
    assert_eq!(total(&body, "INSUFFICIENT_SCOPE"), 3);
}

/// An RFC 3339 time `secs` after the app's clock.
fn time_after(app: &TestApp, secs: i64) -> String {
    use keygate_core::MillisClock;
    let at = app.clock.now_secs() + secs;
    time::OffsetDateTime::from_unix_timestamp(at)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

async fn bad_usage_requests_are_400_and_unknown_keys_404(app: TestApp) {
    let (id, _) = app.create_key(json!({"name": "k", "owner": "o"})).await;
    let usage = format!("/v1/keys/{id}/usage");
    for query in [
        "?since=yesterday",
        "?until=2030-01-01",
        "?granularity=minute",
        "?since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z",
        "?since=2030-01-01T00:00:00Z&until=2030-01-01T00:00:00Z",
        "?since=2030-01-01T00:00:00Z&until=2030-02-01T01:00:00Z",
        "?since=2030-01-01T00:00:00Z&until=2033-01-01T00:00:00Z&granularity=day",
        "?unknown=1",
    ] {
        let res = app.get(&format!("{usage}{query}")).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{query}: {}", res.body);
    }
    // 744 hours is the most.
    let month = app
        .get(&format!(
            "{usage}?since=2030-01-01T00:00:00Z&until=2030-02-01T00:00:00Z"
        ))
        .await;
    assert_eq!(month.status, StatusCode::OK, "{}", month.body);
    assert_eq!(month.body["buckets"].as_array().unwrap().len(), 744);
    let hundred_and_one = vec![id.as_str(); 101].join(",");
    for query in [
        String::new(),
        "?ids=".into(),
        "?ids=nope".into(),
        format!("?ids={id},key_short"),
        format!("?ids={hundred_and_one}"),
        format!("?ids={id}&since=2030-01-01T00:00:00Z&until=2030-03-01T00:00:00Z"),
    ] {
        let res = app.get(&format!("/v1/keys/usage{query}")).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{query}: {}", res.body);
    }
    let res = app.get("/v1/keys/key_AAAAAAAAAAAAAAAA/usage").await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.body);
    let res = app.request(Method::GET, &usage, None, None).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
}

async fn as_tenant(app: &TestApp, key: &str, path: String) -> crate::helpers::Response {
    app.request(Method::GET, &path, Some(key), None).await
}

async fn a_tenant_admin_reads_only_its_tenants_usage(app: TestApp) {
    let (_, tenant_admin) = app
        .create_key(json!({"name": "a", "owner": "o", "tenant": "acme", "scopes": ["admin"]}))
        .await;
    let (mine, mine_key) = app
        .create_key(json!({"name": "m", "owner": "o", "tenant": "acme"}))
        .await;
    let (other, other_key) = app
        .create_key(json!({"name": "x", "owner": "o", "tenant": "globex"}))
        .await;
    verify_n(&app, &mine_key, &[], 2).await;
    verify_n(&app, &other_key, &[], 1).await;

    let res = as_tenant(&app, &tenant_admin, format!("/v1/keys/{mine}/usage")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(total(&res.body, "VALID"), 2);
    let res = as_tenant(&app, &tenant_admin, format!("/v1/keys/{other}/usage")).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.body);
    let res = as_tenant(
        &app,
        &tenant_admin,
        format!("/v1/keys/usage?ids={mine},{other}"),
    )
    .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.body);
    let res = app.get(&format!("/v1/keys/usage?ids={mine},{other}")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(total(&res.body["data"][1], "VALID"), 1);
}
