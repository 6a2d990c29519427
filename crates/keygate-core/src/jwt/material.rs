//! Signing-key material: generation, the sealed stored form, the public JWK
//! and its RFC 7638 thumbprint, and signing. Everything cryptographic goes
//! through aws-lc-rs, the same library keygate-verify checks signatures with.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
};
use aws_lc_rs::{hmac, rsa};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::keys::apikey::{random_bytes, random_id};
use crate::sealed::MasterKey;

/// The algorithms keygate issues tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    ES256,
    EdDSA,
    RS256,
    /// For one process's own use only: never published in the JWKS.
    HS256,
}

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::EdDSA => "EdDSA",
            SigningAlg::RS256 => "RS256",
            SigningAlg::HS256 => "HS256",
        }
    }

    pub fn parse(name: &str) -> Result<Self, Error> {
        match name {
            "ES256" => Ok(SigningAlg::ES256),
            "EdDSA" => Ok(SigningAlg::EdDSA),
            "RS256" => Ok(SigningAlg::RS256),
            "HS256" => Ok(SigningAlg::HS256),
            other => Err(Error::invalid(
                "jwt_algorithm",
                format!("{other:?} is not one of ES256, EdDSA, RS256, HS256"),
            )),
        }
    }

    /// Whether the public half may be published (asymmetric algorithms only).
    pub fn is_published(self) -> bool {
        self != SigningAlg::HS256
    }
}

/// A key generated for signing: the public JWK (when asymmetric), the kid and
/// the private part, still in the clear. Only [`NewSigningKey::seal`] leaves
/// this process.
pub struct NewSigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    /// Public JWK JSON with `kid`, `use`, `alg`; empty for HS256.
    pub public_jwk: String,
    private: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for NewSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NewSigningKey({} {}, redacted)",
            self.alg.as_str(),
            self.kid
        )
    }
}

const HS256_SECRET_BYTES: usize = 32;

impl NewSigningKey {
    /// A fresh key from the OS CSPRNG (RSA: 2048 bits).
    pub fn generate(alg: SigningAlg) -> Result<Self, Error> {
        let (private, public) = match alg {
            SigningAlg::ES256 => p256_pair()?,
            SigningAlg::EdDSA => ed25519_pair()?,
            SigningAlg::RS256 => rsa_pair()?,
            SigningAlg::HS256 => {
                let mut secret = Zeroizing::new(vec![0u8; HS256_SECRET_BYTES]);
                random_bytes(&mut secret)?;
                (secret, None)
            }
        };
        let (kid, public_jwk) = match public {
            Some(parts) => {
                let kid = parts.thumbprint();
                let jwk = parts.jwk(&kid, alg);
                (kid, jwk)
            }
            // A thumbprint of a symmetric key would be a hash of the secret;
            // a random id says nothing about it.
            None => (random_id("hs_", 22)?, String::new()),
        };
        Ok(Self {
            kid,
            alg,
            public_jwk,
            private,
        })
    }

    /// The private part sealed under the master key, bound to this kid.
    pub fn seal(&self, master: &MasterKey) -> Result<Vec<u8>, Error> {
        master.seal(&self.private, &sealing_label(&self.kid))
    }

    /// Ready to sign, without a storage round-trip.
    pub fn signer(&self) -> Result<Signer, Error> {
        Signer::from_private(self.alg, &self.kid, &self.private)
    }
}

