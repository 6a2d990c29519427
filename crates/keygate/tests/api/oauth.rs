//! The OAuth endpoints: client credentials with both client authentication
//! methods, scope narrowing, RFC 6749 errors, and introspection of keys and
//! access tokens.

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    client_credentials_trade_a_key_for_a_narrowed_jwt,
    the_token_endpoint_refuses_bad_clients_in_rfc_6749_form,
    introspection_reports_keys_and_tokens_within_the_callers_tenant,
);

pub async fn create_key(app: &TestApp, body: Value) -> (String, String) {
    let res = app
        .request(
            reqwest::Method::POST,
            "/v1/keys",
            Some(&app.root_key),
            Some(body),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    (
        res.body["id"].as_str().unwrap().to_owned(),
        res.body["key"].as_str().unwrap().to_owned(),
    )
}

pub async fn form(
    app: &TestApp,
    path: &str,
    auth: Option<(&str, &str)>,
    bearer: Option<&str>,
    pairs: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = app
        .http
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(pairs).unwrap());
    if let Some((id, secret)) = auth {
        // RFC 6749 §2.3.1: each half form-urlencoded, then base64.
        let enc = |s: &str| serde_urlencoded::to_string([("", s)]).unwrap()[1..].to_owned();
        let raw = format!("{}:{}", enc(id), enc(secret));
        req = req.header(
            "authorization",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            ),
        );
    }
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

async fn client_credentials_trade_a_key_for_a_narrowed_jwt(app: TestApp) {
    let (id, key) = create_key(
        &app,
        json!({"name": "billing", "owner": "svc-billing", "tenant": "acme",
               "scopes": ["orders:read", "orders:write"]}),
    )
    .await;
    let (status, headers, body) = form(
        &app,
        "/oauth2/token",
        Some((&id, &key)),
        None,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "orders:read orders:write");
    let claims = payload(body["access_token"].as_str().unwrap());
    // `sub` is the key id; the owner, free text, has its own claim.
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["kg_owner"], "svc-billing");
    assert_eq!(claims["kg_kind"], "client");
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    let tokens = &app.state().tokens;
    let verified = tokens
        .verify(
            body["access_token"].as_str().unwrap(),
            &tokens.config().audience,
        )
        .await
        .unwrap();
    assert_eq!(verified.sub.as_deref(), Some(id.as_str()));

    // client_secret_post, narrowed to one scope.
    let (status, _, body) = form(
        &app,
        "/oauth2/token",
        None,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &key),
            ("scope", "orders:read"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        payload(body["access_token"].as_str().unwrap())["scope"],
        "orders:read"
    );

    // Never wider than the key.
    let (status, _, body) = form(
        &app,
        "/oauth2/token",
        Some((&id, &key)),
        None,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "orders:read admin"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_scope");
}

async fn the_token_endpoint_refuses_bad_clients_in_rfc_6749_form(app: TestApp) {
    let (id, key) = create_key(&app, json!({"name": "c", "owner": "o"})).await;
    let (other_id, _) = create_key(&app, json!({"name": "d", "owner": "o"})).await;
    let cc = [("grant_type", "client_credentials")];
    type Case<'a> = (
        Option<(&'a str, &'a str)>,
        Vec<(&'a str, &'a str)>,
        StatusCode,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            Some((&other_id, &key)),
            cc.to_vec(),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            Some((
                &id,
                "kg_live_000000000000000000000000000000000000000000000000",
            )),
            cc.to_vec(),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            None,
            cc.to_vec(),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            Some((&id, &key)),
            vec![("grant_type", "password")],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            Some((&id, &key)),
            vec![],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Some((&id, &key)),
            vec![
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (auth, pairs, status, error) in cases {
        let (got, headers, body) = form(&app, "/oauth2/token", auth, None, &pairs).await;
        assert_eq!(got, status, "{pairs:?} {body}");
        assert_eq!(body["error"], error, "{pairs:?}");
        assert!(body["error_description"].is_string());
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(headers["www-authenticate"], "Basic realm=\"keygate\"");
        }
    }

    // A JSON body is not an OAuth request.
    let res = app
        .http
        .post(format!("{}/oauth2/token", app.base))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // A revoked key gets no token.
    let res = app
        .request(
            reqwest::Method::POST,
            &format!("/v1/keys/{id}/revoke"),
            Some(&app.root_key),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let (status, _, body) = form(&app, "/oauth2/token", Some((&id, &key)), None, &cc).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("REVOKED")
    );
    assert!(!body.to_string().contains(&key));
}

async fn introspection_reports_keys_and_tokens_within_the_callers_tenant(app: TestApp) {
    let (_, introspector) = create_key(
        &app,
        json!({"name": "gw", "owner": "gw", "scopes": ["tokens:introspect"]}),
    )
    .await;
    let (_, acme_introspector) = create_key(
        &app,
        json!({"name": "gw", "owner": "gw", "tenant": "acme", "scopes": ["tokens:introspect"]}),
    )
    .await;
    let (_, plain) = create_key(&app, json!({"name": "p", "owner": "p"})).await;
    let (id, key) = create_key(
        &app,
        json!({"name": "svc", "owner": "svc", "tenant": "globex", "scopes": ["a"], "remaining": 1}),
    )
    .await;

    let (status, _, body) = form(&app, "/oauth2/introspect", None, None, &[("token", &key)]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _, _) = form(
        &app,
        "/oauth2/introspect",
        None,
        Some(&plain),
        &[("token", &key)],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let introspect = |bearer: String, token: String| {
        let app = &app;
        async move {
            let (status, headers, body) = form(
                app,
                "/oauth2/introspect",
                None,
                Some(&bearer),
                &[("token", &token)],
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(headers["cache-control"], "no-store");
            body
        }
    };
    let body = introspect(introspector.clone(), key.clone()).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], id.as_str());
    assert_eq!(body["scope"], "a");
    assert_eq!(body["tenant"], "globex");
    // Introspection used nothing: the key's one credit is still there.
    let body = introspect(introspector.clone(), key.clone()).await;
    assert_eq!(body["active"], true);
    // Another tenant's introspector learns nothing.
    assert_eq!(
        introspect(acme_introspector.clone(), key.clone()).await,
        json!({"active": false})
    );

    let (_, _, token) = form(
        &app,
        "/oauth2/token",
        Some((&id, &key)),
        None,
        &[("grant_type", "client_credentials")],
    )
    .await;
    let access = token["access_token"].as_str().unwrap().to_owned();
    let body = introspect(introspector.clone(), access.clone()).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["client_id"], id.as_str());
    assert_eq!(body["sub"], id.as_str());
    assert_eq!(body["kg_owner"], "svc");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        introspect(acme_introspector, access.clone()).await,
        json!({"active": false})
    );

    for junk in [
        "nonsense",
        "a.b.c",
        "kg_live_short",
        &access[..access.len() - 2],
    ] {
        assert_eq!(
            introspect(introspector.clone(), junk.to_owned()).await,
            json!({"active": false}),
            "{junk}"
        );
    }
    app.clock.advance_secs(301 + 30);
    assert_eq!(
        introspect(introspector.clone(), access).await,
        json!({"active": false})
    );
    let res = app
        .request(
            reqwest::Method::POST,
            &format!("/v1/keys/{id}/revoke"),
            Some(&app.root_key),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        introspect(introspector, key).await,
        json!({"active": false})
    );
}
