//! jwt-attacks.md rows about claims: 9 (time claims), 10 (`aud`), 11 (`iss`).

use crate::common;

use common::*;
use keygate_verify::{Error, Validation, Verifier};
use serde_json::{Value, json};

fn no_leeway(key: &TestKey) -> Verifier {
    verifier_with(
        &[key],
        Validation {
            leeway_secs: 0,
            ..Validation::new(ISS, AUD)
        },
    )
}

fn check(verifier: &Verifier, key: &TestKey, claims: &Value) -> Result<(), Error> {
    verifier
        .verify(&key.sign(&key.header(), claims), NOW)
        .map(|_| ())
}

#[test]
fn row09_exp_boundary_is_exclusive_and_leeway_applies() {
    let key = es256("k1");
    let strict = no_leeway(&key);
    let lenient = verifier(&[&key]); // 30 s
    let exp = |v: Value| claims_with("exp", Some(v));
    assert_eq!(check(&strict, &key, &exp(json!(NOW))), Err(Error::Expired));
    assert_eq!(
        check(&strict, &key, &exp(json!(NOW - 1))),
        Err(Error::Expired)
    );
    assert!(check(&strict, &key, &exp(json!(NOW + 1))).is_ok());
    assert!(check(&lenient, &key, &exp(json!(NOW))).is_ok());
    assert!(check(&lenient, &key, &exp(json!(NOW - 29))).is_ok());
    assert_eq!(
        check(&lenient, &key, &exp(json!(NOW - 30))),
        Err(Error::Expired)
    );
    // Floats are valid NumericDates; fractions round toward refusal.
    assert!(check(&strict, &key, &exp(json!(NOW as f64 + 100.5))).is_ok());
    assert_eq!(
        check(&strict, &key, &exp(json!(NOW as f64 + 0.5))),
        Err(Error::Expired)
    );
    // A time-travelling clock: now far beyond any exp.
    assert_eq!(strict.verify(&key.token(), u64::MAX), Err(Error::Expired));
}

