//! Key sets shaped like the large identity providers publish them (issue 9,
//! item 8), built with our own keys: Google and Okta (RSA with `alg`),
//! Microsoft Entra (RSA without `alg`, with `x5t`, `x5c` and `issuer`),
//! Auth0 (`alg`, `x5t`, `x5c`). A key without `alg` verifies the header's
//! algorithm when it fits the key type and the caller allows it (RS256 alone
//! for RSA by default); a key with `alg` stays bound to it; the hostile
//! cases of jwt-attacks.md stay refused on keys without `alg` too.

use crate::{common, jwks_server};

use aws_lc_rs::rsa;
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use common::{
    AUD, ISS, NOW, Signer, TestKey, claims, ed25519, es256, hs, rsa_key, rsa_pair, segments,
};
use jwks_server::{JwksServer, clock_at};
use keygate_verify::{
    Algorithm, AlgorithmSet, Error, ImportOptions, JwkSet, RemoteOptions, RemoteVerifier,
    Validation, Verifier, base64url_encode as b64,
};
use serde_json::{Value, json};
use std::sync::OnceLock;

/// A second RSA key, so two kids hold different moduli.
fn other_pair() -> &'static rsa::KeyPair {
    static PAIR: OnceLock<rsa::KeyPair> = OnceLock::new();
    PAIR.get_or_init(|| rsa::KeyPair::generate(rsa::KeySize::Rsa2048).unwrap())
}

fn other_rsa(alg: Algorithm, kid: &str) -> TestKey {
    let mut key = rsa_key(alg, kid);
    let Signer::Rsa(_, encoding) = key.signer else {
        unreachable!()
    };
    let public = other_pair().public_key();
    key.jwk["n"] = json!(b64(public.modulus().big_endian_without_leading_zero()));
    key.jwk["e"] = json!(b64(public.exponent().big_endian_without_leading_zero()));
    key.signer = Signer::Rsa(other_pair(), encoding);
    key
}

/// Standard base64, as `x5c` carries DER (here the SPKI: nothing reads it).
fn x5c(key: &TestKey) -> Value {
    json!([base64::engine::general_purpose::STANDARD.encode(key.spki_der())])
}

/// Microsoft Entra's shape: no `alg`; `x5t`, `x5c`, `issuer`.
fn entra(key: &TestKey) -> Value {
    json!({
        "kty": "RSA", "use": "sig", "kid": key.kid, "x5t": key.kid,
        "n": key.jwk["n"], "e": key.jwk["e"], "x5c": x5c(key),
        "issuer": "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
    })
}

/// Auth0's shape: `alg` first, `x5t`, `x5c`.
fn auth0(key: &TestKey) -> Value {
    json!({
        "alg": "RS256", "kty": "RSA", "use": "sig", "n": key.jwk["n"], "e": key.jwk["e"],
        "kid": key.kid, "x5t": "NjVBRjY5MDlCMUIwNzU4RTA2QzZFMDQ4QzQ2MDAyQjVDNjk1RTM2Qg",
        "x5c": x5c(key),
    })
}

/// Google's and Okta's shape: `alg`, `use`, `kid`, `n`, `e`.
fn google(key: &TestKey) -> Value {
    json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": key.kid,
           "n": key.jwk["n"], "e": key.jwk["e"]})
}

fn set(keys: &[Value], options: &ImportOptions) -> JwkSet {
    let doc = json!({ "keys": keys }).to_string();
    JwkSet::from_json(doc.as_bytes(), options).unwrap()
}

fn verifier(keys: &[Value], options: &ImportOptions) -> Verifier {
    let set = set(keys, options);
    assert!(set.skipped().is_empty(), "{:?}", set.skipped());
    Verifier::new(set, Validation::new(ISS, AUD)).unwrap()
}

fn token(key: &TestKey, alg: Algorithm) -> String {
    key.sign(
        &json!({"alg": alg.name(), "kid": key.kid, "typ": "at+jwt"}),
        &claims(),
    )
}

#[test]
fn an_rsa_key_without_alg_verifies_rs256_by_default() {
    let rs = rsa_key(Algorithm::RS256, "entra-1");
    let other = other_rsa(Algorithm::RS256, "entra-2");
    let v = verifier(&[entra(&rs), entra(&other)], &ImportOptions::remote());
    for key in [&rs, &other] {
        let claims = v.verify(&token(key, Algorithm::RS256), NOW).unwrap();
        assert_eq!(claims.sub.as_deref(), Some("user-1"));
    }
    // Fits RSA but not allowed: PS* and the other RS* hashes.
    for alg in [Algorithm::PS256, Algorithm::RS384, Algorithm::RS512] {
        let signed = rsa_key(alg, "entra-1");
        assert_eq!(
            v.verify(&token(&signed, alg), NOW),
            Err(Error::KeyAlgorithmMismatch),
            "{alg}"
        );
    }
    // One kid, the other key's signature.
    let swapped = other_rsa(Algorithm::RS256, "entra-1");
    assert_eq!(
        v.verify(&token(&swapped, Algorithm::RS256), NOW),
        Err(Error::BadSignature)
    );
}

