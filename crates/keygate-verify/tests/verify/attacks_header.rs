//! jwt-attacks.md rows about the token's shape and header: 1 (`alg: none`),
//! 5 (`kid` injection), 6 (embedded keys), 7 (`crit`), 8 (`b64`), 12
//! (duplicate members), 13 (oversized input), 15 (token confusion) and 16
//! (JSON serialization).

use crate::common;

use common::*;
use keygate_verify::{Error, Validation, base64url_encode as b64};
use serde_json::json;

#[test]
fn row01_alg_none_in_any_spelling_is_refused_before_key_lookup() {
    let key = es256("k1");
    let verifier = verifier(&[&key]);
    let payload = claims().to_string();
    for alg in ["none", "NONE", "None", "nOnE", "", "ES256 ", "es256", "HS1"] {
        // An unknown kid proves the refusal comes before any key lookup.
        for kid in ["k1", "unknown"] {
            let header = json!({"alg": alg, "kid": kid, "typ": "at+jwt"}).to_string();
            let unsigned = format!("{}.{}.", b64(header.as_bytes()), b64(payload.as_bytes()));
            assert_eq!(
                verifier.verify(&unsigned, NOW),
                Err(Error::UnsupportedAlgorithm),
                "{alg}"
            );
            // ...and a signature does not help.
            let signed = key.sign_raw(&header, payload.as_bytes());
            assert_eq!(
                verifier.verify(&signed, NOW),
                Err(Error::UnsupportedAlgorithm),
                "{alg}"
            );
        }
    }
    for header in [
        json!({"kid": "k1"}),
        json!({"alg": null, "kid": "k1"}),
        json!({"alg": 256, "kid": "k1"}),
        json!({"alg": ["ES256"], "kid": "k1"}),
        json!({"alg": {"name": "ES256"}, "kid": "k1"}),
        json!({"alg": true, "kid": "unknown"}),
    ] {
        let token = key.sign(&header, &claims());
        assert_eq!(
            verifier.verify(&token, NOW),
            Err(Error::InvalidHeader { name: "alg" }),
            "{header}"
        );
    }
}

#[test]
fn row05_kid_only_indexes_the_trusted_set() {
    let key = es256("k1");
    let verifier = verifier(&[&key]);
    for kid in [
        "../../dev/null",
        "/etc/passwd",
        "' OR '1'='1' --",
        "k1' UNION SELECT 'secret",
        "k1\u{0}",
        "K1",
        "k1 ",
        "${jndi:ldap://x}",
    ] {
        let header = json!({"alg": "ES256", "kid": kid, "typ": "at+jwt"});
        assert_eq!(
            verifier.verify(&key.sign(&header, &claims()), NOW),
            Err(Error::UnknownKid),
            "{kid:?}"
        );
    }
    // A fresh random kid on each request: always UnknownKid, distinct from a bad
    // signature, so a JWKS client can refetch once (rate-limited) and stop.
    for i in 0..50 {
        let header =
            json!({"alg": "ES256", "kid": format!("rand-{i}-{}", i * 7919), "typ": "at+jwt"});
        assert_eq!(
            verifier.verify(&key.sign(&header, &claims()), NOW),
            Err(Error::UnknownKid)
        );
    }
    // Non-string, empty and over-long kids are malformed, not looked up.
    for kid in [
        json!(5),
        json!(null),
        json!(["k1"]),
        json!({"k": "k1"}),
        json!(""),
        json!("k".repeat(257)),
    ] {
        let header = json!({"alg": "ES256", "kid": kid, "typ": "at+jwt"});
        assert_eq!(
            verifier.verify(&key.sign(&header, &claims()), NOW),
            Err(Error::InvalidHeader { name: "kid" }),
            "{kid}"
        );
    }
    // A 64 KiB kid is over the length cap before anything is decoded.
    let header = json!({"alg": "ES256", "kid": "k".repeat(64 * 1024)});
    assert_eq!(
        verifier.verify(&key.sign(&header, &claims()), NOW),
        Err(Error::TokenTooLarge)
    );
    assert!(verifier.verify(&key.token(), NOW).is_ok());
}

