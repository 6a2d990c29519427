//! jwt-attacks.md rows about keys and signatures: 2 (algorithm confusion),
//! 3 (psychic ECDSA signatures), 4 (invalid curves, bad keys), 13 (RSA key
//! size), 14 (non-canonical base64url), 17 (weak HMAC secrets), 18 (rotated or
//! mismatched keys), 19 (PKCS#1 v1.5 forgeries), 20 (ECDSA encoding) and 21
//! (Ed25519).

use crate::common;

use base64::Engine as _;
use common::*;
use keygate_verify::{
    Algorithm, Error, ImportOptions, JwkSet, VerifyingKey, base64url_encode as b64,
};
use serde_json::{Value, json};

#[test]
fn row02_hs256_signed_with_our_public_key_is_refused() {
    let (ec, rsa, ed) = (es256("ec"), rsa_key(Algorithm::RS256, "rsa"), ed25519("ed"));
    let verifier = verifier(&[&ec, &rsa, &ed]);
    for key in [&ec, &rsa, &ed] {
        let der = key.spki_der();
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&der)
        );
        let forms: Vec<Vec<u8>> = vec![
            pem.clone().into_bytes(),
            pem.trim_end().as_bytes().to_vec(),
            der,
            key.jwk.to_string().into_bytes(),
            serde_json::to_vec_pretty(&key.jwk).unwrap(),
            key.raw_public(),
        ];
        for secret in forms {
            let forged = hs(Algorithm::HS256, &key.kid, &secret);
            let with_kid = json!({"alg": "HS256", "kid": key.kid, "typ": "at+jwt"});
            let token = forged.sign(&with_kid, &claims());
            assert_eq!(
                verifier.verify(&token, NOW),
                Err(Error::KeyAlgorithmMismatch)
            );
            let without_kid = json!({"alg": "HS256", "typ": "at+jwt"});
            let token = forged.sign(&without_kid, &claims());
            assert_eq!(verifier.verify(&token, NOW), Err(Error::NoMatchingKey));
        }
    }
    // HMAC keys never come from a JWKS fetched from a URL.
    let oct = hs(Algorithm::HS256, "h", &[9; 32]);
    assert_eq!(
        JwkSet::from_json(&jwks(&[&oct]), &ImportOptions::remote()).err(),
        Some(Error::SymmetricKeyRefused)
    );
}

const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn with_signature(token: &str, sig: &[u8]) -> String {
    let (h, p, _) = segments(token);
    format!("{h}.{p}.{}", b64(sig))
}

#[test]
fn row03_psychic_ecdsa_signatures_are_refused() {
    let key = es256("k1");
    let verifier = verifier(&[&key]);
    let token = key.token();
    let (_, _, s) = segments(&token);
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap();
    let (r, s) = (sig[..32].to_vec(), sig[32..].to_vec());
    let zero = vec![0u8; 32];
    let n = hex(P256_N);
    for (r, s) in [
        (&zero, &zero),
        (&zero, &s),
        (&r, &zero),
        (&n, &s),
        (&r, &n),
        (&n, &n),
        (&zero, &n),
    ] {
        let forged = with_signature(&token, &[r.as_slice(), s.as_slice()].concat());
        assert_eq!(verifier.verify(&forged, NOW), Err(Error::BadSignature));
    }
    for (key, len) in [(es384("k1"), 96), (es512("k1"), 132)] {
        let verifier = common::verifier(&[&key]);
        let forged = with_signature(&key.token(), &vec![0; len]);
        assert_eq!(verifier.verify(&forged, NOW), Err(Error::BadSignature));
    }
}

fn import_set(keys: Vec<Value>) -> JwkSet {
    JwkSet::from_json(
        json!({ "keys": keys }).to_string().as_bytes(),
        &ImportOptions::remote(),
    )
    .unwrap()
}

