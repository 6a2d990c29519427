//! Nested JWTs end to end: keygate-shaped access tokens signed (the same
//! test keys as the JWS suite), encrypted to the application's key, then
//! decrypted and verified by `Verifier` into the same claims.

use aws_lc_rs::agreement;
use keygate_verify::jwe::{ContentEncryption, Decrypter, DecryptionKey, KeyManagement};
use keygate_verify::{Encryption, base64url_encode as b64};
use std::sync::Arc;

use crate::common::{self, NOW};
use crate::jwe_common::{Recipient, ec_recipient, header_of, p256, rsa_recipient};

fn round_trip(recipient: &Recipient, alg: Option<KeyManagement>, enc: ContentEncryption) {
    let signer = common::es256("sig-1");
    let inner = signer.token();
    let token = recipient
        .encrypter(alg)
        .with_enc(enc)
        .encrypt_nested(&inner)
        .unwrap();
    assert_eq!(token.split('.').count(), 5);
    let header = header_of(&token);
    assert_eq!(header["cty"], "JWT");
    assert_eq!(header["enc"], enc.name());
    assert_eq!(header["kid"], recipient.public_jwk["kid"]);
    // Nothing of the claims is readable in the token.
    assert!(!token.contains(&b64(b"user-1")) && !token.contains("user-1"));
    let plain = common::verifier(&[&signer]).verify(&inner, NOW).unwrap();
    let verifier = common::verifier(&[&signer]).with_decryption(
        Arc::new(recipient.decrypter_with(keygate_verify::jwe::JwePolicy::all())),
        Encryption::Optional,
    );
    assert_eq!(verifier.verify(&token, NOW).unwrap(), plain);
    // Optional: the plain token still verifies.
    assert_eq!(verifier.verify(&inner, NOW).unwrap(), plain);
}

#[test]
fn ecdh_es_a256kw_a256gcm_is_the_ec_default() {
    let bob = p256("bob");
    round_trip(&bob, None, ContentEncryption::A256Gcm);
    let signer = common::es256("sig-1");
    let token = bob.encrypter(None).encrypt_nested(&signer.token()).unwrap();
    assert_eq!(header_of(&token)["alg"], "ECDH-ES+A256KW");
    assert_eq!(header_of(&token)["enc"], "A256GCM");
}

#[test]
fn rsa_oaep_256_is_the_rsa_default() {
    let rsa = rsa_recipient();
    round_trip(rsa, None, ContentEncryption::A256Gcm);
    let signer = common::es256("sig-1");
    let token = rsa.encrypter(None).encrypt_nested(&signer.token()).unwrap();
    assert_eq!(header_of(&token)["alg"], "RSA-OAEP-256");
}

#[test]
fn every_sender_algorithm_round_trips() {
    let bob = p256("bob");
    for alg in [
        KeyManagement::EcdhEs,
        KeyManagement::EcdhEsA128Kw,
        KeyManagement::EcdhEsA256Kw,
    ] {
        for enc in ContentEncryption::ALL {
            round_trip(&bob, Some(alg), enc);
        }
    }
    for (curve, crv) in [
        (&agreement::ECDH_P384, "P-384"),
        (&agreement::ECDH_P521, "P-521"),
    ] {
        round_trip(
            &ec_recipient(curve, crv, crv),
            None,
            ContentEncryption::A256Gcm,
        );
    }
    for alg in [KeyManagement::RsaOaep, KeyManagement::RsaOaep256] {
        round_trip(rsa_recipient(), Some(alg), ContentEncryption::A128CbcHs256);
    }
}

#[test]
fn the_application_key_as_pem_or_jwk() {
    use base64::Engine as _;
    let bob = p256("bob");
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&bob.pkcs8)
    );
    let key = DecryptionKey::from_pem(&pem, Some("bob".into())).unwrap();
    let signer = common::es256("sig-1");
    let token = bob.encrypter(None).encrypt_nested(&signer.token()).unwrap();
    let verifier = common::verifier(&[&signer]).with_decryption(
        Arc::new(Decrypter::with_key(key).unwrap()),
        Encryption::Required,
    );
    assert!(verifier.verify(&token, NOW).is_ok());
    // As a private JWK; one whose d does not match its x/y is refused.
    let private_jwk = |recipient: &Recipient, d: &[u8]| {
        let mut jwk = recipient.public_jwk.clone();
        jwk["d"] = b64(d).into();
        keygate_verify::Jwk::from_json(jwk.to_string().as_bytes()).unwrap()
    };
    let d = |recipient: &Recipient| {
        use aws_lc_rs::encoding::{AsBigEndian, EcPrivateKeyBin};
        let key =
            agreement::PrivateKey::from_private_key_der(&agreement::ECDH_P256, &recipient.pkcs8)
                .unwrap();
        let bin: EcPrivateKeyBin = key.as_be_bytes().unwrap();
        bin.as_ref().to_vec()
    };
    let key = DecryptionKey::from_jwk(&private_jwk(&bob, &d(&bob))).unwrap();
    let verifier = common::verifier(&[&signer]).with_decryption(
        Arc::new(Decrypter::with_key(key).unwrap()),
        Encryption::Required,
    );
    assert!(verifier.verify(&token, NOW).is_ok());
    let other = p256("other");
    assert_eq!(
        DecryptionKey::from_jwk(&private_jwk(&bob, &d(&other))).err(),
        Some(keygate_verify::Error::InvalidKey(
            "EC private key does not match x and y"
        ))
    );
    let debug = format!("{:?}", DecryptionKey::from_der(&other.pkcs8, None).unwrap());
    assert!(!debug.contains(&b64(&d(&other))), "{debug}");
    assert!(
        DecryptionKey::from_pem(
            "-----BEGIN PUBLIC KEY-----\nAA\n-----END PUBLIC KEY-----",
            None
        )
        .is_err()
    );
}
