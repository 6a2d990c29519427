//! Signed-request replay across restarts and nodes: a nonce seen by any
//! server on a database is refused by every server on it for the whole
//! window; one key cannot fill the nonce store; a store that cannot answer
//! refuses. Driven through forward-auth (the proxy shares its admission).

use reqwest::StatusCode;

use crate::gateway::assert_problem;
use crate::gateway_hmac::{GET_PARTS, Signer, assert_refused, now, plain_signer, send};
use crate::gateway_upstream::Gw;
use crate::helpers::{Backend, TestApp};

crate::on_both_backends!(
    spawn = crate::gateway_upstream::spawn_gateway;
    a_captured_request_is_refused_after_a_restart,
    a_captured_request_is_refused_by_a_second_node,
    one_key_cannot_fill_the_nonce_store,
    a_nonce_store_that_cannot_answer_refuses,
);

const HOST: &str = "api.example";

/// Signed headers for `GET https://api.example{uri}`, made now.
fn signed_get(gw: &Gw, s: &Signer, uri: &str) -> Vec<(String, String)> {
    s.headers(
        "GET",
        &format!("https://{HOST}{uri}"),
        None,
        &GET_PARTS,
        now(gw),
    )
}

/// The forward-auth subrequest nginx would send to `app` for that request.
fn forward_auth(app: &TestApp, uri: &str, headers: &[(String, String)]) -> reqwest::RequestBuilder {
    let mut req = app
        .http
        .get(format!("{}/v1/forward-auth", app.base))
        .header("x-original-uri", uri)
        .header("x-original-method", "GET")
        .header("x-forwarded-host", HOST)
        .header("x-forwarded-proto", "https");
    for (n, v) in headers {
        req = req.header(n, v);
    }
    req
}

async fn a_captured_request_is_refused_after_a_restart(mut gw: Gw) {
    let s = plain_signer(&gw).await;
    let uri = "/signed/orders?id=7";
    let captured = signed_get(&gw, &s, uri);
    let res = send(&gw, forward_auth(&gw.app, uri, &captured)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    gw.app.restart().await;
    let res = send(&gw, forward_auth(&gw.app, uri, &captured)).await;
    assert_refused(&res, "signature_replayed");
    // A fresh signature still passes after the restart.
    let fresh = signed_get(&gw, &s, uri);
    let res = send(&gw, forward_auth(&gw.app, uri, &fresh)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    // Late in the window the captured request is still refused.
    gw.app.clock.advance_secs(290);
    gw.app.restart().await;
    let res = send(&gw, forward_auth(&gw.app, uri, &captured)).await;
    assert_refused(&res, "signature_replayed");
}

async fn a_captured_request_is_refused_by_a_second_node(gw: Gw) {
    let s = plain_signer(&gw).await;
    if gw.app.backend == Backend::Sqlite {
        // SQLite is one node: a second server on its file refuses to start.
        let err = gw.app.try_second_node().await.err().expect("refused");
        let err = err.to_string();
        assert!(err.contains("single-node"), "{err}");
        return;
    }
    let other = gw.app.second_node().await;
    let uri = "/signed/orders?id=7";
    let captured = signed_get(&gw, &s, uri);
    let res = send(&gw, forward_auth(&gw.app, uri, &captured)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let res = send(&gw, forward_auth(&other, uri, &captured)).await;
    assert_refused(&res, "signature_replayed");
    // And the other way round.
    let captured = signed_get(&gw, &s, uri);
    let res = send(&gw, forward_auth(&other, uri, &captured)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let res = send(&gw, forward_auth(&gw.app, uri, &captured)).await;
    assert_refused(&res, "signature_replayed");
}

async fn one_key_cannot_fill_the_nonce_store(mut gw: Gw) {
    gw.app.args.hmac_nonces_per_key = Some(3);
    gw.app.restart().await;
    let greedy = plain_signer(&gw).await;
    let other = plain_signer(&gw).await;
    let uri = "/signed/orders";
    for _ in 0..3 {
        let res = send(
            &gw,
            forward_auth(&gw.app, uri, &signed_get(&gw, &greedy, uri)),
        )
        .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    }
    let over = signed_get(&gw, &greedy, uri);
    let res = send(&gw, forward_auth(&gw.app, uri, &over)).await;
    assert_problem(&res, StatusCode::TOO_MANY_REQUESTS, "signature_nonce_quota");
    let wait: i64 = res.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((300..=312).contains(&wait), "{wait}");
    // Another key's signed requests still pass; the quota outlives a restart.
    let res = send(
        &gw,
        forward_auth(&gw.app, uri, &signed_get(&gw, &other, uri)),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    gw.app.restart().await;
    let res = send(
        &gw,
        forward_auth(&gw.app, uri, &signed_get(&gw, &greedy, uri)),
    )
    .await;
    assert_problem(&res, StatusCode::TOO_MANY_REQUESTS, "signature_nonce_quota");
    // Once the key's nonces expire it signs again.
    gw.app.clock.advance_secs(wait);
    let res = send(
        &gw,
        forward_auth(&gw.app, uri, &signed_get(&gw, &greedy, uri)),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
}

/// Runs `sql` on the app's database from outside the server.
async fn execute(app: &TestApp, sql: &'static str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let url = app.args.database_url.clone().unwrap();
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

async fn a_nonce_store_that_cannot_answer_refuses(gw: Gw) {
    let s = plain_signer(&gw).await;
    let uri = "/signed/orders?id=7";
    let res = send(&gw, forward_auth(&gw.app, uri, &signed_get(&gw, &s, uri))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    // The nonce store breaks; keys and secrets are still readable.
    execute(&gw.app, "DROP TABLE IF EXISTS hmac_nonces").await;
    let res = send(&gw, forward_auth(&gw.app, uri, &signed_get(&gw, &s, uri))).await;
    assert_problem(&res, StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable");
    // Through the proxy too: no decision, so nothing reaches the upstream.
    let url = format!("{}{uri}", gw.url);
    let mut req = gw.app.http.get(&url);
    for (n, v) in s.headers("GET", &url, None, &GET_PARTS, now(&gw)) {
        req = req.header(n, v);
    }
    let res = send(&gw, req).await;
    assert_problem(&res, StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable");
}