#[test]
fn row04_bad_keys_are_skipped_at_import_and_the_rest_kept() {
    let good = es256("good");
    let other = es384("p384");
    let mut off_curve = good.jwk.clone();
    off_curve["kid"] = json!("off-curve");
    let mut y = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(good.jwk["y"].as_str().unwrap())
        .unwrap();
    y[31] ^= 1;
    off_curve["y"] = json!(b64(&y));
    let mut wrong_crv = other.jwk.clone();
    wrong_crv["kid"] = json!("wrong-crv");
    wrong_crv["alg"] = json!("ES256");
    let mut short_x = good.jwk.clone();
    short_x["kid"] = json!("short-x");
    short_x["x"] = json!(b64(&[1; 31]));
    let mut long_y = good.jwk.clone();
    long_y["kid"] = json!("long-y");
    long_y["y"] = json!(b64(&[[0].as_slice(), &y].concat()));
    let mut identity = good.jwk.clone();
    identity["kid"] = json!("zero-point");
    identity["x"] = json!(b64(&[0; 32]));
    identity["y"] = json!(b64(&[0; 32]));
    let set = import_set(vec![
        off_curve,
        good.jwk.clone(),
        wrong_crv,
        short_x,
        long_y,
        identity,
    ]);
    assert_eq!(
        set.keys()
            .iter()
            .map(|k| k.kid().unwrap())
            .collect::<Vec<_>>(),
        ["good"]
    );
    let skipped: Vec<(usize, &str, &Error)> = set
        .skipped()
        .iter()
        .map(|s| (s.index, s.kid.as_deref().unwrap(), &s.error))
        .collect();
    assert_eq!(
        skipped,
        [
            (
                0,
                "off-curve",
                &Error::InvalidKey("EC point is not on the curve")
            ),
            (2, "wrong-crv", &Error::InvalidKey("alg does not match crv")),
            (
                3,
                "short-x",
                &Error::InvalidKey("EC coordinate has the wrong length")
            ),
            (
                4,
                "long-y",
                &Error::InvalidKey("EC coordinate has the wrong length")
            ),
            (
                5,
                "zero-point",
                &Error::InvalidKey("EC point is not on the curve")
            ),
        ]
    );
    let verifier =
        keygate_verify::Verifier::new(set, keygate_verify::Validation::new(ISS, AUD)).unwrap();
    assert!(verifier.verify(&good.token(), NOW).is_ok());
    let mut header = good.header();
    header["kid"] = json!("off-curve");
    assert_eq!(
        verifier.verify(&good.sign(&header, &claims()), NOW),
        Err(Error::UnknownKid)
    );
}

#[test]
fn row13_rsa_modulus_outside_2048_to_8192_bits_is_refused() {
    let odd_bytes = |len: usize| -> Vec<u8> {
        let mut n: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(151).wrapping_add(0xc3))
            .collect();
        n[0] |= 0x80;
        *n.last_mut().unwrap() |= 1;
        n
    };
    for (len, bits) in [(1025, 8200), (128, 1024), (255, 2040)] {
        let jwk = json!({"kty": "RSA", "alg": "RS256", "kid": "big", "n": b64(&odd_bytes(len)), "e": "AQAB"});
        let set = import_set(vec![jwk]);
        assert!(set.keys().is_empty(), "{bits}");
        assert_eq!(
            set.skipped()[0].error,
            Error::InvalidKey("RSA modulus must be 2048 to 8192 bits")
        );
    }
}

#[test]
fn row14_non_canonical_base64url_is_refused() {
    let key = es256("k1");
    let verifier = verifier(&[&key]);
    let token = key.token();
    let (h, p, s) = segments(&token);
    assert!(verifier.verify(&format!("{h}.{p}.{s}"), NOW).is_ok());
    let mut variants = vec![
        format!("{h}=.{p}.{s}"),
        format!("{h}.{p}=.{s}"),
        format!("{h}.{p}.{s}="),
        format!("{h}.{p}.{s}=="),
        format!("{h}.{p}.+{s}"),
        // Standard-alphabet characters in place of the URL-safe ones (a
        // random signature need not contain `-` or `_`, so force one).
        format!("{h}.{p}.+{}", &s[1..]),
        format!("{h}.{p}./{}", &s[1..]),
        format!(" {token}"),
        format!("{token} "),
        format!("{token}\n"),
        format!("{h}.{p}\n.{s}"),
        format!("{h}. {p}.{s}"),
        format!("{h}.{p}.{}\r\n{}", &s[..40], &s[40..]),
        format!(".{p}.{s}"),
        format!("{h}..{s}"),
    ];
    // Non-zero trailing bits: 64 signature bytes leave 4 unused bits in the
    // last character; setting one still decodes leniently to the same bytes.
    let last = s.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = alphabet.find(last).unwrap();
    let sloppy = alphabet.chars().nth(index | 1).unwrap();
    variants.push(format!("{h}.{p}.{}{sloppy}", &s[..s.len() - 1]));
    for variant in variants {
        let result = verifier.verify(&variant, NOW);
        assert!(
            matches!(result, Err(Error::MalformedToken(_))),
            "{variant:?}: {result:?}"
        );
    }
    // An empty payload with a valid signature is still not a JWT.
    let empty = key.sign_raw(&key.header().to_string(), b"");
    assert_eq!(
        verifier.verify(&empty, NOW),
        Err(Error::MalformedToken("empty payload"))
    );
}

