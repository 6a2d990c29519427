//! Test keys and token builders: real keys from aws-lc-rs, tokens assembled
//! by hand so a test can put anything in a header or claims set.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::large_enum_variant,
    dead_code
)]

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair as _};
use aws_lc_rs::{hmac, rsa};
use keygate_verify::{
    Algorithm, ImportOptions, JwkSet, Validation, Verifier, base64url_encode as b64,
};
use serde_json::{Value, json};
use std::sync::OnceLock;

pub const ISS: &str = "https://auth.example.com";
pub const AUD: &str = "api";
pub const NOW: u64 = 1_800_000_000;

pub enum Signer {
    Ec(signature::EcdsaKeyPair),
    Ed(signature::Ed25519KeyPair),
    Rsa(&'static rsa::KeyPair, &'static dyn signature::RsaEncoding),
    Hmac(hmac::Key),
}

pub struct TestKey {
    pub alg: Algorithm,
    pub kid: String,
    pub signer: Signer,
    /// The public JWK (for `oct`, the secret), with `kid`, `alg` and `use`.
    pub jwk: Value,
}

fn ec(alg: Algorithm, kid: &str) -> TestKey {
    let (signing, crv, coord) = match alg {
        Algorithm::ES256 => (&signature::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32),
        Algorithm::ES384 => (&signature::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48),
        _ => (&signature::ECDSA_P521_SHA512_FIXED_SIGNING, "P-521", 66),
    };
    let pair = signature::EcdsaKeyPair::generate(signing).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    let jwk = json!({
        "kty": "EC", "crv": crv, "kid": kid, "alg": alg.name(), "use": "sig",
        "x": b64(&point[1..=coord]), "y": b64(&point[1 + coord..]),
    });
    TestKey {
        alg,
        kid: kid.into(),
        signer: Signer::Ec(pair),
        jwk,
    }
}

pub fn es256(kid: &str) -> TestKey {
    ec(Algorithm::ES256, kid)
}
pub fn es384(kid: &str) -> TestKey {
    ec(Algorithm::ES384, kid)
}
pub fn es512(kid: &str) -> TestKey {
    ec(Algorithm::ES512, kid)
}

pub fn ed25519(kid: &str) -> TestKey {
    let pair = signature::Ed25519KeyPair::generate().unwrap();
    let jwk = json!({
        "kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig",
        "x": b64(pair.public_key().as_ref()),
    });
    TestKey {
        alg: Algorithm::EdDSA,
        kid: kid.into(),
        signer: Signer::Ed(pair),
        jwk,
    }
}

/// One 2048-bit RSA key per test binary: generation is slow.
pub fn rsa_pair() -> &'static rsa::KeyPair {
    static PAIR: OnceLock<rsa::KeyPair> = OnceLock::new();
    PAIR.get_or_init(|| rsa::KeyPair::generate(rsa::KeySize::Rsa2048).unwrap())
}

pub fn rsa_key(alg: Algorithm, kid: &str) -> TestKey {
    let pair = rsa_pair();
    let encoding: &'static dyn signature::RsaEncoding = match alg {
        Algorithm::RS256 => &signature::RSA_PKCS1_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_SHA384,
        _ => &signature::RSA_PSS_SHA512,
    };
    let public = pair.public_key();
    let jwk = json!({
        "kty": "RSA", "kid": kid, "alg": alg.name(), "use": "sig",
        "n": b64(public.modulus().big_endian_without_leading_zero()),
        "e": b64(public.exponent().big_endian_without_leading_zero()),
    });
    TestKey {
        alg,
        kid: kid.into(),
        signer: Signer::Rsa(pair, encoding),
        jwk,
    }
}

pub fn hs(alg: Algorithm, kid: &str, secret: &[u8]) -> TestKey {
    let (hmac_alg, _) = match alg {
        Algorithm::HS256 => (hmac::HMAC_SHA256, 32),
        Algorithm::HS384 => (hmac::HMAC_SHA384, 48),
        _ => (hmac::HMAC_SHA512, 64),
    };
    let jwk = json!({"kty": "oct", "kid": kid, "alg": alg.name(), "use": "sig", "k": b64(secret)});
    TestKey {
        alg,
        kid: kid.into(),
        signer: Signer::Hmac(hmac::Key::new(hmac_alg, secret)),
        jwk,
    }
}