#[test]
fn row09_exp_is_required_and_must_be_a_number() {
    let key = es256("k1");
    let verifier = verifier(&[&key]);
    let exp = |v: Value| claims_with("exp", Some(v));
    assert_eq!(
        check(&verifier, &key, &claims_with("exp", None)),
        Err(Error::MissingClaim { name: "exp" })
    );
    for bad in [
        json!((NOW + 600).to_string()),
        json!(-1),
        json!(-0.5),
        json!(true),
        json!(null),
        json!([NOW + 600]),
        json!({"t": NOW + 600}),
        json!(1e12),
        json!(u64::MAX),
    ] {
        assert_eq!(
            check(&verifier, &key, &exp(bad.clone())),
            Err(Error::InvalidClaim { name: "exp" }),
            "{bad}"
        );
    }
    // 1e400 does not fit a double: the claims set itself is refused.
    let header = key.header().to_string();
    let text = format!(r#"{{"iss":"{ISS}","aud":"{AUD}","exp":1e400}}"#);
    assert!(
        verifier
            .verify(&key.sign_raw(&header, text.as_bytes()), NOW)
            .is_err()
    );
}

#[test]
fn row09_nbf_and_iat_in_the_future_beyond_leeway() {
    let key = es256("k1");
    let verifier = verifier(&[&key]); // 30 s
    for (name, error) in [("nbf", Error::NotYetValid), ("iat", Error::IssuedInFuture)] {
        let at = |v: Value| claims_with(name, Some(v));
        assert!(
            check(&verifier, &key, &at(json!(NOW + 30))).is_ok(),
            "{name}"
        );
        assert_eq!(
            check(&verifier, &key, &at(json!(NOW + 31))),
            Err(error.clone()),
            "{name}"
        );
        assert_eq!(
            check(&verifier, &key, &at(json!(NOW as f64 + 30.25))),
            Err(error),
            "{name}"
        );
        assert!(
            check(&verifier, &key, &claims_with(name, None)).is_ok(),
            "{name} is optional"
        );
        for bad in [json!("0"), json!(false), json!(null), json!(-5)] {
            assert_eq!(
                check(&verifier, &key, &at(bad)),
                Err(Error::InvalidClaim {
                    name: if name == "nbf" { "nbf" } else { "iat" }
                })
            );
        }
    }
    // The revocation cut-off is applied by the server with the subject's
    // record; the verifier hands it `iat` as sent.
    let claims = verifier.verify(&key.token(), NOW).unwrap();
    assert_eq!(claims.iat.map(|d| d.as_f64()), Some((NOW - 10) as f64));
}

#[test]
fn row09_leeway_is_capped() {
    let key = es256("k1");
    let set = keygate_verify::JwkSet::from_json(&jwks(&[&key]), &Default::default()).unwrap();
    let too_lenient = Validation {
        leeway_secs: 3600,
        ..Validation::new(ISS, AUD)
    };
    assert!(matches!(
        Verifier::new(set, too_lenient),
        Err(Error::InvalidConfig(_))
    ));
}

#[test]
fn row10_audience_is_an_exact_case_sensitive_element_match() {
    let key = es256("k1");
    let verifier = verifier(&[&key]);
    let aud = |v: Value| claims_with("aud", Some(v));
    assert!(check(&verifier, &key, &aud(json!("api"))).is_ok());
    assert!(check(&verifier, &key, &aud(json!(["x", "api"]))).is_ok());
    for bad in [
        json!("apiv2"),
        json!("ap"),
        json!("API"),
        json!(" api"),
        json!([]),
        json!([1]),
        json!(["x", 1, "api"]),
        json!(null),
        json!([["api"]]),
        json!({"api": true}),
        json!(1),
    ] {
        assert_eq!(
            check(&verifier, &key, &aud(bad.clone())),
            Err(Error::InvalidAudience),
            "{bad}"
        );
    }
    assert_eq!(
        check(&verifier, &key, &claims_with("aud", None)),
        Err(Error::MissingClaim { name: "aud" })
    );
}

#[test]
fn row11_issuer_is_an_exact_string_match() {
    let key = es256("k1");
    let verifier = verifier(&[&key]);
    let iss = |v: Value| claims_with("iss", Some(v));
    for bad in [
        json!(format!("{ISS}/")),
        json!(&ISS[..ISS.len() - 1]),
        json!("auth.example.com"),
        json!(format!("{ISS}.evil.example")),
        json!(ISS.to_uppercase()),
        json!(1),
        json!(null),
        json!([ISS]),
    ] {
        assert_eq!(
            check(&verifier, &key, &iss(bad.clone())),
            Err(Error::InvalidIssuer),
            "{bad}"
        );
    }
    assert_eq!(
        check(&verifier, &key, &claims_with("iss", None)),
        Err(Error::MissingClaim { name: "iss" })
    );
}

#[test]
fn valid_token_yields_typed_claims() {
    let key = es256("k1");
    let claims = verifier(&[&key]).verify(&key.token(), NOW).unwrap();
    assert_eq!(claims.iss, ISS);
    assert_eq!(claims.sub.as_deref(), Some("user-1"));
    assert_eq!(claims.aud, ["api"]);
    assert_eq!(claims.exp.as_f64(), (NOW + 600) as f64);
    assert_eq!(claims.jti.as_deref(), Some("token-1"));
    assert_eq!(claims.extra["tenant"], "acme");
    assert_eq!(claims.extra["roles"], json!(["reader"]));
    assert!(!claims.extra.contains_key("exp"));
    // sub and jti must be strings when present.
    let verifier = verifier(&[&key]);
    for name in ["sub", "jti"] {
        let bad = claims_with(name, Some(json!(42)));
        assert!(matches!(
            check(&verifier, &key, &bad),
            Err(Error::InvalidClaim { .. })
        ));
    }
}

#[test]
fn every_algorithm_round_trips() {
    let keys = [
        es256("es256"),
        es384("es384"),
        es512("es512"),
        ed25519("eddsa"),
        rsa_key(keygate_verify::Algorithm::RS256, "rs256"),
        rsa_key(keygate_verify::Algorithm::RS384, "rs384"),
        rsa_key(keygate_verify::Algorithm::RS512, "rs512"),
        rsa_key(keygate_verify::Algorithm::PS256, "ps256"),
        rsa_key(keygate_verify::Algorithm::PS384, "ps384"),
        rsa_key(keygate_verify::Algorithm::PS512, "ps512"),
    ];
    let refs: Vec<&TestKey> = keys.iter().collect();
    let verifier = verifier(&refs);
    for key in &keys {
        assert!(verifier.verify(&key.token(), NOW).is_ok(), "{}", key.alg);
    }
    for alg in [
        keygate_verify::Algorithm::HS256,
        keygate_verify::Algorithm::HS384,
        keygate_verify::Algorithm::HS512,
    ] {
        let key = hs(alg, "h", &[3; 64]);
        assert!(
            common::verifier(&[&key]).verify(&key.token(), NOW).is_ok(),
            "{alg}"
        );
    }
}

#[test]
fn errors_never_echo_input() {
    let key = es256("k1");
    let verifier = verifier(&[&key]);
    let secret_kid = "kid-SECRET-123";
    let mut header = key.header();
    header["kid"] = json!(secret_kid);
    let error = verifier
        .verify(&key.sign(&header, &claims()), NOW)
        .unwrap_err();
    let shown = format!("{error} {error:?} {}", error.code());
    assert!(!shown.contains("SECRET"), "{shown}");
    let hmac = keygate_verify::VerifyingKey::from_hmac_secret(
        keygate_verify::Algorithm::HS256,
        &[0x41; 32],
        None,
    )
    .unwrap();
    assert!(!format!("{hmac:?}").contains("AAAA"));
}

#[test]
fn custom_claims_come_out_typed_and_wrong_types_are_refused() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Mine {
        roles: Vec<String>,
        tenant: Option<String>,
        plan: String,
    }
    let key = es256("k1");
    let verifier = no_leeway(&key);
    let mut claims = json!({"iss": ISS, "aud": AUD, "exp": NOW + 60, "sub": "u",
        "roles": ["customer"], "plan": "pro"});
    let verified = verifier
        .verify(&key.sign(&key.header(), &claims), NOW)
        .unwrap();
    assert_eq!(
        verified.custom::<Mine>().unwrap(),
        Mine {
            roles: vec!["customer".into()],
            tenant: None,
            plan: "pro".into()
        }
    );
    claims["roles"] = json!("customer");
    let verified = verifier
        .verify(&key.sign(&key.header(), &claims), NOW)
        .unwrap();
    assert!(verified.custom::<Mine>().is_err());
}
