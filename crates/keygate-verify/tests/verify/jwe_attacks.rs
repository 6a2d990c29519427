//! Each JWE attack of the issue ("Confidential claims") on its own: the
//! invalid-curve point, `alg`/`enc` outside the policy, `zip`, `p2c`,
//! RSA1_5, `crit`, a key of the wrong type, tags of the wrong length,
//! oracle-shaped failures, and nested tokens that are not what they claim.

use aws_lc_rs::agreement;
use keygate_verify::jwe::{ContentEncryption, JwePolicy, KeyManagement};
use keygate_verify::{Encryption, Error, base64url_encode as b64};
use serde_json::json;
use std::sync::Arc;

use crate::common::{self, NOW};
use crate::jwe_common::{ec_recipient, header_of, p256, rsa_recipient, with_header, with_segment};

const PLAINTEXT: &[u8] = b"confidential claims";

#[test]
fn an_epk_off_the_curve_is_refused_before_any_agreement() {
    let bob = p256("bob");
    let token = bob.encrypter(None).encrypt(PLAINTEXT, None).unwrap();
    assert_eq!(
        bob.decrypter().decrypt(&token).unwrap().plaintext,
        PLAINTEXT
    );
    let mut header = header_of(&token);
    // y + 1 (mod 256 in the last byte): almost surely off the curve, the
    // classic invalid-curve probe.
    let mut y = base64_decode(header["epk"]["y"].as_str().unwrap());
    *y.last_mut().unwrap() ^= 1;
    header["epk"]["y"] = b64(&y).into();
    assert_eq!(
        bob.decrypter().decrypt(&with_header(&token, &header)).err(),
        Some(Error::InvalidHeader { name: "epk" })
    );
    // The point at infinity's stand-in and a short coordinate.
    for (x, y) in [(vec![0u8; 32], vec![0u8; 32]), (vec![1u8; 31], y.clone())] {
        header["epk"]["x"] = b64(&x).into();
        header["epk"]["y"] = b64(&y).into();
        assert_eq!(
            bob.decrypter().decrypt(&with_header(&token, &header)).err(),
            Some(Error::InvalidHeader { name: "epk" })
        );
    }
}

#[test]
fn an_epk_on_another_curve_is_refused() {
    let bob = p256("bob");
    let other = ec_recipient(&agreement::ECDH_P384, "P-384", "other");
    let token = bob.encrypter(None).encrypt(PLAINTEXT, None).unwrap();
    let mut header = header_of(&token);
    header["epk"] = other.public_jwk.clone();
    header["epk"]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| ["kty", "crv", "x", "y"].contains(&k.as_str()));
    assert_eq!(
        bob.decrypter().decrypt(&with_header(&token, &header)).err(),
        Some(Error::InvalidHeader { name: "epk" })
    );
}

#[test]
fn alg_and_enc_outside_the_policy_are_refused() {
    let rsa = rsa_recipient();
    // RSA-OAEP (SHA-1) is implemented but not in the default policy.
    let token = rsa
        .encrypter(Some(KeyManagement::RsaOaep))
        .encrypt(PLAINTEXT, None)
        .unwrap();
    assert_eq!(
        rsa.decrypter().decrypt(&token).err(),
        Some(Error::UnsupportedAlgorithm)
    );
    assert_eq!(
        rsa.decrypter_with(JwePolicy::all())
            .decrypt(&token)
            .unwrap()
            .plaintext,
        PLAINTEXT
    );
    // A192GCM likewise.
    let token = rsa
        .encrypter(None)
        .with_enc(ContentEncryption::A192Gcm)
        .encrypt(PLAINTEXT, None)
        .unwrap();
    assert_eq!(
        rsa.decrypter().decrypt(&token).err(),
        Some(Error::UnsupportedAlgorithm)
    );
    // A caller that accepts only ECDH-ES+A256KW refuses RSA-OAEP-256.
    let narrow = JwePolicy {
        algs: vec![KeyManagement::EcdhEsA256Kw],
        encs: vec![ContentEncryption::A256Gcm],
    };
    let token = rsa.encrypter(None).encrypt(PLAINTEXT, None).unwrap();
    assert_eq!(
        rsa.decrypter_with(narrow).decrypt(&token).err(),
        Some(Error::UnsupportedAlgorithm)
    );
}

#[test]
fn rsa1_5_is_refused_whatever_the_policy_and_key() {
    let rsa = rsa_recipient();
    let token = rsa.encrypter(None).encrypt(PLAINTEXT, None).unwrap();
    let mut header = header_of(&token);
    header["alg"] = "RSA1_5".into();
    let forged = with_header(&token, &header);
    assert_eq!(
        rsa.decrypter_with(JwePolicy::all()).decrypt(&forged).err(),
        Some(Error::UnsupportedAlgorithm)
    );
    // A key that names RSA1_5 is refused at import.
    let mut jwk = rsa.public_jwk.clone();
    jwk["alg"] = "RSA1_5".into();
    let jwk = keygate_verify::Jwk::from_json(jwk.to_string().as_bytes()).unwrap();
    assert_eq!(
        keygate_verify::jwe::RecipientKey::from_jwk(&jwk).err(),
        Some(Error::InvalidKey("unsupported alg"))
    );
}