#[test]
fn row17_weak_hmac_secrets_are_refused_at_configuration() {
    for secret in [&b"secret"[..], b"changeme", b"", &[7; 31]] {
        assert_eq!(
            VerifyingKey::from_hmac_secret(Algorithm::HS256, secret, None).err(),
            Some(Error::InvalidKey("HMAC key shorter than the hash output"))
        );
        let oct = json!({"kty": "oct", "alg": "HS256", "k": b64(secret)});
        let jwk = keygate_verify::Jwk::from_json(oct.to_string().as_bytes()).unwrap();
        assert!(jwk.import(&ImportOptions::local_file()).is_err());
    }
    assert!(VerifyingKey::from_hmac_secret(Algorithm::HS256, &[7; 32], None).is_ok());
    assert!(VerifyingKey::from_hmac_secret(Algorithm::HS512, &[7; 32], None).is_err());
    assert!(VerifyingKey::from_hmac_secret(Algorithm::HS512, &[7; 64], None).is_ok());
    assert!(VerifyingKey::from_hmac_secret(Algorithm::ES256, &[7; 64], None).is_err());
}

#[test]
fn row18_rotated_out_and_mismatched_keys() {
    let (a, b) = (es256("a"), es256("b"));
    // b was rotated out: its kid is unknown now.
    let only_a = verifier(&[&a]);
    assert_eq!(only_a.verify(&b.token(), NOW), Err(Error::UnknownKid));
    // kid a with b's signature: only a is tried.
    let both = verifier(&[&a, &b]);
    let mut header = b.header();
    header["kid"] = json!("a");
    assert_eq!(
        both.verify(&b.sign(&header, &claims()), NOW),
        Err(Error::BadSignature)
    );
    // use: enc, key_ops without verify.
    for (member, value) in [
        ("use", json!("enc")),
        ("key_ops", json!(["encrypt"])),
        ("key_ops", json!(["sign"])),
        ("key_ops", json!([])),
    ] {
        let mut jwk = a.jwk.clone();
        jwk[member] = value;
        let set = import_set(vec![jwk]);
        assert!(set.keys().is_empty(), "{member}");
    }
    let mut jwk = a.jwk.clone();
    jwk["key_ops"] = json!(["verify"]);
    assert_eq!(import_set(vec![jwk]).keys().len(), 1);
    // Duplicate kids refuse the whole set, even if one of them is broken.
    let mut twin = b.jwk.clone();
    twin["kid"] = json!("a");
    let set = json!({"keys": [a.jwk, twin]}).to_string();
    assert_eq!(
        JwkSet::from_json(set.as_bytes(), &ImportOptions::remote()).err(),
        Some(Error::DuplicateKid)
    );
    // Private members refuse the whole set from a URL; a local file strips them.
    let mut private = b.jwk.clone();
    private["d"] = json!(b64(&[5; 32]));
    let set = json!({"keys": [a.jwk, private]}).to_string();
    assert_eq!(
        JwkSet::from_json(set.as_bytes(), &ImportOptions::remote()).err(),
        Some(Error::PrivateKeyMaterial)
    );
    let local = JwkSet::from_json(set.as_bytes(), &ImportOptions::local_file()).unwrap();
    assert_eq!(local.keys().len(), 2);
}

