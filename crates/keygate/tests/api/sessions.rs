//! Login, refresh, logout and the OAuth session endpoints, over HTTP on both
//! backends: rotation and reuse detection, the cookie and its Origin check,
//! cut-offs from password changes, revocation (also of a token not yet
//! valid), and introspection of what all this leaves behind.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::oauth::{create_key, form};
use crate::on_both_backends;

on_both_backends!(
    login_issues_an_access_token_and_a_refresh_cookie,
    wrong_passwords_and_unknown_users_look_alike_and_are_throttled,
    refresh_rotates_and_reuse_revokes_only_that_family,
    fifty_concurrent_refreshes_have_one_winner,
    the_cookie_refreshes_only_from_allowed_origins,
    logout_ends_the_family_and_blocks_the_access_token,
    a_password_change_cuts_off_earlier_tokens_at_once,
    oauth_refresh_revoke_and_introspect_sessions,
);

const PASSWORD: &str = "correct horse battery staple";

pub(crate) async fn create_user(app: &TestApp, username: &str) -> String {
    let res = app
        .request(
            Method::POST,
            "/v1/users",
            Some(&app.root_key),
            Some(
                json!({"username": username, "password": PASSWORD, "roles": ["customer"],
                        "tenant": "acme", "claims": {"plan": "pro"}}),
            ),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    res.body["id"].as_str().unwrap().to_owned()
}

/// Logs in with the refresh token in the body: (access, refresh).
pub(crate) async fn login(app: &TestApp, username: &str) -> (String, String) {
    let res = app
        .request(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(
                json!({"username": username, "password": PASSWORD, "refresh_token_in_body": true}),
            ),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    (
        res.body["access_token"].as_str().unwrap().to_owned(),
        res.body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn refresh(app: &TestApp, token: &str) -> crate::helpers::Response {
    app.request(
        Method::POST,
        "/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": token})),
    )
    .await
}

pub(crate) async fn introspector(app: &TestApp) -> String {
    create_key(
        app,
        json!({"name": "i", "owner": "i", "scopes": ["tokens:introspect"]}),
    )
    .await
    .1
}

pub(crate) async fn active(app: &TestApp, introspector: &str, token: &str) -> Value {
    let (status, _, body) = form(
        app,
        "/oauth2/introspect",
        None,
        Some(introspector),
        &[("token", token)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

async fn login_issues_an_access_token_and_a_refresh_cookie(app: TestApp) {
    let id = create_user(&app, "Alice").await;
    let res = app
        .http
        .post(format!("{}/v1/auth/login", app.base))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in [
        "__Host-keygate-refresh=kgr_",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let body: Value = res.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let token = body["access_token"].as_str().unwrap();
    assert!(token.len() < 1024, "{}", token.len());
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let c = claims(token);
    assert_eq!(c["sub"], id.as_str());
    assert_eq!(c["roles"], json!(["customer"]));
    assert_eq!(c["tenant"], "acme");
    assert_eq!(c["plan"], "pro");
    assert_eq!(c["iss"], "https://auth.keygate.test");
    assert_eq!(c["exp"].as_i64().unwrap() - c["nbf"].as_i64().unwrap(), 900);
    assert!(c["jti"].is_string() && c["sid"].is_string());
    // An independent implementation accepts it against the served JWKS.
    let jwks: jsonwebtoken::jwk::JwkSet =
        reqwest::get(format!("{}/.well-known/jwks.json", app.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&["https://auth.keygate.test"]);
    validation.set_audience(&["https://auth.keygate.test"]);
    validation.leeway = 0;
    jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap();
}

async fn wrong_passwords_and_unknown_users_look_alike_and_are_throttled(app: TestApp) {
    create_user(&app, "bob").await;
    let attempt = |username: &'static str, password: &'static str| {
        let app = &app;
        async move {
            app.request(
                Method::POST,
                "/v1/auth/login",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await
        }
    };
    let wrong = attempt("bob", "not the password at all").await;
    let unknown = attempt("nobody", "not the password at all").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body["detail"], unknown.body["detail"]);
    assert_eq!(wrong.body["code"], unknown.body["code"]);
    for _ in 0..4 {
        assert_eq!(
            attempt("bob", "not the password at all").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Five failures: now even the right password waits.
    let throttled = attempt("bob", PASSWORD).await;
    assert_eq!(
        throttled.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        throttled.body
    );
    assert!(throttled.headers.contains_key("retry-after"));
    app.clock.advance_secs(2);
    assert_eq!(attempt("bob", PASSWORD).await.status, StatusCode::OK);
    let res = app
        .request(
            Method::GET,
            "/v1/audit?action=auth.failed",
            Some(&app.root_key),
            None,
        )
        .await;
    assert!(!res.body.to_string().contains("not the password"));
}

async fn refresh_rotates_and_reuse_revokes_only_that_family(app: TestApp) {
    create_user(&app, "carol").await;
    let (_, first) = login(&app, "carol").await;
    let (_, other) = login(&app, "carol").await;
    let res = refresh(&app, &first).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let second = res.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert!(res.body["access_token"].is_string());
    let res = refresh(&app, &second).await;
    assert_eq!(res.status, StatusCode::OK);
    let third = res.body["refresh_token"].as_str().unwrap().to_owned();

    // The first token again: reuse. Its family dies, successors included.
    let res = refresh(&app, &first).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.body["code"], "invalid_refresh_token");
    assert_eq!(refresh(&app, &third).await.status, StatusCode::UNAUTHORIZED);
    // The user's other session is untouched.
    assert_eq!(refresh(&app, &other).await.status, StatusCode::OK);
    let audit = app
        .request(
            Method::GET,
            "/v1/audit?action=session.reuse_detected",
            Some(&app.root_key),
            None,
        )
        .await;
    assert_eq!(
        audit.body["data"].as_array().unwrap().len(),
        1,
        "{}",
        audit.body
    );
    assert!(!audit.body.to_string().contains(&first));
}

async fn fifty_concurrent_refreshes_have_one_winner(app: TestApp) {
    create_user(&app, "dave").await;
    let (_, token) = login(&app, "dave").await;
    let results = futures_join_all(
        (0..50)
            .map(|_| {
                let http = app.http.clone();
                let url = format!("{}/v1/auth/refresh", app.base);
                let token = token.clone();
                tokio::spawn(async move {
                    http.post(url)
                        .json(&json!({"refresh_token": token}))
                        .send()
                        .await
                        .unwrap()
                        .status()
                })
            })
            .collect(),
    )
    .await;
    let ok = results.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::UNAUTHORIZED)
    );
}

async fn futures_join_all(handles: Vec<tokio::task::JoinHandle<StatusCode>>) -> Vec<StatusCode> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

async fn the_cookie_refreshes_only_from_allowed_origins(app: TestApp) {
    create_user(&app, "erin").await;
    let res = app
        .http
        .post(format!("{}/v1/auth/login", app.base))
        .json(&json!({"username": "erin", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    let pair = cookie.split(';').next().unwrap().to_owned();
    let with = |origin: Option<&'static str>| {
        let mut req = app
            .http
            .post(format!("{}/v1/auth/refresh", app.base))
            .header("cookie", pair.clone());
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    assert_eq!(with(None).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(
        with(Some("https://evil.example")).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let res = with(Some("https://auth.keygate.test")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let rotated = res.headers()["set-cookie"].to_str().unwrap();
    assert!(rotated.starts_with("__Host-keygate-refresh=kgr_"));
    assert_ne!(rotated.split(';').next().unwrap(), pair);
    let body: Value = res.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());
}

async fn logout_ends_the_family_and_blocks_the_access_token(app: TestApp) {
    create_user(&app, "frank").await;
    let inspector = introspector(&app).await;
    let (access, refresh_token) = login(&app, "frank").await;
    assert_eq!(active(&app, &inspector, &access).await["active"], true);
    let res = app
        .http
        .post(format!("{}/v1/auth/logout", app.base))
        .bearer_auth(&access)
        .json(&json!({"refresh_token": refresh_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        refresh(&app, &refresh_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        active(&app, &inspector, &access).await,
        json!({"active": false})
    );
    assert_eq!(
        active(&app, &inspector, &refresh_token).await,
        json!({"active": false})
    );
    let res = app
        .request(Method::POST, "/v1/auth/logout", None, None)
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
}

async fn a_password_change_cuts_off_earlier_tokens_at_once(app: TestApp) {
    let id = create_user(&app, "grace").await;
    let inspector = introspector(&app).await;
    let (access, refresh_token) = login(&app, "grace").await;
    assert_eq!(active(&app, &inspector, &access).await["active"], true);
    let res = app
        .request(
            Method::PATCH,
            &format!("/v1/users/{id}"),
            Some(&app.root_key),
            Some(json!({"password": "an entirely new passphrase"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    // Same second, no clock movement: refused at once.
    assert_eq!(
        active(&app, &inspector, &access).await,
        json!({"active": false})
    );
    assert_eq!(
        refresh(&app, &refresh_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    // A login right after the change, in the same second, works.
    let res = app
        .request(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(
                json!({"username": "grace", "password": "an entirely new passphrase",
                        "refresh_token_in_body": true}),
            ),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let fresh = res.body["access_token"].as_str().unwrap();
    assert_eq!(active(&app, &inspector, fresh).await["active"], true);
    // Revoke-sessions and disabling cut off the same way.
    let res = app
        .request(
            Method::POST,
            &format!("/v1/users/{id}/revoke-sessions"),
            Some(&app.root_key),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        active(&app, &inspector, fresh).await,
        json!({"active": false})
    );
}

async fn oauth_refresh_revoke_and_introspect_sessions(app: TestApp) {
    create_user(&app, "heidi").await;
    let inspector = introspector(&app).await;
    let (access, refresh_token) = login(&app, "heidi").await;
    let body = active(&app, &inspector, &refresh_token).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "refresh_token");

    let (status, headers, body) = form(
        &app,
        "/oauth2/token",
        None,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    let next = body["refresh_token"].as_str().unwrap().to_owned();
    // Used: inactive. The successor is active.
    assert_eq!(
        active(&app, &inspector, &refresh_token).await,
        json!({"active": false})
    );
    assert_eq!(active(&app, &inspector, &next).await["active"], true);
    let (status, _, body) = form(
        &app,
        "/oauth2/token",
        None,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "kgr_nope"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");

    // RFC 7009: the refresh token's family, the access token's jti.
    for token in [next.as_str(), access.as_str(), "unknown-token"] {
        let (status, _, _) = form(&app, "/oauth2/revoke", None, None, &[("token", token)]).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(
        active(&app, &inspector, &next).await,
        json!({"active": false})
    );
    assert_eq!(
        active(&app, &inspector, &access).await,
        json!({"active": false})
    );

    // A token not yet valid (its clock ahead of ours) can be revoked, and
    // stays revoked once it becomes valid.
    app.clock.advance_secs(120);
    let (future_access, _) = login(&app, "heidi").await;
    app.clock.advance_secs(-120);
    assert_eq!(
        active(&app, &inspector, &future_access).await,
        json!({"active": false})
    );
    let (status, _, _) = form(
        &app,
        "/oauth2/revoke",
        None,
        None,
        &[("token", &future_access)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    app.clock.advance_secs(120);
    assert_eq!(
        active(&app, &inspector, &future_access).await,
        json!({"active": false})
    );
}
