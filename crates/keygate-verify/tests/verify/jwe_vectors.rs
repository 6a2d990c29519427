//! The Wycheproof JWE vectors (all 139) and the RFC 7516 Appendix A
//! examples, through `Decrypter::decrypt` with every implemented
//! algorithm allowed. The RFC 7520 §5 examples are part of the Wycheproof
//! file (group `rfc_7520`: Figures 81, 92, 117, 128, 136, 148, 159, 170).

use std::collections::BTreeMap;

use keygate_verify::jwe::{Decrypter, DecryptionKey, JwePolicy};
use keygate_verify::{Error, Jwk};
use serde_json::Value;

/// Valid cases keygate refuses by design, each with the reason. The test
/// asserts each is marked valid in the file and is refused.
const UNSUPPORTED: &[(u64, &str)] = &[
    (60, "ECDH-ES+A192KW: aws-lc-rs has no AES-192 key wrap"),
    (61, "ECDH-ES+A192KW: aws-lc-rs has no AES-192 key wrap"),
    (70, "A192KW: aws-lc-rs has no AES-192 key wrap"),
    (100, "RSA1_5: a padding oracle by design (RFC 8725 §3.2)"),
    (101, "RSA1_5: a padding oracle by design"),
    (102, "RSA1_5: a padding oracle by design"),
    (103, "RSA1_5: a padding oracle by design"),
    (104, "RSA1_5: a padding oracle by design"),
    (105, "RSA1_5: a padding oracle by design"),
    (112, "RSA1_5: a padding oracle by design"),
    (
        128,
        "RSA1_5 (RFC 7520 Figure 81): a padding oracle by design",
    ),
    (
        135,
        "zip: DEF (RFC 7520 Figure 170): compression is never supported",
    ),
];

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Imports the group's key and decrypts; a key refused at import refuses
/// every token of its group.
fn decrypt(private: &Value, jwe: &str) -> Result<Vec<u8>, Error> {
    let jwk = Jwk::from_json(&serde_json::to_vec(private).unwrap())?;
    let key = DecryptionKey::from_jwk(&jwk)?;
    let decrypter = Decrypter::new(vec![key], JwePolicy::all())?;
    decrypter.decrypt(jwe).map(|d| d.plaintext)
}

#[test]
fn wycheproof_json_web_encryption_vectors() {
    let file = load("json_web_encryption_test.json");
    let unsupported: BTreeMap<u64, &str> = UNSUPPORTED.iter().copied().collect();
    let (mut total, mut decrypted, mut refused_codes) = (0, 0, BTreeMap::<&str, usize>::new());
    let mut unsupported_seen = Vec::new();
    for group in file["testGroups"].as_array().unwrap() {
        for case in group["tests"].as_array().unwrap() {
            total += 1;
            let id = case["tcId"].as_u64().unwrap();
            let jwe = case["jwe"].as_str().unwrap();
            let result = decrypt(&group["private"], jwe);
            let valid = case["result"] == "valid";
            if let Some(reason) = unsupported.get(&id) {
                assert!(valid, "tcId {id} is listed as unsupported but is not valid");
                assert!(result.is_err(), "tcId {id} ({reason}) must be refused");
                unsupported_seen.push(id);
            } else if valid {
                let pt = hex(case["pt"].as_str().unwrap());
                assert_eq!(
                    result,
                    Ok(pt),
                    "tcId {id} ({}) must decrypt",
                    case["comment"]
                );
                decrypted += 1;
            } else {
                let error =
                    result.expect_err(&format!("tcId {id} ({}) must be refused", case["comment"]));
                *refused_codes.entry(error.code()).or_default() += 1;
            }
        }
    }
    assert_eq!(total, 139);
    assert_eq!(unsupported_seen.len(), UNSUPPORTED.len());
    eprintln!(
        "wycheproof JWE: {decrypted} decrypted, {} unsupported refused, invalid refused by code: {refused_codes:?}",
        unsupported_seen.len()
    );
    assert_eq!(
        decrypted + unsupported_seen.len() + refused_codes.values().sum::<usize>(),
        139
    );
}

#[test]
fn rfc7516_appendix_a() {
    let file = load("rfc7516_jwe.json");
    for case in file["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let result = decrypt(&case["jwk"], case["jwe"].as_str().unwrap());
        if case["expect"] == "valid" {
            assert_eq!(
                result.as_deref(),
                Ok(case["pt"].as_str().unwrap().as_bytes()),
                "{name}"
            );
        } else {
            assert_eq!(result, Err(Error::UnsupportedAlgorithm), "{name}");
        }
    }
}