#[test]
fn compression_is_refused() {
    let bob = p256("bob");
    let token = bob.encrypter(None).encrypt(PLAINTEXT, None).unwrap();
    let mut header = header_of(&token);
    header["zip"] = "DEF".into();
    assert_eq!(
        bob.decrypter().decrypt(&with_header(&token, &header)).err(),
        Some(Error::UnsupportedHeader { name: "zip" })
    );
}

#[test]
fn pbes2_and_a_huge_p2c_cost_nothing() {
    let bob = p256("bob");
    let token = bob.encrypter(None).encrypt(PLAINTEXT, None).unwrap();
    let pbes2 = json!({"alg": "PBES2-HS512+A256KW", "enc": "A256GCM",
        "p2s": "2WCTcJZ1Rvd_CJuJripQ1w", "p2c": 2_147_483_647u64});
    assert_eq!(
        bob.decrypter_with(JwePolicy::all())
            .decrypt(&with_header(&token, &pbes2))
            .err(),
        Some(Error::UnsupportedAlgorithm)
    );
    // A p2c smuggled into another algorithm's header is refused too.
    let mut header = header_of(&token);
    header["p2c"] = 2_147_483_647u64.into();
    assert_eq!(
        bob.decrypter().decrypt(&with_header(&token, &header)).err(),
        Some(Error::UnsupportedHeader { name: "p2c" })
    );
}

#[test]
fn crit_is_refused() {
    let bob = p256("bob");
    let token = bob.encrypter(None).encrypt(PLAINTEXT, None).unwrap();
    for crit in [json!(["exp"]), json!([]), json!(["zip"])] {
        let mut header = header_of(&token);
        header["crit"] = crit;
        assert_eq!(
            bob.decrypter().decrypt(&with_header(&token, &header)).err(),
            Some(Error::CriticalHeader)
        );
    }
}

#[test]
fn a_key_of_the_wrong_type_is_refused() {
    let bob = p256("bob");
    let rsa = rsa_recipient();
    // An RSA-OAEP-256 token naming the EC key's kid.
    let token = rsa.encrypter(None).encrypt(PLAINTEXT, None).unwrap();
    let mut header = header_of(&token);
    header["kid"] = "bob".into();
    assert_eq!(
        bob.decrypter().decrypt(&with_header(&token, &header)).err(),
        Some(Error::KeyAlgorithmMismatch)
    );
    // Without a kid: no key of the decrypter serves the algorithm.
    header.as_object_mut().unwrap().remove("kid");
    assert_eq!(
        bob.decrypter().decrypt(&with_header(&token, &header)).err(),
        Some(Error::NoMatchingKey)
    );
    // An ECDH-ES token to an RSA decrypter.
    let token = bob.encrypter(None).encrypt(PLAINTEXT, None).unwrap();
    let mut header = header_of(&token);
    header["kid"] = "rsa-enc".into();
    assert_eq!(
        rsa.decrypter().decrypt(&with_header(&token, &header)).err(),
        Some(Error::KeyAlgorithmMismatch)
    );
}

#[test]
fn tags_of_the_wrong_length_are_refused() {
    let bob = p256("bob");
    let token = bob.encrypter(None).encrypt(PLAINTEXT, None).unwrap();
    let tag = base64_decode(token.rsplit('.').next().unwrap());
    for len in [0, 1, 8, 12, 15, 17, 32] {
        let mut other = tag.clone();
        other.resize(len, 0);
        assert_eq!(
            bob.decrypter()
                .decrypt(&with_segment(&token, 4, &b64(&other)))
                .err(),
            Some(Error::MalformedToken(
                "authentication tag has the wrong length"
            )),
            "tag of {len} bytes"
        );
    }
    let mut flipped = tag.clone();
    flipped[15] ^= 0x80;
    assert_eq!(
        bob.decrypter()
            .decrypt(&with_segment(&token, 4, &b64(&flipped)))
            .err(),
        Some(Error::Decryption)
    );
}

