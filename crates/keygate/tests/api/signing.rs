//! Signing keys, the JWKS and the discovery document: the key schedule under a
//! test clock, and keygate's tokens checked by another JOSE implementation
//! (jsonwebtoken) against the JWKS served over HTTP.

use keygate_core::jwt::{TokenKind, TokenRequest};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::helpers::{Backend, TestApp, spawn_app_with};
use crate::on_both_backends;

on_both_backends!(
    jwks_and_metadata_describe_the_issuer,
    rotation_publishes_before_signing_and_retires_after_expiry,
    signing_keys_are_for_root_admins_only,
    signing_keys_survive_a_restart,
);

fn issue(app: &TestApp, subject: &str) -> keygate_core::jwt::IssuedToken {
    let tokens = &app.state().tokens;
    tokens
        .issue(TokenRequest {
            kind: TokenKind::User,
            subject: subject.into(),
            audience: tokens.config().audience.clone(),
            ttl: tokens.config().access_token_ttl,
            not_issued_before: None,
            claims: Map::from_iter([("roles".to_owned(), json!(["reader"]))]),
        })
        .unwrap()
}

async fn jwks(app: &TestApp) -> Value {
    let res = app
        .request(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(res.status, StatusCode::OK);
    res.body
}

fn kids(jwks: &Value) -> Vec<String> {
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

fn header_kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// Verifies with jsonwebtoken, strictly: the JWKS fetched over HTTP, the
/// key chosen by kid, issuer and audience required, no leeway.
async fn cross_check(app: &TestApp, token: &str) -> Result<Value, String> {
    let body = reqwest::get(format!("{}/.well-known/jwks.json", app.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&body).unwrap();
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.ok_or("no kid")?;
    let jwk = set.find(&kid).ok_or("kid not in the JWKS")?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let config = &app.state().tokens.config().clone();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.audience]);
    validation.validate_nbf = true;
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "iat", "nbf"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

async fn jwks_and_metadata_describe_the_issuer(app: TestApp) {
    let res = app
        .request(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.headers["cache-control"], "public, max-age=300");
    let keys = res.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["use"], "sig");
    assert!(
        key["kid"].as_str().unwrap().len() >= 43,
        "an RFC 7638 thumbprint"
    );
    for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        assert!(key.get(private).is_none(), "{private} published");
    }

    let meta = app
        .request(
            Method::GET,
            "/.well-known/oauth-authorization-server",
            None,
            None,
        )
        .await;
    assert_eq!(meta.status, StatusCode::OK);
    assert_eq!(meta.body["issuer"], "https://auth.keygate.test");
    assert_eq!(
        meta.body["jwks_uri"],
        "https://auth.keygate.test/.well-known/jwks.json"
    );
    for endpoint in [
        "token_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
    ] {
        assert!(
            meta.body[endpoint]
                .as_str()
                .unwrap()
                .starts_with("https://auth.keygate.test/oauth2/")
        );
    }
    assert_eq!(
        meta.body["grant_types_supported"],
        json!(["client_credentials", "refresh_token"])
    );

    let token = issue(&app, "user-1");
    let claims = cross_check(&app, &token.token).await.unwrap();
    assert_eq!(claims["sub"], "user-1");
    assert_eq!(claims["roles"], json!(["reader"]));
    assert!(token.token.len() < 1024);
}