pub(crate) fn sealing_label(kid: &str) -> String {
    format!("signing-key:{kid}")
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A generated key pair: the private key as PKCS#8 DER, and the public
/// parameters its JWK shows.
type Pair = (Zeroizing<Vec<u8>>, Option<PublicParts>);

fn failed(what: &str) -> Error {
    Error::Internal(format!("{what} key generation failed"))
}

fn p256_pair() -> Result<Pair, Error> {
    let pair =
        EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| failed("P-256"))?;
    let der = pair.to_pkcs8v1().map_err(|_| failed("P-256"))?;
    let point = pair.public_key().as_ref();
    // Uncompressed point: 0x04 || x (32) || y (32).
    let (x, y) = match point {
        [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
        _ => return Err(failed("P-256")),
    };
    let public = PublicParts::Ec {
        x: b64(x),
        y: b64(y),
    };
    Ok((Zeroizing::new(der.as_ref().to_vec()), Some(public)))
}

fn ed25519_pair() -> Result<Pair, Error> {
    let pair = Ed25519KeyPair::generate().map_err(|_| failed("Ed25519"))?;
    let der = pair.to_pkcs8().map_err(|_| failed("Ed25519"))?;
    let x = b64(pair.public_key().as_ref());
    Ok((
        Zeroizing::new(der.as_ref().to_vec()),
        Some(PublicParts::Okp { x }),
    ))
}

fn rsa_pair() -> Result<Pair, Error> {
    let pair = rsa::KeyPair::generate(rsa::KeySize::Rsa2048).map_err(|_| failed("RSA"))?;
    let der = pair.as_der().map_err(|_| failed("RSA"))?;
    let public = pair.public_key();
    let n = b64(public.modulus().big_endian_without_leading_zero());
    let e = b64(public.exponent().big_endian_without_leading_zero());
    Ok((
        Zeroizing::new(der.as_ref().to_vec()),
        Some(PublicParts::Rsa { n, e }),
    ))
}

enum PublicParts {
    Ec { x: String, y: String },
    Okp { x: String },
    Rsa { n: String, e: String },
}

impl PublicParts {
    /// RFC 7638: SHA-256 over the required members, in lexicographic order,
    /// with no whitespace. Values are base64url strings and fixed names, so
    /// no JSON escaping can arise.
    fn thumbprint(&self) -> String {
        let canonical = match self {
            PublicParts::Ec { x, y } => {
                format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#)
            }
            PublicParts::Okp { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
            PublicParts::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
        };
        b64(&Sha256::digest(canonical.as_bytes()))
    }

    fn jwk(&self, kid: &str, alg: SigningAlg) -> String {
        let mut jwk = match self {
            PublicParts::Ec { x, y } => {
                serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y})
            }
            PublicParts::Okp { x } => serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
            PublicParts::Rsa { n, e } => serde_json::json!({"kty": "RSA", "n": n, "e": e}),
        };
        if let Some(map) = jwk.as_object_mut() {
            map.insert("kid".into(), kid.into());
            map.insert("use".into(), "sig".into());
            map.insert("alg".into(), alg.as_str().into());
        }
        jwk.to_string()
    }
}

/// An opened private key that signs JWS compact tokens.
pub struct Signer {
    kid: String,
    alg: SigningAlg,
    key: SignerKey,
}

enum SignerKey {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(rsa::KeyPair),
    Hmac(Box<(hmac::Key, Zeroizing<Vec<u8>>)>),
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({} {}, redacted)", self.alg.as_str(), self.kid)
    }
}

impl Signer {
    /// Opens a sealed private key stored for `kid`.
    pub fn open(
        alg: SigningAlg,
        kid: &str,
        sealed: &[u8],
        master: &MasterKey,
    ) -> Result<Self, Error> {
        let private = master.open(sealed, &sealing_label(kid))?;
        Self::from_private(alg, kid, &private)
    }