#[test]
fn row19_rsa_pkcs1_forgeries_are_refused() {
    let path = format!(
        "{}/tests/vectors/json_web_signature_test.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let file: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let group = &file["testGroups"][2];
    assert_eq!(group["comment"], "rs256");
    let set = import_set(vec![group["public"].clone()]);
    let verifier =
        keygate_verify::Verifier::new(set, keygate_verify::Validation::new(ISS, AUD)).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for test in group["tests"].as_array().unwrap() {
        if test["flags"] != json!(["ModifiedPadding"]) {
            continue;
        }
        let comment = test["comment"].as_str().unwrap();
        seen.insert(comment.to_owned());
        let result = verifier.verify_signature(test["jws"].as_str().unwrap());
        assert_eq!(result, Err(Error::BadSignature), "{comment}");
    }
    // BER DigestInfo, garbage appended, wrong hash OID are among them.
    for class in [
        "lengthOfSequenceUsesLongFormEncoding",
        "appendingGarbageToSequence",
        "wrongOid",
    ] {
        assert!(seen.contains(class), "{class}");
    }
    // A signature made with another hash (RS384 presented as RS256).
    let rs256 = rsa_key(Algorithm::RS256, "r");
    let rs384 = rsa_key(Algorithm::RS384, "r");
    let verifier = common::verifier(&[&rs256]);
    assert_eq!(
        verifier.verify(&rs384.sign(&rs256.header(), &claims()), NOW),
        Err(Error::BadSignature)
    );
    assert!(verifier.verify(&rs256.token(), NOW).is_ok());
}

/// `a - b` for big-endian integers of equal length, `a >= b`.
fn sub_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut borrow = 0i16;
    for i in (0..a.len()).rev() {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    out
}

#[test]
fn row20_ecdsa_signatures_are_fixed_size_r_s_only() {
    let key = es256("k1");
    let verifier = verifier(&[&key]);
    let token = key.token();
    let (h, p, s) = segments(&token);
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&s)
        .unwrap();
    // A genuine DER signature over the same signing input.
    let der = der_signature(format!("{h}.{p}").as_bytes());
    assert_eq!(
        verifier.verify(&with_signature(&token, &der), NOW),
        Err(Error::BadSignature)
    );
    for wrong in [
        sig[..63].to_vec(),
        [sig.as_slice(), &[0]].concat(),
        [[0].as_slice(), &sig].concat(),
    ] {
        assert_eq!(
            verifier.verify(&with_signature(&token, &wrong), NOW),
            Err(Error::BadSignature)
        );
    }
    // High-S is valid in JOSE: (r, n - s) verifies too, and the same token
    // verifies every time it is presented (no dedupe on signature bytes).
    let high_s = [&sig[..32], sub_be(&hex(P256_N), &sig[32..]).as_slice()].concat();
    let twin = with_signature(&token, &high_s);
    for _ in 0..2 {
        assert!(verifier.verify(&token, NOW).is_ok());
        assert!(verifier.verify(&twin, NOW).is_ok());
    }
}

/// A genuine ASN.1 DER ECDSA P-256 signature over `input`. A fresh key pair
/// is enough: the encoding is refused by length before any curve arithmetic.
fn der_signature(input: &[u8]) -> Vec<u8> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
    let der = pair
        .sign(&aws_lc_rs::rand::SystemRandom::new(), input)
        .unwrap()
        .as_ref()
        .to_vec();
    assert_ne!(der.len(), 64);
    der
}

#[test]
fn row21_ed25519_malleability_and_bad_keys() {
    let key = ed25519("e1");
    let verifier = verifier(&[&key]);
    let token = key.token();
    let (_, _, s) = segments(&token);
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&s)
        .unwrap();
    // S + L (little-endian): the same point equation, a non-canonical scalar.
    let l: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    let mut malleated = sig.clone();
    for i in 0..32 {
        let sum = u16::from(sig[32 + i]) + u16::from(l[i]) + carry;
        malleated[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    for wrong in [
        malleated,
        sig[..63].to_vec(),
        [sig.as_slice(), &[0]].concat(),
        vec![0; 64],
    ] {
        assert_eq!(
            verifier.verify(&with_signature(&token, &wrong), NOW),
            Err(Error::BadSignature)
        );
    }
    assert!(verifier.verify(&token, NOW).is_ok());
    for crv in ["Ed448", "X25519", "ed25519"] {
        let mut jwk = key.jwk.clone();
        jwk["crv"] = json!(crv);
        let set = import_set(vec![jwk]);
        assert_eq!(
            set.skipped()[0].error,
            Error::InvalidKey("unsupported OKP curve"),
            "{crv}"
        );
    }
    let mut short = key.jwk.clone();
    short["x"] = json!(b64(&[1; 31]));
    assert!(import_set(vec![short]).keys().is_empty());
}