#[test]
fn pss_verifies_on_a_key_without_alg_only_when_the_caller_allows_it() {
    let rs = rsa_key(Algorithm::RS256, "k");
    let allowed = AlgorithmSet::of(&[Algorithm::RS256, Algorithm::PS256]);
    let options = ImportOptions::remote().with_algorithms_without_alg(allowed);
    let v = verifier(&[entra(&rs)], &options);
    let set = set(&[entra(&rs)], &options);
    assert_eq!(set.keys()[0].algorithms(), allowed);
    let ps = rsa_key(Algorithm::PS256, "k");
    assert!(v.verify(&token(&ps, Algorithm::PS256), NOW).is_ok());
    assert!(v.verify(&token(&rs, Algorithm::RS256), NOW).is_ok());
    let ps384 = rsa_key(Algorithm::PS384, "k");
    assert_eq!(
        v.verify(&token(&ps384, Algorithm::PS384), NOW),
        Err(Error::KeyAlgorithmMismatch)
    );
    // A PSS signature presented as RS256 is still a bad signature.
    let forged = format!(
        "{}.{}",
        token(&rs, Algorithm::RS256).rsplit_once('.').unwrap().0,
        segments(&token(&ps, Algorithm::PS256)).2
    );
    assert_eq!(v.verify(&forged, NOW), Err(Error::BadSignature));
    // Only PSS allowed: RS256 no longer fits the key.
    let options =
        ImportOptions::remote().with_algorithms_without_alg(AlgorithmSet::of(&[Algorithm::PS256]));
    let v = verifier(&[entra(&rs)], &options);
    assert_eq!(
        v.verify(&token(&rs, Algorithm::RS256), NOW),
        Err(Error::KeyAlgorithmMismatch)
    );
}

#[test]
fn a_key_with_alg_stays_bound_to_it() {
    let rs = rsa_key(Algorithm::RS256, "g1");
    let other = other_rsa(Algorithm::RS256, "a1");
    let every_rsa = AlgorithmSet::of(&[
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::PS256,
        Algorithm::PS512,
    ]);
    let options = ImportOptions::remote().with_algorithms_without_alg(every_rsa);
    let v = verifier(&[google(&rs), auth0(&other)], &options);
    assert!(v.verify(&token(&rs, Algorithm::RS256), NOW).is_ok());
    assert!(v.verify(&token(&other, Algorithm::RS256), NOW).is_ok());
    let ps = rsa_key(Algorithm::PS256, "g1");
    assert_eq!(
        v.verify(&token(&ps, Algorithm::PS256), NOW),
        Err(Error::KeyAlgorithmMismatch)
    );
    // Okta publishes the same members as Google; a PS256 key names PS256.
    let mut okta = google(&rs);
    okta["alg"] = json!("PS256");
    let v = verifier(&[okta], &ImportOptions::remote());
    assert!(v.verify(&token(&ps, Algorithm::PS256), NOW).is_ok());
    assert_eq!(
        v.verify(&token(&rs, Algorithm::RS256), NOW),
        Err(Error::KeyAlgorithmMismatch)
    );
}

#[test]
fn ec_and_ed25519_keys_without_alg_verify_their_curves_algorithm() {
    let ec = es256("ec");
    let ed = ed25519("ed");
    let strip = |key: &TestKey| {
        let mut jwk = key.jwk.clone();
        jwk.as_object_mut().unwrap().remove("alg");
        jwk
    };
    let keys = [strip(&ec), strip(&ed)];
    let v = verifier(&keys, &ImportOptions::remote());
    assert!(v.verify(&ec.token(), NOW).is_ok());
    assert!(v.verify(&ed.token(), NOW).is_ok());
    // The caller allows RSA only: these keys have nothing left to verify.
    let rsa_only =
        ImportOptions::remote().with_algorithms_without_alg(AlgorithmSet::of(&[Algorithm::RS256]));
    let set = set(&keys, &rsa_only);
    assert!(set.keys().is_empty());
    assert_eq!(set.skipped().len(), 2);
}

