//! The JWKS client against a real HTTP server on 127.0.0.1:0 that counts its
//! fetches. Time moves only through the injected clock; nothing sleeps.

use crate::{common, jwks_server};

use std::sync::Arc;

use common::{AUD, ISS, NOW, TestKey, claims_with, es256};
use jwks_server::{JwksServer, ManualClock, clock_at, ms};
use keygate_verify::{Error, RemoteError, RemoteOptions, RemoteVerifier, Validation};
use serde_json::json;

/// A token valid for an hour from [`NOW`], so moving the clock by ten
/// minutes tests the cache, not expiry.
fn long_token(key: &TestKey) -> String {
    key.sign(&key.header(), &claims_with("exp", Some(json!(NOW + 3600))))
}

fn token_with_kid(key: &TestKey, kid: &str) -> String {
    let header = json!({"alg": "ES256", "kid": kid, "typ": "at+jwt"});
    key.sign(&header, &claims_with("exp", Some(json!(NOW + 3600))))
}

fn verifier(url: &str, clock: &Arc<ManualClock>) -> RemoteVerifier {
    RemoteVerifier::with_options(
        Validation::new(ISS, AUD),
        url,
        RemoteOptions::default(),
        clock.clone(),
    )
    .unwrap()
}

#[tokio::test]
async fn cache_honours_max_age() {
    let key = es256("k1");
    let server = JwksServer::start(&[&key]).await;
    server.set_cache_control(Some("public, max-age=120"));
    let clock = clock_at(NOW);
    let v = verifier(&server.url(), &clock);
    let token = long_token(&key);

    v.verify(&token).await.unwrap();
    assert_eq!(server.hits(), 1);
    clock.set_millis(ms(NOW + 119));
    v.verify(&token).await.unwrap();
    assert_eq!(server.hits(), 1, "fresh for 119 s");
    clock.set_millis(ms(NOW + 120));
    v.verify(&token).await.unwrap();
    assert_eq!(server.hits(), 2, "refetched at max-age");
}

