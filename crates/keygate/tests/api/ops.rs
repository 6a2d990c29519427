//! Operations: health, readiness, metrics, the OpenAPI document, request
//! ids, and a restart that keeps every key.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

crate::on_both_backends!(
    health_readiness_and_openapi,
    metrics_count_requests_verifications_and_cache,
    keys_survive_a_restart,
    request_ids_are_kept_or_made,
);

async fn health_readiness_and_openapi(app: TestApp) {
    let res = app.raw(app.http.get(format!("{}/healthz", app.base))).await;
    assert_eq!(res.status, StatusCode::OK);
    let res = app.raw(app.http.get(format!("{}/readyz", app.base))).await;
    assert_eq!(res.status, StatusCode::OK);
    let backend = match app.backend {
        crate::helpers::Backend::Sqlite => "sqlite",
        crate::helpers::Backend::Postgres => "postgres",
    };
    assert_eq!(res.body["storage"], backend);
    let res = app
        .raw(app.http.get(format!("{}/openapi.json", app.base)))
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/keys",
        "/v1/keys/{id}",
        "/v1/keys/{id}/rotate",
        "/v1/keys/{id}/revoke",
        "/v1/keys/verify",
        "/v1/audit",
    ] {
        assert!(
            res.body["paths"].get(path).is_some(),
            "{path} missing from openapi.json"
        );
    }
}

async fn metrics_count_requests_verifications_and_cache(app: TestApp) {
    let (_, key) = app.create_key(json!({"name": "a", "owner": "o"})).await;
    let valid_before = app
        .metric("keygate_key_verifications_total{code=\"VALID\"}")
        .await;
    let hits_before = app
        .metric("keygate_key_cache_lookups_total{result=\"hit\"}")
        .await;
    for _ in 0..3 {
        assert_eq!(app.verify_code(&key).await, "VALID");
    }
    assert_eq!(app.verify_code("kg_live_bad").await, "MALFORMED");
    assert_eq!(
        app.metric("keygate_key_verifications_total{code=\"VALID\"}")
            .await
            - valid_before,
        3.0
    );
    assert_eq!(
        app.metric("keygate_key_verifications_total{code=\"MALFORMED\"}")
            .await,
        1.0
    );
    // The first verification missed (creation does not warm the cache), the rest hit.
    assert_eq!(
        app.metric("keygate_key_cache_lookups_total{result=\"hit\"}")
            .await
            - hits_before,
        2.0
    );
    assert!(
        app.metric("keygate_key_verification_duration_seconds_count")
            .await
            >= 4.0
    );
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "keygate_http_requests_total{route=\"/v1/keys/verify\",method=\"POST\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(!text.contains(&key));
}

async fn keys_survive_a_restart(mut app: TestApp) {
    let (id, key) = app
        .create_key(json!({"name": "a", "owner": "o", "scopes": ["s"]}))
        .await;
    assert_eq!(app.verify_code(&key).await, "VALID");
    assert!(app.get(&format!("/v1/keys/{id}")).await.body["last_used_at"].is_null());
    let root = app.root_key.clone();
    // Shutting down writes the queued last-used times.
    app.restart().await;
    assert_eq!(app.root_key, root, "no second root key on restart");
    let shown = app.get(&format!("/v1/keys/{id}")).await;
    assert!(shown.body["last_used_at"].is_string(), "{}", shown.body);
    let v = app.verify(&key, &["s"]).await;
    assert_eq!(v["code"], "VALID");
    assert_eq!(v["key_id"], id.as_str());
}

async fn request_ids_are_kept_or_made(app: TestApp) {
    let res = app
        .raw(
            app.http
                .get(format!("{}/healthz", app.base))
                .header("x-request-id", "trace-123"),
        )
        .await;
    assert_eq!(res.headers.get("x-request-id").unwrap(), "trace-123");
    let res = app
        .raw(
            app.http
                .get(format!("{}/healthz", app.base))
                .header("x-request-id", "bad id with spaces"),
        )
        .await;
    assert!(
        res.headers
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
}
