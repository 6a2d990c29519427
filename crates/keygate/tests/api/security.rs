//! Refusals: malformed requests, credentials in URLs, tenant isolation.
//! Every refused request gets a problem+json 4xx and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestApp;

crate::on_both_backends!(
    malformed_requests_get_a_clear_4xx_and_change_nothing,
    credentials_in_the_url_are_refused,
    tenant_admins_see_only_their_tenant,
    missing_and_wrong_credentials_get_401_with_a_challenge,
);

/// method, path, content type, body, expected status, expected code.
type Case = (
    Method,
    String,
    Option<&'static str>,
    String,
    StatusCode,
    &'static str,
);

/// Everything a client can observe about stored state.
/// Every stored key and the count of audit events, minus `last_used_at`: the
/// refused requests themselves authenticate with the root key, and its usage
/// stamp is flushed in the background at a time the test does not control.
async fn snapshot(app: &TestApp) -> (Value, usize) {
    let mut keys = app
        .get("/v1/keys?include_revoked=true&limit=500")
        .await
        .body["data"]
        .clone();
    for key in keys.as_array_mut().unwrap() {
        key.as_object_mut().unwrap().remove("last_used_at");
    }
    let audit = app.get("/v1/audit?limit=500").await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] != "auth.failed")
        .count();
    (keys, audit)
}