#[tokio::test]
async fn cache_lifetime_is_capped_at_ten_minutes_and_floored() {
    let key = es256("k1");
    let server = JwksServer::start(&[&key]).await;
    server.set_cache_control(Some("max-age=86400"));
    let clock = clock_at(NOW);
    let v = verifier(&server.url(), &clock);
    let token = long_token(&key);

    v.verify(&token).await.unwrap();
    clock.set_millis(ms(NOW + 599));
    v.verify(&token).await.unwrap();
    assert_eq!(server.hits(), 1);
    clock.set_millis(ms(NOW + 600));
    server.set_cache_control(Some("no-store"));
    v.verify(&token).await.unwrap();
    assert_eq!(server.hits(), 2, "a day is capped at 600 s");
    // no-store is floored at the 30 s minimum: no fetch per request.
    clock.set_millis(ms(NOW + 629));
    v.verify(&token).await.unwrap();
    assert_eq!(server.hits(), 2);
    clock.set_millis(ms(NOW + 630));
    server.set_cache_control(None);
    v.verify(&token).await.unwrap();
    assert_eq!(server.hits(), 3);
    // No header: the 300 s default.
    clock.set_millis(ms(NOW + 929));
    v.verify(&token).await.unwrap();
    assert_eq!(server.hits(), 3);
    clock.set_millis(ms(NOW + 930));
    v.verify(&token).await.unwrap();
    assert_eq!(server.hits(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_refetch_once_per_30_s_even_when_concurrent() {
    let key = es256("k1");
    let server = JwksServer::start(&[&key]).await;
    let clock = clock_at(NOW);
    let v = verifier(&server.url(), &clock);
    v.prefetch().await.unwrap();
    assert_eq!(server.hits(), 1);

    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (v, token) = (v.clone(), token_with_kid(&key, &format!("random-{i}")));
            tokio::spawn(async move { v.verify(&token).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(
            task.await.unwrap(),
            Err(RemoteError::Token(Error::UnknownKid))
        );
    }
    assert_eq!(server.hits(), 2, "50 unknown kids, one refetch");

    clock.set_millis(ms(NOW + 29));
    for i in 0..20 {
        let token = token_with_kid(&key, &format!("again-{i}"));
        assert!(v.verify(&token).await.is_err());
    }
    assert_eq!(server.hits(), 2, "cooldown holds for 30 s");
    v.verify(&long_token(&key)).await.unwrap();

    clock.set_millis(ms(NOW + 30));
    assert!(v.verify(&token_with_kid(&key, "later")).await.is_err());
    assert_eq!(server.hits(), 3, "one more after the cooldown");
}

#[tokio::test]
async fn a_key_rotated_in_is_usable_after_the_unknown_kid_refetch() {
    let old = es256("old");
    let new = es256("new");
    let server = JwksServer::start(&[&old]).await;
    let clock = clock_at(NOW);
    let v = verifier(&server.url(), &clock);
    v.verify(&long_token(&old)).await.unwrap();

    server.set_keys(&[&old, &new]);
    clock.set_millis(ms(NOW + 5));
    let claims = v.verify(&long_token(&new)).await.unwrap();
    assert_eq!(claims.sub.as_deref(), Some("user-1"));
    assert_eq!(server.hits(), 2);
    v.verify(&long_token(&old)).await.unwrap();
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn the_last_good_set_serves_while_the_issuer_fails_or_is_down() {
    let key = es256("k1");
    let server = JwksServer::start(&[&key]).await;
    let clock = clock_at(NOW);
    let v = verifier(&server.url(), &clock);
    let token = long_token(&key);
    v.verify(&token).await.unwrap();

    server.set_status(500);
    clock.set_millis(ms(NOW + 300));
    v.verify(&token).await.unwrap();
    assert_eq!(
        server.hits(),
        2,
        "the stale set triggered a fetch, which failed"
    );
    clock.set_millis(ms(NOW + 329));
    v.verify(&token).await.unwrap();
    assert_eq!(
        server.hits(),
        2,
        "a failed fetch is retried after 30 s, not per request"
    );
    clock.set_millis(ms(NOW + 330));
    v.verify(&token).await.unwrap();
    assert_eq!(server.hits(), 3);

    // A garbage body is a failure too, and does not replace the good set.
    server.set_status(200);
    server.set_body(b"{\"keys\": \"nope\"}".to_vec());
    clock.set_millis(ms(NOW + 360));
    v.verify(&token).await.unwrap();
    assert_eq!(server.hits(), 4);

    server.stop();
    clock.set_millis(ms(NOW + 900));
    v.verify(&token).await.unwrap();
    clock.set_millis(ms(NOW + 2000));
    v.verify(&token).await.unwrap();
}

#[tokio::test]
async fn no_set_ever_fetched_is_keys_unavailable() {
    let key = es256("k1");
    let server = JwksServer::start(&[&key]).await;
    server.set_status(503);
    let clock = clock_at(NOW);
    let v = verifier(&server.url(), &clock);
    assert_eq!(
        v.verify(&long_token(&key)).await,
        Err(RemoteError::KeysUnavailable)
    );
    assert_eq!(
        v.verify(&long_token(&key)).await,
        Err(RemoteError::KeysUnavailable)
    );
    assert_eq!(server.hits(), 1, "no retry storm while the issuer is down");
    clock.set_millis(ms(NOW + 30));
    server.set_status(200);
    v.verify(&long_token(&key)).await.unwrap();
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let key = es256("k1");
    let server = JwksServer::start(&[&key]).await;
    let clock = clock_at(NOW);
    let v = verifier(&format!("{}/moved", server.base()), &clock);
    assert_eq!(
        v.verify(&long_token(&key)).await,
        Err(RemoteError::KeysUnavailable)
    );
    assert_eq!(server.redirects(), 1);
    assert_eq!(server.hits(), 0, "the redirect target was never fetched");
}

#[test]
fn plain_http_is_refused_except_for_loopback() {
    for url in [
        "http://auth.example.com/.well-known/jwks.json",
        "http://192.168.1.10/jwks",
        "http://localhost.evil.example/jwks",
        "file:///etc/jwks.json",
    ] {
        let error = RemoteVerifier::new(ISS, AUD, url).unwrap_err();
        assert!(matches!(error, Error::InvalidConfig(_)), "{url}: {error}");
        assert!(error.to_string().contains("https"), "{error}");
    }
    for url in [
        "https://auth.example.com/.well-known/jwks.json",
        "http://127.0.0.1:9/jwks",
        "http://[::1]:9/jwks",
        "http://localhost:9/jwks",
    ] {
        RemoteVerifier::new(ISS, AUD, url).unwrap();
    }
}

#[tokio::test]
async fn a_symmetric_or_private_key_from_a_url_is_refused() {
    let key = es256("k1");
    let server = JwksServer::start(&[&key]).await;
    let hmac = common::hs(keygate_verify::Algorithm::HS256, "h", &[7; 32]);
    server.set_keys(&[&hmac]);
    let clock = clock_at(NOW);
    let v = verifier(&server.url(), &clock);
    assert_eq!(
        v.verify(&long_token(&hmac)).await,
        Err(RemoteError::KeysUnavailable)
    );
}