#[test]
fn row06_embedded_keys_never_select_a_key() {
    let ours = es256("k1");
    let attacker = es256("attacker");
    let verifier = verifier(&[&ours]);
    let attacker_der = b64(&attacker.spki_der());
    for (name, value) in [
        ("jwk", attacker.jwk.clone()),
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("x5c", json!([attacker_der])),
    ] {
        for kid in [Some("k1"), None] {
            let mut header = json!({"alg": "ES256", "typ": "at+jwt"});
            header[name] = value.clone();
            if let Some(kid) = kid {
                header["kid"] = json!(kid);
            }
            let token = attacker.sign(&header, &claims());
            assert_eq!(
                verifier.verify(&token, NOW),
                Err(Error::BadSignature),
                "{name} {kid:?}"
            );
        }
        // With the attacker's own kid the key is simply unknown.
        let mut header = attacker.header();
        header[name] = value;
        assert_eq!(
            verifier.verify(&attacker.sign(&header, &claims()), NOW),
            Err(Error::UnknownKid)
        );
    }
}

#[test]
fn row07_any_crit_is_refused_even_when_validly_signed() {
    let key = es256("k1");
    let verifier = verifier(&[&key]);
    for crit in [
        json!(["x-anything"]),
        json!([]),
        json!(["alg"]),
        json!(["exp", "exp"]),
        json!("x-anything"),
        json!(null),
    ] {
        let mut header = key.header();
        header["crit"] = crit.clone();
        header["x-anything"] = json!(true);
        assert_eq!(
            verifier.verify(&key.sign(&header, &claims()), NOW),
            Err(Error::CriticalHeader),
            "{crit}"
        );
    }
}

#[test]
fn row08_unencoded_payload_b64_false_is_refused() {
    let hmac = hs(keygate_verify::Algorithm::HS256, "h1", &[7; 32]);
    let verifier = verifier(&[&hmac]);
    let rfc7797 = "eyJhbGciOiJIUzI1NiIsImI2NCI6ZmFsc2UsImNyaXQiOlsiYjY0Il19..A5dxf2s96_n5FLueVuW1Z_vh161FwXZC4YLPff6dmDY";
    assert_eq!(
        verifier.verify_signature(rfc7797),
        Err(Error::CriticalHeader)
    );
    assert!(verifier.verify(rfc7797, NOW).is_err());
    // Without `crit`, `b64` alone is still refused, whatever its value.
    for b64_value in [json!(false), json!(true)] {
        let mut header = hmac.header();
        header["b64"] = b64_value;
        assert_eq!(
            verifier.verify(&hmac.sign(&header, &claims()), NOW),
            Err(Error::UnsupportedHeader { name: "b64" })
        );
    }
}

