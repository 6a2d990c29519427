//! JWK and JWK Set import (keygate-verify).
//!
//! The input is a JWKS document, and each of its entries a JWK. Every entry
//! is either imported or reported skipped; a key imported from a URL is
//! never symmetric; a key's public form re-imports to the same binding
//! (algorithm and `kid`); a set never holds two keys with one `kid`.

#![no_main]

use std::collections::HashSet;

use keygate_verify::{Algorithm, AlgorithmSet, Error, ImportOptions, Jwk, JwkSet};

const SYMMETRIC: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

fn check(data: &[u8]) {
    for options in [
        ImportOptions::remote(),
        ImportOptions::local_file(),
        ImportOptions::remote()
            .with_algorithms_without_alg(AlgorithmSet::DEFAULT_WITHOUT_ALG.with(Algorithm::PS256)),
    ] {
        set(data, &options);
    }
    single(data);
}

fn set(data: &[u8], options: &ImportOptions) {
    let Ok(set) = JwkSet::from_json(data, options) else {
        return;
    };
    let entries = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|doc| doc.get("keys").and_then(|k| k.as_array()).map(Vec::len))
        .expect("an accepted set is a JSON object with a keys array");
    assert_eq!(set.keys().len() + set.skipped().len(), entries);
    let mut kids = HashSet::new();
    for key in set.keys() {
        if !options.allow_symmetric {
            assert!(
                !SYMMETRIC.contains(&key.alg()),
                "a symmetric key from a URL"
            );
        }
        if let Some(kid) = key.kid() {
            assert!(kids.insert(kid), "two keys with one kid");
        }
    }
}

fn single(data: &[u8]) {
    let Ok(jwk) = Jwk::from_json(data) else {
        return;
    };
    let options = ImportOptions::local_file();
    let Ok(key) = jwk.import(&options) else {
        return;
    };
    let public = jwk.to_public();
    assert!(!public.has_private_members() || public.kty == "oct");
    let text = serde_json::to_vec(&public).expect("a JWK serializes");
    let again = Jwk::from_json(&text).expect("a serialized JWK re-parses");
    assert_eq!(again, public);
    let rekey = again
        .import(&options)
        .expect("the public form of an imported key imports");
    assert_eq!(rekey.alg(), key.alg());
    assert_eq!(rekey.kid(), key.kid());
    if jwk.has_private_members() && jwk.kty != "oct" {
        assert_eq!(
            jwk.import(&ImportOptions::remote()).err(),
            Some(Error::PrivateKeyMaterial)
        );
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
