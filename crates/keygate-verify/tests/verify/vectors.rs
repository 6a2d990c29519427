//! Wycheproof's JOSE vectors and the RFC 7515 / RFC 8037 examples, driven
//! through `Verifier::verify_signature` (their payloads are mostly not claim
//! sets). Every case is asserted; the data defects listed in
//! `vectors/README.md` are asserted as expected deviations.

use keygate_verify::{Error, ImportOptions, JwkSet, Validation, Verifier};
use serde_json::Value;
use std::collections::BTreeMap;

/// tcId -> (what we do, why). Anything not listed must match the file.
fn expected_deviations() -> BTreeMap<u64, (bool, &'static str)> {
    let identical = "byte-identical to tcId 357 (valid) but marked invalid";
    let lenient = "`?` inside a segment is accepted only by a lenient base64url decoder";
    let bound = "JWK bound to PS256 and a PS384 token: the algorithm is bound to the key";
    let es521 = "JWK alg `ES521` is not a registered name: the key is refused at import";
    BTreeMap::from([
        (367, (true, identical)),
        (370, (true, identical)),
        (372, (false, lenient)),
        (373, (false, lenient)),
        (346, (false, bound)),
        (350, (false, bound)),
        (347, (false, es521)),
        (351, (false, es521)),
    ])
}

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Keys from `public` are imported as a remote JWKS would be; keys found only
/// under `private` (the `oct` groups) as a local file would be.
fn key_source(group: &Value) -> (Value, ImportOptions) {
    match group.get("public") {
        Some(public) => (public.clone(), ImportOptions::remote()),
        None => (group["private"].clone(), ImportOptions::local_file()),
    }
}

fn verifier_for(keys: Value, options: &ImportOptions) -> Result<Verifier, Error> {
    let entries = match keys {
        Value::Object(ref map) if map.contains_key("keys") => keys["keys"].clone(),
        single => Value::Array(vec![single]),
    };
    let document = serde_json::json!({ "keys": entries });
    let set = JwkSet::from_json(&serde_json::to_vec(&document).unwrap(), options)?;
    Verifier::new(set, Validation::new("unused", "unused"))
}

fn token_text(jws: &Value) -> String {
    match jws {
        Value::String(text) => text.clone(),
        // JSON serialization: handed over as the text a client would send.
        other => serde_json::to_string(other).unwrap(),
    }
}

struct Tally {
    passed: usize,
    deviations: usize,
}

