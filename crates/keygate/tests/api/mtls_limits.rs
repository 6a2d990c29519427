//! A registered client's own `rate_limit` at `/oauth2/token`: the budget
//! it spends on the gateway, counted under its id, refused as an API key
//! over its limit is refused there (RFC 6749 `slow_down`, `Retry-After`).

use keygate_test_support::certs::self_signed_client;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::Response;
use crate::mtls_routes::{Mtls, token};

crate::on_both_backends!(spawn = crate::mtls_routes::spawn;
    a_clients_rate_limit_holds_at_the_token_endpoint_as_on_the_gateway,
    an_api_key_over_its_limit_is_refused_at_the_token_endpoint_alike,
);

fn assert_slow_down(res: &Response, who: &str) {
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.body);
    assert_eq!(res.body["error"], "slow_down");
    assert_eq!(
        res.body["error_description"],
        format!("this {who} is over its rate limit")
    );
    let wait: u64 = res.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // 2 a minute, both spent: the next one in 30 s at most.
    assert!((1..=30).contains(&wait), "Retry-After {wait}");
    assert_eq!(res.headers["cache-control"], "no-store");
}

async fn a_clients_rate_limit_holds_at_the_token_endpoint_as_on_the_gateway(t: Mtls) {
    let leaf = self_signed_client("svc-limited");
    let limit = json!({"rate_limit": {"limit": 2, "period_seconds": 60}});
    let id = t.pin(&leaf, limit).await;
    let form = format!("grant_type=client_credentials&client_id={id}");
    // One request at the token endpoint, one on the gateway: one budget.
    let res = token(&t, Some(&leaf), &form).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let ok = t.call(Some(&leaf), "/svc/orders", None).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);

    let over = token(&t, Some(&leaf), &form).await;
    assert_slow_down(&over, "client");
    assert!(over.body.get("access_token").is_none());
    let gateway = t.call(Some(&leaf), "/svc/orders", None).await;
    assert_eq!(
        gateway.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        gateway.body
    );

    // A scope the client does not hold is refused before the limit, and
    // another client's budget is its own.
    let bad_scope = format!("{form}&scope=admin:all");
    let res = token(&t, Some(&leaf), &bad_scope).await;
    assert_eq!(res.body["error"], "invalid_scope", "{}", res.body);
    let other = self_signed_client("svc-free");
    let other_id = t.pin(&other, json!({})).await;
    let form = format!("grant_type=client_credentials&client_id={other_id}");
    for _ in 0..3 {
        let res = token(&t, Some(&other), &form).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    }
}

async fn an_api_key_over_its_limit_is_refused_at_the_token_endpoint_alike(t: Mtls) {
    let (key_id, secret) = t
        .app
        .create_key(json!({"name": "k", "owner": "o", "scopes": [],
                           "rate_limit": {"limit": 2, "period_seconds": 60}}))
        .await;
    let form = format!("grant_type=client_credentials&client_id={key_id}&client_secret={secret}");
    for _ in 0..2 {
        let res = token(&t, None, &form).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    }
    assert_slow_down(&token(&t, None, &form).await, "key");
}