/// RFC 7516 §11.5: a broken encrypted key, an RSA ciphertext of the wrong
/// length, a wrong key and a tampered ciphertext all give one error.
#[test]
fn every_cryptographic_failure_is_one_error() {
    let rsa = rsa_recipient();
    let token = rsa.encrypter(None).encrypt(PLAINTEXT, None).unwrap();
    let ek = base64_decode(token.split('.').nth(1).unwrap());
    let mut flipped = ek.clone();
    flipped[10] ^= 1;
    let ct = base64_decode(token.split('.').nth(3).unwrap());
    let mut ct_flipped = ct.clone();
    ct_flipped[0] ^= 1;
    let cases = [
        with_segment(&token, 1, &b64(&flipped)),
        with_segment(&token, 1, &b64(&ek[1..])),
        with_segment(&token, 1, &b64(&[0u8; 256])),
        with_segment(&token, 3, &b64(&ct_flipped)),
    ];
    for case in &cases {
        assert_eq!(rsa.decrypter().decrypt(case).err(), Some(Error::Decryption));
    }
    // ECDH-ES+A256KW with a broken wrapped key.
    let bob = p256("bob");
    let token = bob.encrypter(None).encrypt(PLAINTEXT, None).unwrap();
    let mut ek = base64_decode(token.split('.').nth(1).unwrap());
    ek[3] ^= 1;
    assert_eq!(
        bob.decrypter()
            .decrypt(&with_segment(&token, 1, &b64(&ek)))
            .err(),
        Some(Error::Decryption)
    );
    // The right kid, another key.
    let impostor = p256("bob");
    assert_eq!(
        impostor.decrypter().decrypt(&token).err(),
        Some(Error::Decryption)
    );
}

#[test]
fn shape_rules() {
    let bob = p256("bob");
    let token = bob.encrypter(None).encrypt(PLAINTEXT, None).unwrap();
    let refused = [
        (format!("{token}."), "expected five segments"),
        (
            token.rsplit_once('.').unwrap().0.to_owned(),
            "expected five segments",
        ),
        (with_segment(&token, 2, "AAAA"), "IV has the wrong length"),
        (
            with_segment(&token, 1, ""),
            "encrypted key is empty or must be",
        ),
        (
            with_segment(&token, 3, "a+b/"),
            "ciphertext is not base64url",
        ),
        (
            format!("{{\"protected\":\"{token}\"}}"),
            "JSON serialization is not supported",
        ),
    ];
    for (case, reason) in refused {
        assert_eq!(
            bob.decrypter().decrypt(&case).err(),
            Some(Error::MalformedToken(reason)),
            "{reason}"
        );
    }
    assert_eq!(
        bob.decrypter().decrypt(&"a.".repeat(9000)).err(),
        Some(Error::TokenTooLarge)
    );
}

#[test]
fn a_nested_token_whose_inner_signature_fails_is_refused() {
    let signer = common::es256("sig-1");
    let bob = p256("bob");
    let mut inner = signer.token();
    // Change the signature's first character before encrypting: the JWE is
    // genuine, the JWS inside is not. (Not the last character: it carries
    // padding bits, and most replacements there are not canonical base64url
    // at all, which is another refusal.)
    let at = inner.rfind('.').unwrap() + 1;
    let first = if inner.as_bytes()[at] == b'A' {
        "B"
    } else {
        "A"
    };
    inner.replace_range(at..=at, first);
    let token = bob.encrypter(None).encrypt_nested(&inner).unwrap();
    let verifier = common::verifier(&[&signer])
        .with_decryption(Arc::new(bob.decrypter()), Encryption::Required);
    assert_eq!(
        verifier.verify(&token, NOW).err(),
        Some(Error::BadSignature)
    );
    // Signed by a key the verifier does not trust (same kid).
    let stranger = common::es256("sig-1");
    let token = bob
        .encrypter(None)
        .encrypt_nested(&stranger.token())
        .unwrap();
    assert_eq!(
        verifier.verify(&token, NOW).err(),
        Some(Error::BadSignature)
    );
}

#[test]
fn nesting_rules() {
    let signer = common::es256("sig-1");
    let bob = p256("bob");
    let verifier = common::verifier(&[&signer])
        .with_decryption(Arc::new(bob.decrypter()), Encryption::Required);
    // No cty: not declared as a nested JWT.
    let token = bob
        .encrypter(None)
        .encrypt(signer.token().as_bytes(), None)
        .unwrap();
    assert_eq!(
        verifier.verify(&token, NOW).err(),
        Some(Error::InvalidHeader { name: "cty" })
    );
    // A plaintext that is not a JWS.
    let token = bob
        .encrypter(None)
        .encrypt(b"{\"sub\":\"x\"}", Some("JWT"))
        .unwrap();
    assert!(matches!(
        verifier.verify(&token, NOW),
        Err(Error::MalformedToken(_))
    ));
    // A JWS that itself claims to nest (cty: JWT inside) is refused by the
    // JWS layer: one level only.
    let mut header = signer.header();
    header["cty"] = "JWT".into();
    let inner = signer.sign(&header, &common::claims());
    let token = bob.encrypter(None).encrypt_nested(&inner).unwrap();
    assert_eq!(
        verifier.verify(&token, NOW).err(),
        Some(Error::UnsupportedHeader { name: "cty" })
    );
    // Encryption required: a plain JWS is refused.
    assert_eq!(
        verifier.verify(&signer.token(), NOW).err(),
        Some(Error::EncryptionMismatch)
    );
    // A verifier without a decrypter refuses the JWE as before.
    let plain = common::verifier(&[&signer]);
    let token = bob.encrypter(None).encrypt_nested(&signer.token()).unwrap();
    assert_eq!(
        plain.verify(&token, NOW).err(),
        Some(Error::MalformedToken("JWE is not supported"))
    );
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}