impl TestKey {
    /// Signs `signing_input` with this key's primitive.
    pub fn sign_bytes(&self, input: &[u8]) -> Vec<u8> {
        match &self.signer {
            Signer::Ec(pair) => pair
                .sign(&SystemRandom::new(), input)
                .unwrap()
                .as_ref()
                .to_vec(),
            Signer::Ed(pair) => pair.sign(input).as_ref().to_vec(),
            Signer::Rsa(pair, encoding) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(*encoding, &SystemRandom::new(), input, &mut sig)
                    .unwrap();
                sig
            }
            Signer::Hmac(key) => hmac::sign(key, input).as_ref().to_vec(),
        }
    }

    /// A compact token from raw header and payload texts.
    pub fn sign_raw(&self, header: &str, payload: &[u8]) -> String {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(payload));
        let sig = self.sign_bytes(input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }

    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(&header.to_string(), claims.to_string().as_bytes())
    }

    /// The access-token header keygate issues: alg, kid, typ at+jwt.
    pub fn header(&self) -> Value {
        json!({"alg": self.alg.name(), "kid": self.kid, "typ": "at+jwt"})
    }

    /// A valid access token at [`NOW`].
    pub fn token(&self) -> String {
        self.sign(&self.header(), &claims())
    }

    /// The public key as SubjectPublicKeyInfo DER (asymmetric keys only).
    pub fn spki_der(&self) -> Vec<u8> {
        match &self.signer {
            Signer::Ec(pair) => pair.public_key().as_der().unwrap().as_ref().to_vec(),
            Signer::Ed(pair) => pair.public_key().as_der().unwrap().as_ref().to_vec(),
            Signer::Rsa(pair, _) => pair.public_key().as_der().unwrap().as_ref().to_vec(),
            Signer::Hmac(_) => panic!("no public key"),
        }
    }

    /// The raw public key bytes: the EC point, the Ed25519 key, the PKCS#1
    /// RSAPublicKey.
    pub fn raw_public(&self) -> Vec<u8> {
        match &self.signer {
            Signer::Ec(pair) => pair.public_key().as_ref().to_vec(),
            Signer::Ed(pair) => pair.public_key().as_ref().to_vec(),
            Signer::Rsa(pair, _) => pair.public_key().as_ref().to_vec(),
            Signer::Hmac(_) => panic!("no public key"),
        }
    }
}

/// Claims of a valid access token at [`NOW`].
pub fn claims() -> Value {
    json!({
        "iss": ISS, "sub": "user-1", "aud": AUD, "exp": NOW + 600,
        "iat": NOW - 10, "nbf": NOW - 10, "jti": "token-1",
        "roles": ["reader"], "tenant": "acme",
    })
}

/// `claims()` with `name` replaced (or removed when `value` is `None`).
pub fn claims_with(name: &str, value: Option<Value>) -> Value {
    let mut claims = claims();
    let map = claims.as_object_mut().unwrap();
    match value {
        Some(value) => map.insert(name.into(), value),
        None => map.remove(name),
    };
    claims
}

pub fn jwks(keys: &[&TestKey]) -> Vec<u8> {
    let keys: Vec<Value> = keys.iter().map(|k| k.jwk.clone()).collect();
    json!({ "keys": keys }).to_string().into_bytes()
}

pub fn verifier_with(keys: &[&TestKey], validation: Validation) -> Verifier {
    let symmetric = keys.iter().any(|k| k.alg.is_symmetric());
    let options = if symmetric {
        ImportOptions::local_file()
    } else {
        ImportOptions::remote()
    };
    let set = JwkSet::from_json(&jwks(keys), &options).unwrap();
    assert!(set.skipped().is_empty(), "{:?}", set.skipped());
    Verifier::new(set, validation).unwrap()
}

pub fn verifier(keys: &[&TestKey]) -> Verifier {
    verifier_with(keys, Validation::new(ISS, AUD))
}

/// Splits a token into its three segments.
pub fn segments(token: &str) -> (String, String, String) {
    let parts: Vec<&str> = token.split('.').collect();
    (parts[0].into(), parts[1].into(), parts[2].into())
}