async fn rotation_publishes_before_signing_and_retires_after_expiry(app: TestApp) {
    let tokens = app.state().tokens.clone();
    let first = kids(&jwks(&app).await);
    assert_eq!(first.len(), 1);
    let old_token = issue(&app, "before-rotation");
    assert_eq!(header_kid(&old_token.token), first[0]);

    let res = app
        .request(
            Method::POST,
            "/v1/signing-keys/rotate",
            Some(&app.root_key),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(res.body["state"], "pending");
    let new_kid = res.body["kid"].as_str().unwrap().to_owned();
    // Asking again while one is pending answers the same key.
    let again = app
        .request(
            Method::POST,
            "/v1/signing-keys/rotate",
            Some(&app.root_key),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["kid"], new_kid.as_str());

    // Published at once, but not signing for one JWKS lifetime.
    let both = kids(&jwks(&app).await);
    assert_eq!(both.len(), 2);
    assert!(both.contains(&new_kid));
    assert_eq!(header_kid(&issue(&app, "x").token), first[0]);
    app.clock.advance_secs(299);
    assert_eq!(header_kid(&issue(&app, "x").token), first[0]);
    app.clock.advance_secs(1);
    let new_token = issue(&app, "after-rotation");
    assert_eq!(header_kid(&new_token.token), new_kid);
    tokens.maintain().await.unwrap();
    assert_eq!(kids(&jwks(&app).await), both, "the old key stays published");
    let listed = app
        .request(Method::GET, "/v1/signing-keys", Some(&app.root_key), None)
        .await;
    let states: Vec<(String, String)> = listed.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().unwrap().to_owned(),
                k["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        states.contains(&(first[0].clone(), "retired".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&(new_kid.clone(), "active".into())),
        "{states:?}"
    );

    // Tokens signed before the rotation keep verifying until they expire.
    let aud = tokens.config().audience.clone();
    assert!(tokens.verify(&old_token.token, &aud).await.is_ok());
    assert!(tokens.verify(&new_token.token, &aud).await.is_ok());
    // (No cross-check here: jsonwebtoken reads the real clock, and this
    // test's clock is 300 s ahead of it.)

    // Retention: longest TTL (900) + leeway (30) + JWKS lifetime (300) after
    // the new key took over, the old one leaves the JWKS and the database.
    app.clock.advance_secs(900 + 30 + 300 - 1);
    tokens.maintain().await.unwrap();
    assert_eq!(kids(&jwks(&app).await), both);
    app.clock.advance_secs(1);
    tokens.maintain().await.unwrap();
    assert_eq!(kids(&jwks(&app).await), vec![new_kid.clone()]);
    assert!(tokens.verify(&old_token.token, &aud).await.is_err());

    // The schedule: one JWKS lifetime before the period ends, a successor
    // is added; it signs when the period ends.
    app.clock.advance_secs(30 * 86_400 - 300 - 1230);
    tokens.maintain().await.unwrap();
    assert_eq!(kids(&jwks(&app).await).len(), 2);
    assert_eq!(header_kid(&issue(&app, "x").token), new_kid);
    app.clock.advance_secs(300);
    assert_ne!(header_kid(&issue(&app, "x").token), new_kid);

    let audit = app
        .request(
            Method::GET,
            "/v1/audit?action=signing_key.created",
            Some(&app.root_key),
            None,
        )
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
    assert_eq!(
        audit.body["data"].as_array().unwrap().len(),
        3,
        "{}",
        audit.body
    );
}

async fn signing_keys_are_for_root_admins_only(app: TestApp) {
    let created = app
        .request(
            Method::POST,
            "/v1/keys",
            Some(&app.root_key),
            Some(json!({"name": "t", "owner": "o", "tenant": "acme", "scopes": ["admin"]})),
        )
        .await;
    let tenant_admin = created.body["key"].as_str().unwrap().to_owned();
    for (method, path) in [
        (Method::GET, "/v1/signing-keys"),
        (Method::POST, "/v1/signing-keys/rotate"),
    ] {
        let res = app
            .request(method.clone(), path, Some(&tenant_admin), None)
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{path}");
        let res = app.request(method, path, None, None).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    assert_eq!(kids(&jwks(&app).await).len(), 1, "nothing changed");
}

async fn signing_keys_survive_a_restart(mut app: TestApp) {
    let before = kids(&jwks(&app).await);
    let token = issue(&app, "u");
    app.restart().await;
    assert_eq!(kids(&jwks(&app).await), before);
    let tokens = &app.state().tokens;
    assert!(
        tokens
            .verify(&token.token, &tokens.config().audience)
            .await
            .is_ok()
    );
}

/// The other published algorithms, cross-checked the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eddsa_and_rs256_tokens_verify_with_another_implementation() {
    for alg in ["EdDSA", "RS256"] {
        let app = spawn_app_with(Backend::Sqlite, |args| {
            args.jwt.algorithm = Some(alg.into());
        })
        .await
        .unwrap();
        let set = jwks(&app).await;
        assert_eq!(set["keys"][0]["alg"], alg);
        let token = issue(&app, "user-2");
        let claims = cross_check(&app, &token.token).await.unwrap();
        assert_eq!(claims["sub"], "user-2", "{alg}");
    }
}

/// HS256 is for this process alone: nothing is published, yet its own
/// verifier accepts its tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs256_keys_are_never_published() {
    let app = spawn_app_with(Backend::Sqlite, |args| {
        args.jwt.algorithm = Some("HS256".into());
    })
    .await
    .unwrap();
    assert_eq!(jwks(&app).await, json!({"keys": []}));
    let token = issue(&app, "u");
    let tokens = &app.state().tokens;
    assert!(
        tokens
            .verify(&token.token, &tokens.config().audience)
            .await
            .is_ok()
    );
    assert!(cross_check(&app, &token.token).await.is_err());
}