#[test]
fn row12_duplicate_members_are_refused() {
    let key = es256("k1");
    let verifier = verifier(&[&key]);
    let payload = claims().to_string();
    for header in [
        r#"{"alg":"ES256","alg":"none","kid":"k1","typ":"at+jwt"}"#,
        r#"{"alg":"none","alg":"ES256","kid":"k1","typ":"at+jwt"}"#,
        r#"{"alg":"ES256","kid":"k1","kid":"k2","typ":"at+jwt"}"#,
        r#"{"alg":"ES256","\u0061lg":"ES256","kid":"k1","typ":"at+jwt"}"#,
    ] {
        let token = key.sign_raw(header, payload.as_bytes());
        assert_eq!(
            verifier.verify(&token, NOW),
            Err(Error::DuplicateJsonMember),
            "{header}"
        );
    }
    let header = key.header().to_string();
    let base = r#""iss":"https://auth.example.com","aud":"api","exp":1800000600"#;
    for claims in [
        format!(r#"{{{base},"sub":"alice","sub":"admin"}}"#),
        format!(r#"{{{base},"exp":9999999999}}"#),
        format!(r#"{{{base},"roles":{{"admin":false,"admin":true}}}}"#),
    ] {
        let token = key.sign_raw(&header, claims.as_bytes());
        assert_eq!(
            verifier.verify(&token, NOW),
            Err(Error::DuplicateJsonMember),
            "{claims}"
        );
    }
}

#[test]
fn row13_oversized_and_pathological_input() {
    let key = es256("k1");
    let verifier = verifier(&[&key]);
    // 10 MB: refused by length, before any decoding (it is not even base64).
    let huge = "!".repeat(10 * 1024 * 1024);
    assert_eq!(verifier.verify(&huge, NOW), Err(Error::TokenTooLarge));
    let just_over = "a".repeat(8193);
    assert_eq!(verifier.verify(&just_over, NOW), Err(Error::TokenTooLarge));
    // Thousands of dots.
    for dots in [
        ".".repeat(4000),
        format!("a{}", ".a".repeat(3000)),
        "..".into(),
        "....".into(),
    ] {
        assert!(matches!(
            verifier.verify(&dots, NOW),
            Err(Error::MalformedToken(_))
        ));
    }
    // Deep nesting in a signed header and in signed claims.
    let deep = format!("{}1{}", "[".repeat(1000), "]".repeat(1000));
    let header = format!(r#"{{"alg":"ES256","kid":"k1","typ":"at+jwt","x":{deep}}}"#);
    let token = key.sign_raw(&header, claims().to_string().as_bytes());
    assert_eq!(verifier.verify(&token, NOW), Err(Error::JsonTooDeep));
    let claims_text = format!(
        r#"{{"iss":"{ISS}","aud":"api","exp":{},"x":{deep}}}"#,
        NOW + 60
    );
    let token = key.sign_raw(&key.header().to_string(), claims_text.as_bytes());
    assert_eq!(verifier.verify(&token, NOW), Err(Error::JsonTooDeep));
    // 1 MiB kid.
    let header = json!({"alg": "ES256", "kid": "k".repeat(1 << 20)});
    assert_eq!(
        verifier.verify(&key.sign(&header, &claims()), NOW),
        Err(Error::TokenTooLarge)
    );
    // The cap is configurable downwards and bounded upwards.
    let small = Validation {
        max_token_len: 100,
        ..Validation::new(ISS, AUD)
    };
    let strict = verifier_with(&[&key], small);
    assert_eq!(strict.verify(&key.token(), NOW), Err(Error::TokenTooLarge));
    let set = keygate_verify::JwkSet::from_json(&jwks(&[&key]), &Default::default()).unwrap();
    let unbounded = Validation {
        max_token_len: 10 << 20,
        ..Validation::new(ISS, AUD)
    };
    assert!(matches!(
        keygate_verify::Verifier::new(set, unbounded),
        Err(Error::InvalidConfig(_))
    ));
    // (RSA moduli over 8192 bits: see attacks_keys.rs, row 13 keys.)
}

#[test]
fn row15_token_confusion() {
    let key = es256("k1");
    let verifier = verifier(&[&key]);
    // An ID token: typ JWT, audience a client id.
    let id_header = json!({"alg": "ES256", "kid": "k1", "typ": "JWT"});
    let id_claims = claims_with("aud", Some(json!("client-123")));
    assert_eq!(
        verifier.verify(&key.sign(&id_header, &id_claims), NOW),
        Err(Error::InvalidTokenType)
    );
    // No typ at all.
    let bare = json!({"alg": "ES256", "kid": "k1"});
    assert_eq!(
        verifier.verify(&key.sign(&bare, &claims()), NOW),
        Err(Error::InvalidTokenType)
    );
    // An internal gateway token is at+jwt too, but for another audience.
    let internal = claims_with("aud", Some(json!("keygate-internal")));
    assert_eq!(
        verifier.verify(&key.sign(&key.header(), &internal), NOW),
        Err(Error::InvalidAudience)
    );
    // An opaque refresh token.
    let refresh = "rt_3q2+7w8e9r0tYuIoPaSdFgHjKlZxCvBnM";
    assert!(matches!(
        verifier.verify(refresh, NOW),
        Err(Error::MalformedToken(_))
    ));
    // Nesting: cty JWT in any case.
    for cty in ["JWT", "jwt", "application/jwt"] {
        let mut header = key.header();
        header["cty"] = json!(cty);
        assert_eq!(
            verifier.verify(&key.sign(&header, &claims()), NOW),
            Err(Error::UnsupportedHeader { name: "cty" })
        );
    }
    // A five-segment JWE.
    let jwe = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGe.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ";
    assert_eq!(
        verifier.verify(jwe, NOW),
        Err(Error::MalformedToken("JWE is not supported"))
    );
    // The RFC 9068 media type spelling is the same type.
    let mut header = key.header();
    header["typ"] = json!("application/at+jwt");
    assert!(verifier.verify(&key.sign(&header, &claims()), NOW).is_ok());
    // Without a typ requirement (configured off), an ID-token typ passes the typ check.
    let lax = Validation {
        required_typ: None,
        ..Validation::new(ISS, AUD)
    };
    assert!(
        verifier_with(&[&key], lax)
            .verify(&key.sign(&id_header, &claims()), NOW)
            .is_ok()
    );
}

#[test]
fn row16_json_serialization_is_refused() {
    let key = es256("k1");
    let verifier = verifier(&[&key]);
    let (h, p, s) = segments(&key.token());
    let general = json!({"payload": p, "signatures": [{"protected": h, "signature": s}]});
    let flattened = json!({"payload": p, "protected": h, "signature": s});
    for token in [
        general.to_string(),
        flattened.to_string(),
        format!("  {flattened}"),
    ] {
        assert!(
            matches!(verifier.verify(&token, NOW), Err(Error::MalformedToken(_))),
            "{token}"
        );
        assert!(verifier.verify_signature(&token).is_err());
    }
}
