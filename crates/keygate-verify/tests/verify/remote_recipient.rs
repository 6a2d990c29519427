//! A recipient's encryption key from its JWKS URL, against a real HTTP
//! server on 127.0.0.1:0. Time moves only through the injected clock.

use crate::{common, jwe_common, jwks_server};

use std::sync::Arc;

use jwe_common::{Recipient, header_of, p256, rsa_recipient};
use jwks_server::{JwksServer, ManualClock, clock_at, ms};
use keygate_verify::jwe::ContentEncryption;
use keygate_verify::{RemoteOptions, RemoteRecipient};
use serde_json::json;

const NOW: u64 = common::NOW;

fn body(keys: &[&Recipient]) -> Vec<u8> {
    let keys: Vec<_> = keys.iter().map(|k| k.public_jwk.clone()).collect();
    json!({ "keys": keys }).to_string().into_bytes()
}

async fn serve(keys: &[&Recipient]) -> JwksServer {
    let server = JwksServer::start(&[]).await;
    server.set_body(body(keys));
    server
}

fn recipient(url: &str, kid: Option<&str>, clock: &Arc<ManualClock>) -> RemoteRecipient {
    RemoteRecipient::with_options(
        url,
        kid.map(str::to_owned),
        ContentEncryption::A256Gcm,
        RemoteOptions::default(),
        clock.clone(),
    )
    .unwrap()
}

/// Encrypts with what `remote` holds now and opens it with `to`.
fn round_trip(remote: &RemoteRecipient, to: &Recipient) -> String {
    let token = remote.encrypter().unwrap().encrypt_nested("a.b.c").unwrap();
    let opened = to.decrypter().decrypt(&token).unwrap();
    assert_eq!(opened.plaintext, b"a.b.c");
    header_of(&token)["kid"].as_str().unwrap_or("").to_owned()
}

#[tokio::test]
async fn the_published_key_is_fetched_and_encrypted_to() {
    let ec = p256("up-ec");
    let server = serve(&[&ec]).await;
    let clock = clock_at(NOW);
    let remote = recipient(&server.url(), None, &clock);
    assert!(
        remote.encrypter().is_none(),
        "nothing before the first fetch"
    );
    remote.refresh().await.unwrap();
    assert_eq!(round_trip(&remote, &ec), "up-ec");
    let header = header_of(&remote.encrypter().unwrap().encrypt_nested("x").unwrap());
    assert_eq!(header["alg"], "ECDH-ES+A256KW");
    assert_eq!(header["enc"], "A256GCM");
    assert_eq!(header["cty"], "JWT");

    // An RSA recipient gets RSA-OAEP-256; `kid` picks it among others.
    let rsa = rsa_recipient();
    server.set_body(body(&[&ec, rsa]));
    let remote = recipient(&server.url(), Some("rsa-enc"), &clock);
    remote.refresh().await.unwrap();
    assert_eq!(round_trip(&remote, rsa), "rsa-enc");
    let token = remote.encrypter().unwrap().encrypt_nested("x").unwrap();
    assert_eq!(header_of(&token)["alg"], "RSA-OAEP-256");
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_when_the_set_goes_stale() {
    let old = p256("old");
    let new = p256("new");
    let server = serve(&[&old]).await;
    server.set_cache_control(Some("max-age=120"));
    let clock = clock_at(NOW);
    let remote = recipient(&server.url(), None, &clock);
    remote.refresh_if_due().await;
    assert_eq!(round_trip(&remote, &old), "old");
    assert_eq!(remote.next_due(), NOW + 120);

    // The upstream publishes its new key first, keeps the old one after.
    server.set_body(body(&[&new, &old]));
    clock.set_millis(ms(NOW + 119));
    remote.refresh_if_due().await;
    assert_eq!(
        (server.hits(), round_trip(&remote, &old)),
        (1, "old".into())
    );
    clock.set_millis(ms(NOW + 120));
    remote.refresh_if_due().await;
    assert_eq!(server.hits(), 2);
    assert_eq!(round_trip(&remote, &new), "new");
    let token = remote.encrypter().unwrap().encrypt_nested("x").unwrap();
    assert!(
        old.decrypter().decrypt(&token).is_err(),
        "not to the old key"
    );
}

#[tokio::test]
async fn no_key_until_one_is_fetched_and_failures_back_off() {
    let key = p256("k");
    let server = serve(&[&key]).await;
    server.set_status(500);
    let clock = clock_at(NOW);
    let remote = recipient(&server.url(), None, &clock);
    let mut retries = Vec::new();
    for _ in 0..3 {
        clock.set_millis(ms(remote.next_due().max(NOW)));
        assert!(remote.refresh().await.is_err());
        assert!(remote.encrypter().is_none());
        retries.push(remote.next_due() - clock_secs(&clock));
    }
    assert_eq!(retries, [1, 2, 4]);

    // Back: the key arrives at the next due fetch.
    server.set_status(200);
    clock.set_millis(ms(remote.next_due()));
    remote.refresh_if_due().await;
    assert_eq!(round_trip(&remote, &key), "k");

    // Down again: the key fetched last stays in use.
    server.set_status(503);
    clock.set_millis(ms(remote.next_due()));
    assert!(remote.refresh().await.is_err());
    assert_eq!(round_trip(&remote, &key), "k");
}

#[tokio::test]
async fn an_unreachable_server_leaves_no_key() {
    let key = p256("k");
    let server = serve(&[&key]).await;
    let url = server.url();
    server.stop();
    drop(server);
    let clock = clock_at(NOW);
    let remote = recipient(&url, None, &clock);
    assert!(remote.refresh().await.is_err());
    assert!(remote.encrypter().is_none());
}

#[tokio::test]
async fn sets_that_offer_nothing_safe_are_refused() {
    let key = p256("k");
    let server = serve(&[&key]).await;
    let clock = clock_at(NOW);
    // Private material published: refused whole, even beside a good key.
    let mut leaked = p256("leaked").public_jwk;
    leaked["d"] = "AAAA".into();
    let good = key.public_jwk.clone();
    server.set_body(json!({ "keys": [good, leaked] }).to_string().into_bytes());
    let remote = recipient(&server.url(), None, &clock);
    let error = remote.refresh().await.unwrap_err();
    assert!(error.to_string().contains("private"), "{error}");
    // Only signing keys.
    let mut sig = key.public_jwk.clone();
    sig["use"] = "sig".into();
    server.set_body(json!({ "keys": [sig] }).to_string().into_bytes());
    let remote = recipient(&server.url(), None, &clock);
    assert!(remote.refresh().await.is_err());
    assert!(remote.encrypter().is_none());
}

#[test]
fn urls_follow_the_verifiers_rule() {
    let enc = ContentEncryption::A256Gcm;
    assert!(RemoteRecipient::new("http://upstream.internal/jwks", None, enc).is_err());
    assert!(RemoteRecipient::new("https://upstream.internal/jwks", None, enc).is_ok());
    assert!(RemoteRecipient::new("http://127.0.0.1:9/jwks", None, enc).is_ok());
    assert!(RemoteRecipient::new("https://u:p@upstream.internal/jwks", None, enc).is_err());
}

fn clock_secs(clock: &ManualClock) -> u64 {
    use keygate_verify::Clock as _;
    clock.now_secs()
}
