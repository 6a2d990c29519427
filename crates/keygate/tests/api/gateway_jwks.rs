//! The encrypted internal token to a key the upstream publishes at a JWKS
//! URL: fetched at start from a JWKS server run by the test, a rotation
//! picked up at the next refresh, and while no key has been fetched the
//! route refuses (503 `upstream_key_unavailable`) and nothing reaches the
//! upstream, on the gateway and at forward-auth alike.

use std::sync::{Arc, Mutex};

use aws_lc_rs::agreement;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use keygate_verify::jwe::{Decrypter, DecryptionKey};
use keygate_verify::{Encryption, Validation, Verifier};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::gateway_upstream::{Gw, spawn_upstream};
use crate::helpers::spawn_app_with_toml;
use crate::on_both_backends;
use keygate_test_support::Backend;

on_both_backends!(
    spawn = crate::gateway_jwks::spawn;
    the_route_encrypts_to_the_published_key_and_follows_its_rotation,
    without_a_fetched_key_nothing_reaches_the_upstream,
);

/// An upstream's encryption key pair: the private half stays with the test.
struct UpKey {
    pkcs8: Vec<u8>,
    jwk: Value,
}

fn up_key(kid: &str) -> UpKey {
    let key = agreement::PrivateKey::generate(&agreement::ECDH_P256).unwrap();
    let pkcs8 = AsDer::<Pkcs8V1Der>::as_der(&key).unwrap().as_ref().to_vec();
    let point = key.compute_public_key().unwrap().as_ref().to_vec();
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "use": "enc",
        "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..]),
    });
    UpKey { pkcs8, jwk }
}

/// The upstream's JWKS endpoint: serves whatever `keys` holds now.
async fn spawn_jwks(keys: Arc<Mutex<Vec<Value>>>) -> String {
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let keys = keys.lock().unwrap().clone();
            async move { axum::Json(json!({ "keys": keys })) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/jwks.json")
}

pub struct JwksGw {
    gw: Gw,
    keys: Arc<Mutex<Vec<Value>>>,
    first: UpKey,
}

async fn spawn(backend: Backend) -> Option<JwksGw> {
    let upstream = spawn_upstream().await;
    let first = up_key("up-1");
    let keys = Arc::new(Mutex::new(vec![first.jwk.clone()]));
    let jwks_url = spawn_jwks(keys.clone()).await;
    // A port nothing listens on: the JWKS of an upstream that is down.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dark_url = format!("http://{}/jwks.json", closed.local_addr().unwrap());
    drop(closed);
    let u = format!("http://{}", upstream.addr);
    let route = |name: &str, url: &str| {
        format!(
            "[[gateway.routes]]\nname = \"{name}\"\nmatch = {{ path_prefix = \"/{name}\" }}\n\
             upstream = \"{u}\"\nauth = \"api_key\"\n\
             internal_token_encryption = {{ jwks_url = \"{url}\" }}\n"
        )
    };
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\n{}{}",
        route("fetched", &jwks_url),
        route("dark", &dark_url),
    );
    let app = spawn_app_with_toml(backend, Some(&toml), |_| {}).await?;
    let url = format!("http://{}", app.gateway_addr.unwrap());
    Some(JwksGw {
        gw: Gw { app, upstream, url },
        keys,
        first,
    })
}

/// What the upstream does with its token: decrypt with `key`, verify
/// against keygate's JWKS for its route.
async fn open(gw: &Gw, token: &str, key: &UpKey) -> Result<keygate_verify::Claims, String> {
    let set = gw.app.served_jwks().await;
    let issuer = gw.app.state().tokens.config().issuer.clone();
    let kid = key.jwk["kid"].as_str().map(str::to_owned);
    let decrypter = Decrypter::with_key(DecryptionKey::from_der(&key.pkcs8, kid).unwrap()).unwrap();
    let verifier = Verifier::new(set, Validation::new(issuer, "fetched"))
        .unwrap()
        .with_decryption(Arc::new(decrypter), Encryption::Required);
    let now = u64::try_from(gw.app.state().tokens.clock().now_secs()).unwrap();
    verifier.verify(token, now).map_err(|e| e.to_string())
}

fn header_of(token: &str) -> Value {
    serde_json::from_slice(&B64.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

async fn token_for(gw: &Gw, key: &str) -> String {
    let res = gw
        .app
        .raw(gw.get("/fetched/1").header("x-api-key", key))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let auth = res.body["headers"]["authorization"].as_str().unwrap();
    auth.strip_prefix("Bearer ").unwrap().to_owned()
}

async fn the_route_encrypts_to_the_published_key_and_follows_its_rotation(f: JwksGw) {
    let gw = &f.gw;
    // Fetched at start: the first request already has its key.
    let (key_id, key) = gw.key(&["orders:read"]).await;
    let token = token_for(gw, &key).await;
    assert_eq!(token.split('.').count(), 5, "a compact JWE");
    assert_eq!(header_of(&token)["kid"], "up-1");
    assert_eq!(header_of(&token)["alg"], "ECDH-ES+A256KW");
    let claims = open(gw, &token, &f.first).await.unwrap();
    assert_eq!(claims.sub.as_deref(), Some(key_id.as_str()));

    // The upstream rotates: the new key first, the old one kept a while.
    let second = up_key("up-2");
    *f.keys.lock().unwrap() = vec![second.jwk.clone(), f.first.jwk.clone()];
    // What the background refresher does when the set goes stale.
    let gateway = gw.app.state().gateway.clone().unwrap();
    let route = gateway.table().by_name("fetched").unwrap().clone();
    let remote = route
        .internal_token_encryption
        .as_ref()
        .unwrap()
        .remote()
        .unwrap();
    remote.refresh().await.unwrap();
    let (_, other_key) = gw.key(&["orders:read"]).await;
    let token = token_for(gw, &other_key).await;
    assert_eq!(header_of(&token)["kid"], "up-2");
    assert!(open(gw, &token, &second).await.is_ok());
    assert!(
        open(gw, &token, &f.first).await.is_err(),
        "not to the old key"
    );
}

async fn without_a_fetched_key_nothing_reaches_the_upstream(f: JwksGw) {
    let gw = &f.gw;
    let (_, key) = gw.key(&["orders:read"]).await;
    let res = gw
        .app
        .raw(
            gw.app
                .http
                .post(format!("{}/dark/sink", gw.url))
                .header("x-api-key", &key)
                .body("claims"),
        )
        .await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.body);
    assert_eq!(res.body["code"], "upstream_key_unavailable");
    assert!(res.headers.get("retry-after").is_some());
    let nothing = gw.upstream.received.lock().await.try_recv();
    assert!(nothing.is_err(), "the upstream got a request");
    // The same route through forward-auth: refused, no token handed over.
    let res = gw
        .app
        .raw(
            gw.app
                .http
                .get(format!("{}/v1/forward-auth", gw.app.base))
                .header("x-original-uri", "/dark/1")
                .header("x-original-method", "GET")
                .header("x-api-key", &key),
        )
        .await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.body);
    assert_eq!(res.body["code"], "upstream_key_unavailable");
    assert!(res.headers.get("authorization").is_none());
    // The route beside it, whose key was fetched, is unaffected.
    let res = gw
        .app
        .raw(
            gw.app
                .http
                .post(format!("{}/fetched/sink", gw.url))
                .header("x-api-key", &key)
                .body("x"),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert!(gw.upstream.received.lock().await.recv().await.is_some());
}
