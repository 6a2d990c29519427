//! Recipient keys for the JWE tests: fresh EC and RSA key pairs from
//! aws-lc-rs, as the application holds them (PKCS#8) and as a sender
//! configures them (a public JWK).
#![allow(clippy::unwrap_used, dead_code)]

use aws_lc_rs::agreement;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa;
use aws_lc_rs::signature::KeyPair as _;
use keygate_verify::jwe::{
    Decrypter, DecryptionKey, Encrypter, JwePolicy, KeyManagement, RecipientKey,
};
use keygate_verify::{Jwk, base64url_encode as b64};
use serde_json::{Value, json};
use std::sync::OnceLock;

pub struct Recipient {
    pub pkcs8: Vec<u8>,
    pub public_jwk: Value,
}

impl Recipient {
    pub fn decryption_key(&self) -> DecryptionKey {
        let kid = self.public_jwk["kid"].as_str().map(str::to_owned);
        DecryptionKey::from_der(&self.pkcs8, kid).unwrap()
    }

    pub fn decrypter(&self) -> Decrypter {
        Decrypter::with_key(self.decryption_key()).unwrap()
    }

    pub fn decrypter_with(&self, policy: JwePolicy) -> Decrypter {
        Decrypter::new(vec![self.decryption_key()], policy).unwrap()
    }

    /// The public JWK with `alg` set (or the key type's default).
    pub fn recipient(&self, alg: Option<KeyManagement>) -> RecipientKey {
        let mut jwk = self.public_jwk.clone();
        if let Some(alg) = alg {
            jwk["alg"] = alg.name().into();
        }
        RecipientKey::from_jwk(&Jwk::from_json(jwk.to_string().as_bytes()).unwrap()).unwrap()
    }

    pub fn encrypter(&self, alg: Option<KeyManagement>) -> Encrypter {
        Encrypter::new(self.recipient(alg))
    }
}

pub fn ec_recipient(curve: &'static agreement::Algorithm, crv: &str, kid: &str) -> Recipient {
    let key = agreement::PrivateKey::generate(curve).unwrap();
    let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key)
        .unwrap()
        .as_ref()
        .to_vec();
    let point = key.compute_public_key().unwrap().as_ref().to_vec();
    let coord = (point.len() - 1) / 2;
    Recipient {
        pkcs8,
        public_jwk: json!({
            "kty": "EC", "crv": crv, "kid": kid, "use": "enc",
            "x": b64(&point[1..=coord]), "y": b64(&point[1 + coord..]),
        }),
    }
}

pub fn p256(kid: &str) -> Recipient {
    ec_recipient(&agreement::ECDH_P256, "P-256", kid)
}

/// One RSA-2048 recipient for the whole run (generation takes a while).
pub fn rsa_recipient() -> &'static Recipient {
    static KEY: OnceLock<Recipient> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = rsa::PrivateDecryptingKey::generate(rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = key.as_der().unwrap().as_ref().to_vec();
        let pair = rsa::KeyPair::from_pkcs8(&pkcs8).unwrap();
        let public = rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        Recipient {
            pkcs8,
            public_jwk: json!({
                "kty": "RSA", "kid": "rsa-enc", "use": "enc",
                "n": b64(&public.n), "e": b64(&public.e),
            }),
        }
    })
}

/// Replaces the protected header of a JWE (the rest is kept, so any check
/// that reaches the cryptography fails there).
pub fn with_header(token: &str, header: &Value) -> String {
    let rest = token.split_once('.').unwrap().1;
    format!("{}.{rest}", b64(header.to_string().as_bytes()))
}

/// The decoded protected header of a JWE.
pub fn header_of(token: &str) -> Value {
    use base64::Engine as _;
    let first = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(first)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Replaces segment `index` (0-4) of a JWE.
pub fn with_segment(token: &str, index: usize, value: &str) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[index] = value;
    parts.join(".")
}