fn run_file(name: &str, expected_total: usize) -> Tally {
    let file = load(name);
    let deviations = expected_deviations();
    let mut tally = Tally {
        passed: 0,
        deviations: 0,
    };
    let mut failures = Vec::new();
    for group in file["testGroups"].as_array().unwrap() {
        let (keys, options) = key_source(group);
        let verifier = verifier_for(keys, &options);
        for test in group["tests"].as_array().unwrap() {
            let tc_id = test["tcId"].as_u64().unwrap();
            let expected_valid = test["result"] == "valid";
            let outcome = match &verifier {
                Ok(verifier) => verifier.verify_signature(&token_text(&test["jws"])),
                Err(import_error) => Err(import_error.clone()),
            };
            match deviations
                .get(&tc_id)
                .filter(|_| name.contains("signature"))
            {
                Some((we_accept, why)) => {
                    assert_ne!(
                        expected_valid, *we_accept,
                        "tcId {tc_id}: deviation no longer needed?"
                    );
                    if outcome.is_ok() != *we_accept {
                        failures.push(format!("tcId {tc_id} (deviation: {why}): got {outcome:?}"));
                    }
                    tally.deviations += 1;
                }
                None if outcome.is_ok() == expected_valid => tally.passed += 1,
                None => failures.push(format!(
                    "tcId {tc_id} {}: expected {}, got {outcome:?}",
                    test["comment"], test["result"]
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{name}:\n{}", failures.join("\n"));
    assert_eq!(tally.passed + tally.deviations, expected_total);
    eprintln!(
        "{name}: {} passed, {} expected deviations",
        tally.passed, tally.deviations
    );
    tally
}

#[test]
fn wycheproof_json_web_signature_vectors() {
    let tally = run_file("json_web_signature_test.json", 401);
    assert_eq!(tally.deviations, 8);
}

#[test]
fn wycheproof_json_web_key_vectors() {
    let tally = run_file("json_web_key_test.json", 26);
    assert_eq!(tally.deviations, 0);
}

#[test]
fn private_key_sets_are_refused_from_a_url() {
    // Every Wycheproof group that ships private members must be refused whole
    // when imported with the remote (default) options.
    let mut checked = 0;
    for name in ["json_web_signature_test.json", "json_web_key_test.json"] {
        for group in load(name)["testGroups"].as_array().unwrap() {
            let Some(private) = group.get("private") else {
                continue;
            };
            let text = private.to_string();
            let has_private = ["\"d\"", "\"p\"", "\"q\""].iter().any(|m| text.contains(m));
            let symmetric = text.contains("\"oct\"");
            if !(has_private || symmetric) {
                continue;
            }
            let result = verifier_for(private.clone(), &ImportOptions::remote());
            let error = result
                .err()
                .unwrap_or_else(|| panic!("{name}: {}", group["comment"]));
            assert!(
                matches!(
                    error,
                    Error::PrivateKeyMaterial | Error::SymmetricKeyRefused | Error::DuplicateKid
                ),
                "{error:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "{checked}");
}

fn rfc(name: &str) -> Value {
    load("rfc_vectors.json")[name].clone()
}

fn rfc_verifier(case: &Value, options: &ImportOptions, validation: Validation) -> Verifier {
    let key = case.get("jwk_public").or(case.get("jwk")).unwrap().clone();
    let document = serde_json::json!({ "keys": [key] });
    let set = JwkSet::from_json(document.to_string().as_bytes(), options).unwrap();
    Verifier::new(set, validation).unwrap()
}

/// The RFC 7515 examples carry `iss: joe` and `exp: 1300819380` but no `aud`.
const RFC_EXP: u64 = 1_300_819_380;

fn rfc_validation() -> Validation {
    Validation {
        required_typ: None,
        ..Validation::new("joe", "unused")
    }
}

#[test]
fn rfc7515_a1_to_a4_verify_signature_only() {
    let claims =
        b"{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";
    for (name, options, payload) in [
        ("RFC7515_A1_HS256", ImportOptions::local_file(), &claims[..]),
        // A.2's key has no alg either: RS256 is what an RSA key gets by default.
        ("RFC7515_A2_RS256", ImportOptions::remote(), &claims[..]),
        ("RFC7515_A3_ES256", ImportOptions::remote(), &claims[..]),
        ("RFC7515_A4_ES512", ImportOptions::remote(), &b"Payload"[..]),
    ] {
        let case = rfc(name);
        // A.1's key has no alg: name it, as a caller configuring an oct key must.
        let options = if name.ends_with("HS256") {
            options.with_algorithms_without_alg(keygate_verify::AlgorithmSet::of(&[
                keygate_verify::Algorithm::HS256,
            ]))
        } else {
            options
        };
        let verifier = rfc_verifier(&case, &options, rfc_validation());
        let token = case["token"].as_str().unwrap();
        let (_, got) = verifier
            .verify_signature(token)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(got, payload, "{name}");
        // Tampering with one signature character must break it.
        let mut tampered = token.to_owned();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'Q' } else { 'A' });
        assert!(verifier.verify_signature(&tampered).is_err(), "{name}");
    }
}

#[test]
fn rfc7515_examples_with_a_fixed_clock() {
    let case = rfc("RFC7515_A3_ES256");
    let verifier = rfc_verifier(&case, &ImportOptions::remote(), rfc_validation());
    let token = case["token"].as_str().unwrap();
    // keygate requires `aud`; the RFC examples have none.
    assert_eq!(
        verifier.verify(token, RFC_EXP - 10),
        Err(Error::MissingClaim { name: "aud" })
    );
    // A.1 also carries `typ: JWT`, which is not an access token.
    let case = rfc("RFC7515_A1_HS256");
    let options = ImportOptions::local_file().with_algorithms_without_alg(
        keygate_verify::AlgorithmSet::of(&[keygate_verify::Algorithm::HS256]),
    );
    let verifier = rfc_verifier(&case, &options, Validation::new("joe", "unused"));
    assert_eq!(
        verifier.verify(case["token"].as_str().unwrap(), RFC_EXP - 10),
        Err(Error::InvalidTokenType)
    );
}

#[test]
fn rfc7515_a5_alg_none_is_refused() {
    let token = rfc("RFC7515_A5_none")["token"].as_str().unwrap().to_owned();
    let case = rfc("RFC7515_A3_ES256");
    let verifier = rfc_verifier(&case, &ImportOptions::remote(), rfc_validation());
    assert_eq!(
        verifier.verify_signature(&token),
        Err(Error::UnsupportedAlgorithm)
    );
    assert_eq!(
        verifier.verify(&token, RFC_EXP - 10),
        Err(Error::UnsupportedAlgorithm)
    );
}

#[test]
fn rfc8037_a4_eddsa() {
    let case = rfc("RFC8037_A4_EdDSA");
    let verifier = rfc_verifier(&case, &ImportOptions::remote(), rfc_validation());
    let (header, payload) = verifier
        .verify_signature(case["token"].as_str().unwrap())
        .unwrap();
    assert_eq!(header.alg, keygate_verify::Algorithm::EdDSA);
    assert_eq!(payload, b"Example of Ed25519 signing");
}