async fn malformed_requests_get_a_clear_4xx_and_change_nothing(app: TestApp) {
    let (id, _) = app.create_key(json!({"name": "a", "owner": "o"})).await;
    let before = snapshot(&app).await;
    let big = "x".repeat(70 * 1024);
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/v1/keys".into(),
            Some("application/json"),
            "{".into(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            Method::POST,
            "/v1/keys".into(),
            Some("application/json"),
            "[]".into(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            Method::POST,
            "/v1/keys".into(),
            Some("application/json"),
            r#"{"name":"a"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            Method::POST,
            "/v1/keys".into(),
            Some("application/json"),
            r#"{"name":"a","owner":"o","colour":"red"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            Method::POST,
            "/v1/keys".into(),
            Some("application/json"),
            r#"{"name":"","owner":"o"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/keys".into(),
            Some("application/json"),
            r#"{"name":"a","owner":"o","scopes":["bad scope"]}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/keys".into(),
            Some("application/json"),
            r#"{"name":"a","owner":"o","env":"prod"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/keys".into(),
            Some("application/json"),
            r#"{"name":"a","owner":"o","expires_at":"tomorrow"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/keys".into(),
            Some("application/json"),
            r#"{"name":"a","owner":"o","remaining":-1}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/keys".into(),
            Some("application/json"),
            r#"{"name":"a","owner":"o","rate_limit":{"limit":0,"period_seconds":1}}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/keys".into(),
            Some("application/json"),
            r#"{"name":"a","owner":"o","tenant":"a/b"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/keys".into(),
            Some("application/json"),
            format!(
                r#"{{"name":"a","owner":"o","metadata":{{"x":"{}"}}}}"#,
                "y".repeat(9000)
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/keys".into(),
            Some("text/plain"),
            r#"{"name":"a","owner":"o"}"#.into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Method::POST,
            "/v1/keys".into(),
            Some("application/json"),
            format!(r#"{{"name":"{big}","owner":"o"}}"#),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            Method::PATCH,
            format!("/v1/keys/{id}"),
            Some("application/json"),
            r#"{"owner":"someone"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            Method::PATCH,
            format!("/v1/keys/{id}"),
            Some("application/json"),
            r#"{"remaining":"many"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            Method::PATCH,
            "/v1/keys/not-an-id".into(),
            Some("application/json"),
            r#"{"name":"x"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_key_id",
        ),
        (
            Method::PATCH,
            "/v1/keys/key_0000000000000000".into(),
            Some("application/json"),
            r#"{"name":"x"}"#.into(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/v1/keys/key_%27%3B--".into(),
            None,
            String::new(),
            StatusCode::BAD_REQUEST,
            "invalid_key_id",
        ),
        (
            Method::POST,
            format!("/v1/keys/{id}/rotate"),
            Some("application/json"),
            r#"{"grace_seconds":"soon"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            Method::POST,
            "/v1/keys/key_0000000000000000/revoke".into(),
            None,
            String::new(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/v1/keys?limit=0".into(),
            None,
            String::new(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::GET,
            "/v1/keys?cursor=zzz".into(),
            None,
            String::new(),
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
        ),
        (
            Method::GET,
            "/v1/keys?colour=red".into(),
            None,
            String::new(),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            Method::GET,
            "/v1/audit?since=yesterday".into(),
            None,
            String::new(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/keys/verify".into(),
            Some("application/json"),
            r#"{"key":"x","required_scopes":["a b"]}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::DELETE,
            "/v1/keys".into(),
            None,
            String::new(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::GET,
            "/v1/keys/key_%FF%FE".into(),
            None,
            String::new(),
            StatusCode::BAD_REQUEST,
            "invalid_key_id",
        ),
        (
            Method::POST,
            format!("/v1/keys/{id}/rotate"),
            Some("application/json"),
            format!(r#"{{"grace_seconds":0,"x":"{big}"}}"#),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            Method::GET,
            "/v1/keys?owner=%00".into(),
            None,
            String::new(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::GET,
            "/v1/audit?actor=%07x".into(),
            None,
            String::new(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::GET,
            "/v2/nothing".into(),
            None,
            String::new(),
            StatusCode::NOT_FOUND,
            "no_route",
        ),
    ];
    for (method, path, content_type, body, status, code) in cases {
        let mut req = app
            .http
            .request(method.clone(), format!("{}{}", app.base, path))
            .bearer_auth(&app.root_key);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct).body(body.clone());
        }
        let res = app.raw(req).await;
        let shown = &body[..body.len().min(80)];
        assert_eq!(res.status, status, "{method} {path} {shown}: {}", res.body);
        assert_eq!(
            res.headers.get("content-type").unwrap(),
            "application/problem+json",
            "{method} {path}"
        );
        assert_eq!(
            res.body["code"], code,
            "{method} {path} {shown}: {}",
            res.body
        );
        assert_eq!(res.body["status"], status.as_u16());
        assert!(res.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    assert_eq!(
        snapshot(&app).await,
        before,
        "a refused request changed something"
    );
}

async fn credentials_in_the_url_are_refused(app: TestApp) {
    let (_, key) = app.create_key(json!({"name": "a", "owner": "o"})).await;
    for param in [
        "api_key",
        "apikey",
        "key",
        "token",
        "access_token",
        "API_KEY",
    ] {
        let res = app
            .raw(app.http.get(format!("{}/v1/keys?{param}={key}", app.base)))
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{param}");
        assert_eq!(res.body["code"], "credential_in_url");
        assert!(res.body["detail"].as_str().unwrap().contains("header"));
        assert!(!res.body.to_string().contains(&key));
    }
    // Even on endpoints that need no credential, and with a valid header too.
    let res = app
        .raw(
            app.http
                .get(format!("{}/healthz?token=abc", app.base))
                .bearer_auth(&app.root_key),
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
}

async fn tenant_admins_see_only_their_tenant(app: TestApp) {
    let (_, acme_admin) = app
        .create_key(
            json!({"name": "acme admin", "owner": "acme", "tenant": "acme", "scopes": ["admin"]}),
        )
        .await;
    let (globex_id, globex_key) = app
        .create_key(json!({"name": "g", "owner": "g", "tenant": "globex"}))
        .await;
    let as_acme = |method: Method, path: String, body: Option<Value>| {
        let acme_admin = acme_admin.clone();
        let app = &app;
        async move { app.request(method, &path, Some(&acme_admin), body).await }
    };
    // Creating without a tenant lands in the admin's own tenant.
    let res = as_acme(
        Method::POST,
        "/v1/keys".into(),
        Some(json!({"name": "a", "owner": "o"})),
    )
    .await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert_eq!(res.body["tenant"], "acme");
    let acme_key = res.body["key"].as_str().unwrap().to_owned();
    let res = as_acme(
        Method::POST,
        "/v1/keys".into(),
        Some(json!({"name": "a", "owner": "o", "tenant": "globex"})),
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);

    for (method, path, body) in [
        (Method::GET, format!("/v1/keys/{globex_id}"), None),
        (
            Method::PATCH,
            format!("/v1/keys/{globex_id}"),
            Some(json!({"name": "pwned"})),
        ),
        (
            Method::POST,
            format!("/v1/keys/{globex_id}/rotate"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/v1/keys/{globex_id}/revoke"),
            Some(json!({})),
        ),
    ] {
        let res = as_acme(method.clone(), path.clone(), body).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let listed = as_acme(Method::GET, "/v1/keys?include_revoked=true".into(), None).await;
    let tenants: Vec<&Value> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["tenant"])
        .collect();
    assert!(
        !tenants.is_empty() && tenants.iter().all(|t| *t == "acme"),
        "{tenants:?}"
    );
    let listed = as_acme(Method::GET, "/v1/keys?tenant=globex".into(), None).await;
    assert!(listed.body["data"].as_array().unwrap().is_empty());
    let audit = as_acme(Method::GET, "/v1/audit".into(), None).await;
    assert!(
        audit.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["tenant"] == "acme")
    );
    // A tenant admin verifying another tenant's key learns nothing.
    let v = as_acme(
        Method::POST,
        "/v1/keys/verify".into(),
        Some(json!({"key": globex_key})),
    )
    .await;
    assert_eq!(v.body["code"], "NOT_FOUND");
    assert!(v.body["owner"].is_null());
    let v = as_acme(
        Method::POST,
        "/v1/keys/verify".into(),
        Some(json!({"key": acme_key})),
    )
    .await;
    assert_eq!(v.body["code"], "VALID");
    // globex's key is untouched; root sees every tenant.
    let g = app.get(&format!("/v1/keys/{globex_id}")).await;
    assert_eq!(
        (g.body["name"].as_str(), g.body["status"].as_str()),
        (Some("g"), Some("active"))
    );
    assert_eq!(app.verify_code(&globex_key).await, "VALID");
}

async fn missing_and_wrong_credentials_get_401_with_a_challenge(app: TestApp) {
    let res = app.raw(app.http.get(format!("{}/v1/keys", app.base))).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers.get("www-authenticate").unwrap(),
        "Bearer realm=\"keygate\""
    );
    assert_eq!(
        res.headers.get("content-type").unwrap(),
        "application/problem+json"
    );
    for key in ["kg_live_nonsense", "Basic abc"] {
        let res = app
            .raw(
                app.http
                    .get(format!("{}/v1/keys", app.base))
                    .header("x-api-key", key),
            )
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{key}");
        assert!(
            res.headers
                .get("www-authenticate")
                .unwrap()
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
    }
    let res = app
        .raw(
            app.http
                .get(format!("{}/v1/keys", app.base))
                .header("authorization", "Basic YTpi"),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    // X-API-Key works as well as Bearer.
    let res = app
        .raw(
            app.http
                .get(format!("{}/v1/keys", app.base))
                .header("x-api-key", &app.root_key),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
}
