//! Compact JWS parse and verify (keygate-verify).
//!
//! Two shapes of input, chosen by the first byte:
//! - a raw token: whatever verifies must verify again the same way, as a
//!   JWS too, and its segments must be the canonical encoding of what was
//!   verified (strict base64url: no second spelling of a signed token);
//! - a header and a payload (split at the first NUL) that are signed here
//!   with a trusted key (HS256 or the RFC 8037 Ed25519 key): the fuzzer then
//!   reaches the header and claim rules behind a valid signature. A token
//!   signed with the right key, under a header naming that key's algorithm,
//!   is never refused for its signature, and one signed with another key
//!   never verifies.

#![no_main]

use std::sync::OnceLock;

use aws_lc_rs::{hmac, signature::Ed25519KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use keygate_verify::{Algorithm, Error, JwkSet, Validation, Verifier, VerifyingKey};

/// A fixed "now" inside every seed's validity (2030-01-01).
const NOW: u64 = 1_893_456_000;
const HMAC_SECRET: &[u8] = b"keygate fuzzing secret, 32 bytes or more";
const HMAC_KID: &str = "hs";
const ED25519_SEED: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const ED25519_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

struct Keys {
    hmac: Verifier,
    asymmetric: Verifier,
    ed25519: Ed25519KeyPair,
}

fn validation() -> Validation {
    let mut v = Validation::new("https://keygate.test", "api");
    v.required_typ = None;
    v
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let hs =
            VerifyingKey::from_hmac_secret(Algorithm::HS256, HMAC_SECRET, Some(HMAC_KID.into()))
                .expect("hmac key");
        let hmac = Verifier::new(JwkSet::from_keys(vec![hs]).expect("set"), validation())
            .expect("hmac verifier");
        let jwks = format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{ED25519_X}","kid":"ed"}},
            {{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
              "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}}]}}"#
        );
        let set = JwkSet::from_json(jwks.as_bytes(), &Default::default()).expect("jwks");
        assert_eq!(set.keys().len(), 2);
        let asymmetric = Verifier::new(set, validation()).expect("verifier");
        let seed = B64.decode(ED25519_SEED).expect("seed");
        let public = B64.decode(ED25519_X).expect("x");
        let ed25519 = Ed25519KeyPair::from_seed_and_public_key(&seed, &public).expect("ed25519");
        Keys {
            hmac,
            asymmetric,
            ed25519,
        }
    })
}

fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        if let Some(token) = keygate_fuzz::text(rest) {
            raw_token(&keys().hmac, &[Algorithm::HS256], token);
            raw_token(
                &keys().asymmetric,
                &[Algorithm::EdDSA, Algorithm::ES256],
                token,
            );
        }
    } else {
        let (header, payload) = keygate_fuzz::split2(rest, 0);
        signed_here(mode & 2 == 0, header, payload);
    }
}

fn raw_token(verifier: &Verifier, algs: &[Algorithm], token: &str) {
    let jws = verifier.verify_signature(token);
    let jwt = verifier.verify(token, NOW);
    if jwt.is_ok() {
        assert!(jws.is_ok(), "a token verifies as a JWT but not as a JWS");
    }
    assert_eq!(
        verifier.verify(token, NOW),
        jwt,
        "verify is not deterministic"
    );
    let Ok((header, payload)) = jws else { return };
    let mut segments = token.split('.');
    let (Some(h), Some(p), Some(s)) = (segments.next(), segments.next(), segments.next()) else {
        panic!("a verified token has fewer than three segments");
    };
    assert!(segments.next().is_none());
    assert_eq!(B64.encode(&payload), p, "the payload has a second spelling");
    let header_bytes = B64.decode(h).expect("a verified header decodes");
    assert_eq!(
        B64.encode(&header_bytes),
        h,
        "the header has a second spelling"
    );
    let signature = B64.decode(s).expect("a verified signature decodes");
    assert_eq!(
        B64.encode(&signature),
        s,
        "the signature has a second spelling"
    );
    assert!(
        algs.contains(&header.alg),
        "verified under an algorithm no key has"
    );
}

fn signed_here(use_hmac: bool, header: &[u8], payload: &[u8]) {
    let keys = keys();
    let (verifier, alg) = if use_hmac {
        (&keys.hmac, Algorithm::HS256)
    } else {
        (&keys.asymmetric, Algorithm::EdDSA)
    };
    let signing_input = format!("{}.{}", B64.encode(header), B64.encode(payload));
    let sign = |right_key: bool| -> Vec<u8> {
        match (use_hmac, right_key) {
            (true, true) => hmac::sign(
                &hmac::Key::new(hmac::HMAC_SHA256, HMAC_SECRET),
                signing_input.as_bytes(),
            )
            .as_ref()
            .to_vec(),
            (true, false) => hmac::sign(
                &hmac::Key::new(hmac::HMAC_SHA256, b"another secret of 32 bytes or more!"),
                signing_input.as_bytes(),
            )
            .as_ref()
            .to_vec(),
            (false, true) => keys
                .ed25519
                .sign(signing_input.as_bytes())
                .as_ref()
                .to_vec(),
            (false, false) => {
                let mut s = keys
                    .ed25519
                    .sign(signing_input.as_bytes())
                    .as_ref()
                    .to_vec();
                s[0] ^= 1;
                s
            }
        }
    };
    let token = format!("{signing_input}.{}", B64.encode(sign(true)));
    raw_token(verifier, &[alg], &token);
    match verifier.verify_signature(&token) {
        Ok((parsed, verified_payload)) => {
            assert_eq!(verified_payload, payload);
            assert_eq!(parsed.alg, alg);
            if let Ok(claims) = verifier.verify(&token, NOW) {
                assert_eq!(claims.iss, "https://keygate.test");
                assert!(claims.aud.iter().any(|a| a == "api"));
            }
        }
        // A header naming another algorithm may choose another key (a key
        // set's EC key takes ES256), whose check then rightly fails: only a
        // header naming the algorithm it was signed with must pass.
        Err(e) if names_alg(header, alg) => assert_ne!(
            e,
            Error::BadSignature,
            "a token signed with the trusted key"
        ),
        Err(_) => {}
    }
    let forged = format!("{signing_input}.{}", B64.encode(sign(false)));
    assert!(
        verifier.verify_signature(&forged).is_err(),
        "a token signed with another key verifies"
    );
}

/// Whether `header` names `alg` as its algorithm (one `alg` member).
fn names_alg(header: &[u8], alg: Algorithm) -> bool {
    serde_json::from_slice::<serde_json::Value>(header)
        .ok()
        .and_then(|h| {
            h.get("alg")
                .and_then(|a| a.as_str())
                .map(|a| a == alg.name())
        })
        .unwrap_or(false)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