#[test]
fn hostile_tokens_stay_refused_on_keys_without_alg() {
    let rs = rsa_key(Algorithm::RS256, "e1");
    let every = Algorithm::ALL.into_iter().collect::<AlgorithmSet>();
    for options in [
        ImportOptions::remote(),
        ImportOptions::remote().with_algorithms_without_alg(every),
    ] {
        let v = verifier(&[entra(&rs)], &options);
        // Algorithm confusion: HS256 keyed with our public key, in its forms.
        let n = rs.jwk["n"].as_str().unwrap().as_bytes().to_vec();
        for secret in [
            rs.spki_der(),
            rs.raw_public(),
            n,
            entra(&rs).to_string().into_bytes(),
        ] {
            let mac = hs(Algorithm::HS256, "e1", &secret);
            let forged = mac.sign(
                &json!({"alg": "HS256", "kid": "e1", "typ": "at+jwt"}),
                &claims(),
            );
            assert_eq!(v.verify(&forged, NOW), Err(Error::KeyAlgorithmMismatch));
            let no_kid = mac.sign(&json!({"alg": "HS256", "typ": "at+jwt"}), &claims());
            assert_eq!(v.verify(&no_kid, NOW), Err(Error::NoMatchingKey));
        }
        // `none`, and an embedded key of the attacker's under our kid.
        let (_, payload, _) = segments(&rs.token());
        let header = b64(br#"{"alg":"none","kid":"e1","typ":"at+jwt"}"#);
        assert!(v.verify(&format!("{header}.{payload}."), NOW).is_err());
        let attacker = other_rsa(Algorithm::RS256, "e1");
        let embedded = attacker.sign(
            &json!({"alg": "RS256", "kid": "e1", "typ": "at+jwt", "jwk": entra(&attacker)}),
            &claims(),
        );
        assert_eq!(v.verify(&embedded, NOW), Err(Error::BadSignature));
    }
}

#[test]
fn unusable_keys_without_alg_are_skipped_and_bad_sets_refused() {
    let rs = rsa_key(Algorithm::RS256, "e1");
    let mut enc = entra(&rs);
    enc["use"] = json!("enc");
    enc["kid"] = json!("enc-1");
    let mut small = entra(&rs);
    small["kid"] = json!("small");
    small["n"] = json!(b64(&[0xc5; 128]));
    let mut oct = json!({"kty": "oct", "kid": "o", "k": b64(&[7; 32])});
    let doc = json!({"keys": [entra(&rs), enc, small]}).to_string();
    let set = JwkSet::from_json(doc.as_bytes(), &ImportOptions::remote()).unwrap();
    assert_eq!(set.keys().len(), 1);
    assert_eq!(set.skipped().len(), 2);
    // A secret without alg gets no algorithm, even from a local file...
    let local = JwkSet::from_json(
        json!({"keys": [oct.clone()]}).to_string().as_bytes(),
        &ImportOptions::local_file(),
    )
    .unwrap();
    assert!(local.keys().is_empty());
    // ...and from a URL the whole set is refused.
    oct["kid"] = json!("o2");
    let doc = json!({"keys": [entra(&rs), oct]}).to_string();
    assert_eq!(
        JwkSet::from_json(doc.as_bytes(), &ImportOptions::remote()).err(),
        Some(Error::SymmetricKeyRefused)
    );
    // Duplicate kids: refused whole, alg or not.
    let doc = json!({"keys": [entra(&rs), google(&rs)]}).to_string();
    assert_eq!(
        JwkSet::from_json(doc.as_bytes(), &ImportOptions::remote()).err(),
        Some(Error::DuplicateKid)
    );
    // Every key in rsa_pair() is the same modulus: sanity of the fixture.
    assert_eq!(rsa_pair().public_modulus_len(), 256);
}

#[tokio::test]
async fn the_jwks_client_takes_entra_shaped_sets_and_the_callers_algorithms() {
    let rs = rsa_key(Algorithm::RS256, "e1");
    let ps = rsa_key(Algorithm::PS256, "e1");
    let server = JwksServer::start(&[]).await;
    server.set_body(json!({"keys": [entra(&rs)]}).to_string().into_bytes());
    let remote = |options: RemoteOptions| {
        RemoteVerifier::with_options(
            Validation::new(ISS, AUD),
            &server.url(),
            options,
            clock_at(NOW),
        )
        .unwrap()
    };
    let default = remote(RemoteOptions::default());
    assert!(default.verify(&token(&rs, Algorithm::RS256)).await.is_ok());
    assert!(default.verify(&token(&ps, Algorithm::PS256)).await.is_err());
    let pss = remote(RemoteOptions {
        algorithms_without_alg: AlgorithmSet::of(&[Algorithm::PS256]),
        ..RemoteOptions::default()
    });
    assert!(pss.verify(&token(&ps, Algorithm::PS256)).await.is_ok());
    assert!(pss.verify(&token(&rs, Algorithm::RS256)).await.is_err());
}
