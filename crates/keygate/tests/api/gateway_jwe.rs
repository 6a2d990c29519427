//! The encrypted internal token: a route with `internal_token_encryption`
//! sends its upstream a nested JWT (signed by keygate, then encrypted to
//! the upstream's public key) that the upstream decrypts with its private
//! key and verifies with keygate-verify, and that nobody else can read.

use std::sync::Arc;

use aws_lc_rs::agreement;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use keygate_verify::jwe::{Decrypter, DecryptionKey};
use keygate_verify::{Encryption, Validation, Verifier};
use reqwest::StatusCode;
use serde_json::Value;

use crate::gateway_upstream::{Gw, spawn_upstream};
use crate::helpers::spawn_app_with_toml;
use crate::on_both_backends;
use keygate_test_support::Backend;

on_both_backends!(
    spawn = crate::gateway_jwe::spawn;
    the_upstream_decrypts_and_verifies_its_internal_token,
);

pub struct EncGw {
    gw: Gw,
    /// The upstream's private key (PKCS#8), which keygate never sees.
    upstream_key: Vec<u8>,
}

async fn spawn(backend: Backend) -> Option<EncGw> {
    let upstream = spawn_upstream().await;
    let key = agreement::PrivateKey::generate(&agreement::ECDH_P256).unwrap();
    let upstream_key = AsDer::<Pkcs8V1Der>::as_der(&key).unwrap().as_ref().to_vec();
    let point = key.compute_public_key().unwrap().as_ref().to_vec();
    let u = format!("http://{}", upstream.addr);
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\n\
         [[gateway.routes]]\nname = \"secret\"\nmatch = {{ path_prefix = \"/secret\" }}\n\
         upstream = \"{u}\"\nauth = \"api_key\"\n\
         internal_token_encryption = {{ jwk = {{ kty = \"EC\", crv = \"P-256\", kid = \"up-enc-1\", x = \"{}\", y = \"{}\" }} }}\n\
         [[gateway.routes]]\nname = \"plain\"\nmatch = {{ path_prefix = \"/plain\" }}\n\
         upstream = \"{u}\"\nauth = \"api_key\"\n",
        B64.encode(&point[1..33]),
        B64.encode(&point[33..]),
    );
    let app = spawn_app_with_toml(backend, Some(&toml), |_| {}).await?;
    let url = format!("http://{}", app.gateway_addr.unwrap());
    Some(EncGw {
        gw: Gw { app, upstream, url },
        upstream_key,
    })
}

fn header_of(token: &str) -> Value {
    serde_json::from_slice(&B64.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

async fn the_upstream_decrypts_and_verifies_its_internal_token(f: EncGw) {
    let gw = &f.gw;
    let (key_id, key) = gw.key(&["orders:read"]).await;
    let res = gw
        .app
        .raw(gw.get("/secret/1").header("x-api-key", &key))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let auth = res.body["headers"]["authorization"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = auth.strip_prefix("Bearer ").unwrap();
    assert_eq!(token.split('.').count(), 5, "a compact JWE");
    let header = header_of(token);
    assert_eq!(header["alg"], "ECDH-ES+A256KW");
    assert_eq!(header["enc"], "A256GCM");
    assert_eq!(header["cty"], "JWT");
    assert_eq!(header["kid"], "up-enc-1");
    // Nothing of the identity is readable on the way.
    assert!(!token.contains(&key_id) && !token.contains(&B64.encode(key_id.as_bytes())));

    // The upstream: its private key, keygate's JWKS, its route's audience.
    let set = gw.app.served_jwks().await;
    let issuer = gw.app.state().tokens.config().issuer.clone();
    let decrypter = Decrypter::with_key(
        DecryptionKey::from_der(&f.upstream_key, Some("up-enc-1".into())).unwrap(),
    )
    .unwrap();
    let verifier = Verifier::new(set, Validation::new(issuer, "secret"))
        .unwrap()
        .with_decryption(Arc::new(decrypter), Encryption::Required);
    let now = u64::try_from(gw.app.state().tokens.clock().now_secs()).unwrap();
    let claims = verifier
        .verify(token, now)
        .expect("the upstream reads its token");
    assert_eq!(claims.sub.as_deref(), Some(key_id.as_str()));
    assert_eq!(claims.extra["kg_kind"], "client");
    assert_eq!(claims.extra["scope"], "orders:read");

    // Minted once per identity, encrypted form included.
    let again = gw
        .app
        .raw(gw.get("/secret/2").header("x-api-key", &key))
        .await;
    assert_eq!(
        again.body["headers"]["authorization"].as_str(),
        Some(auth.as_str())
    );

    // Another upstream's key cannot open it.
    let stranger = agreement::PrivateKey::generate(&agreement::ECDH_P256).unwrap();
    let stranger = AsDer::<Pkcs8V1Der>::as_der(&stranger).unwrap();
    let other = Decrypter::with_key(
        DecryptionKey::from_der(stranger.as_ref(), Some("up-enc-1".into())).unwrap(),
    )
    .unwrap();
    assert_eq!(
        other.decrypt(token).err(),
        Some(keygate_verify::Error::Decryption)
    );

    // A route without encryption still sends a plain signed token.
    let res = gw
        .app
        .raw(gw.get("/plain/1").header("x-api-key", &key))
        .await;
    let plain = res.body["headers"]["authorization"].as_str().unwrap();
    assert_eq!(plain.split('.').count(), 3);
}