    fn from_private(alg: SigningAlg, kid: &str, private: &[u8]) -> Result<Self, Error> {
        let bad = || Error::Internal(format!("signing key {kid} does not load"));
        let key = match alg {
            SigningAlg::ES256 => SignerKey::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, private)
                    .map_err(|_| bad())?,
            ),
            SigningAlg::EdDSA => {
                SignerKey::Ed(Ed25519KeyPair::from_pkcs8(private).map_err(|_| bad())?)
            }
            SigningAlg::RS256 => {
                SignerKey::Rsa(rsa::KeyPair::from_pkcs8(private).map_err(|_| bad())?)
            }
            SigningAlg::HS256 => {
                if private.len() < HS256_SECRET_BYTES {
                    return Err(bad());
                }
                SignerKey::Hmac(Box::new((
                    hmac::Key::new(hmac::HMAC_SHA256, private),
                    Zeroizing::new(private.to_vec()),
                )))
            }
        };
        Ok(Self {
            kid: kid.to_owned(),
            alg,
            key,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// For HS256, the key this process verifies its own tokens with (the
    /// secret is never published).
    pub(crate) fn hmac_verifying_key(&self) -> Option<keygate_verify::VerifyingKey> {
        match &self.key {
            SignerKey::Hmac(hmac_key) => keygate_verify::VerifyingKey::from_hmac_secret(
                keygate_verify::Algorithm::HS256,
                &hmac_key.1,
                Some(self.kid.clone()),
            )
            .ok(),
            _ => None,
        }
    }

    /// Signs `header.payload` (both already base64url) and returns the token.
    pub fn sign_compact(&self, signing_input: String) -> Result<String, Error> {
        let input = signing_input.as_bytes();
        let failed = || Error::Internal("signing failed".into());
        let signature: Vec<u8> = match &self.key {
            SignerKey::Ec(pair) => pair
                .sign(&SystemRandom::new(), input)
                .map_err(|_| failed())?
                .as_ref()
                .to_vec(),
            SignerKey::Ed(pair) => pair.sign(input).as_ref().to_vec(),
            SignerKey::Rsa(pair) => {
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input, &mut out)
                    .map_err(|_| failed())?;
                out
            }
            SignerKey::Hmac(hmac_key) => hmac::sign(&hmac_key.0, input).as_ref().to_vec(),
        };
        let mut token = signing_input;
        token.push('.');
        token.push_str(&b64(&signature));
        Ok(token)
    }

    /// Signs a JWT: header `{alg, kid, typ}` and the given claims object.
    pub fn sign_jwt(&self, typ: &str, claims: &serde_json::Value) -> Result<String, Error> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'a str,
            kid: &'a str,
            typ: &'a str,
        }
        let header = serde_json::to_vec(&Header {
            alg: self.alg.as_str(),
            kid: &self.kid,
            typ,
        })
        .map_err(|e| Error::Internal(e.to_string()))?;
        let payload = serde_json::to_vec(claims).map_err(|e| Error::Internal(e.to_string()))?;
        let mut input = b64(&header);
        input.push('.');
        input.push_str(&b64(&payload));
        self.sign_compact(input)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use keygate_verify::{ImportOptions, JwkSet, Validation, Verifier};

    fn verifier_for(key: &NewSigningKey) -> Verifier {
        let set = format!(r#"{{"keys":[{}]}}"#, key.public_jwk);
        let keys = JwkSet::from_json(set.as_bytes(), &ImportOptions::remote()).unwrap();
        assert_eq!(keys.keys().len(), 1);
        Verifier::new(keys, Validation::new("https://issuer.test", "api")).unwrap()
    }

    #[test]
    fn every_published_algorithm_signs_what_keygate_verify_accepts() {
        for alg in [SigningAlg::ES256, SigningAlg::EdDSA, SigningAlg::RS256] {
            let key = NewSigningKey::generate(alg).unwrap();
            let jwk: serde_json::Value = serde_json::from_str(&key.public_jwk).unwrap();
            assert_eq!(jwk["kid"], key.kid.as_str());
            assert_eq!(jwk["alg"], alg.as_str());
            assert_eq!(jwk["use"], "sig");
            assert!(jwk.get("d").is_none() && jwk.get("p").is_none());
            let (master, _) = MasterKey::generate().unwrap();
            let sealed = key.seal(&master).unwrap();
            let signer = Signer::open(alg, &key.kid, &sealed, &master).unwrap();
            let claims = serde_json::json!({
                "iss": "https://issuer.test", "aud": "api", "sub": "u1",
                "iat": 1_700_000_000, "exp": 1_700_000_600,
            });
            let token = signer.sign_jwt("at+jwt", &claims).unwrap();
            let verified = verifier_for(&key).verify(&token, 1_700_000_100).unwrap();
            assert_eq!(verified.sub.as_deref(), Some("u1"), "{alg:?}");
            // Bound to its kid: the sealed key does not open under another.
            assert!(Signer::open(alg, "other", &sealed, &master).is_err());
        }
    }

    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        // RFC 7638 §3.1: the example RSA key and its thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let parts = PublicParts::Rsa {
            n: n.into(),
            e: "AQAB".into(),
        };
        assert_eq!(
            parts.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn hs256_keys_are_never_published_and_debug_is_redacted() {
        let key = NewSigningKey::generate(SigningAlg::HS256).unwrap();
        assert!(key.public_jwk.is_empty());
        assert!(!SigningAlg::HS256.is_published());
        assert!(format!("{key:?}").contains("redacted"));
        let signer = key.signer().unwrap();
        assert!(signer.hmac_verifying_key().is_some());
        assert!(format!("{signer:?}").contains("redacted"));
    }
}
