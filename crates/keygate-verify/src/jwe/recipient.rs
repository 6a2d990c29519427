//! The sender's view of a recipient: its public key (a JWK), bound to the
//! one key management algorithm tokens to it are encrypted with.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{self, PublicKeyComponents};
use std::fmt;

use super::algs::{KeyKind, KeyManagement};
use super::key::{Curve, member};
use crate::jwk::Jwk;
use crate::{Error, rsa_key};

/// The public part of a recipient: what a sender encrypts to.
pub(crate) enum Public {
    Ec(Curve, Vec<u8>),
    Rsa(rsa::OaepPublicEncryptingKey),
}

/// A recipient's public key (a JWK), bound to the one key management
/// algorithm tokens to it are encrypted with: its own `alg` when it names
/// one, else ECDH-ES+A256KW for EC and RSA-OAEP-256 for RSA.
pub struct RecipientKey {
    kid: Option<String>,
    alg: KeyManagement,
    pub(crate) public: Public,
}

impl fmt::Debug for RecipientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecipientKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg.name())
            .finish_non_exhaustive()
    }
}

impl RecipientKey {
    /// Imports a public JWK. Private members are refused (a sender must
    /// never hold the recipient's private key), as are `oct` keys.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, Error> {
        if jwk.has_private_members() {
            return Err(Error::PrivateKeyMaterial);
        }
        if jwk.use_.as_deref().is_some_and(|u| u != "enc") {
            return Err(Error::InvalidKey("use is not enc"));
        }
        if jwk.kid.as_ref().is_some_and(|kid| kid.is_empty()) {
            return Err(Error::InvalidKey("kid is empty or too long"));
        }
        let (kind, public, default_alg) = match jwk.kty.as_str() {
            "EC" | "OKP" => {
                let curve = if jwk.kty == "EC" {
                    Curve::from_crv(jwk.crv.as_deref())?
                } else {
                    Curve::from_okp_crv(jwk.crv.as_deref())?
                };
                let (point, _) = curve.public_of(jwk)?;
                (
                    KeyKind::Ec,
                    Public::Ec(curve, point),
                    KeyManagement::EcdhEsA256Kw,
                )
            }
            "RSA" => (KeyKind::Rsa, rsa_public(jwk)?, KeyManagement::RsaOaep256),
            "oct" => return Err(Error::SymmetricKeyRefused),
            _ => return Err(Error::InvalidKey("unsupported kty")),
        };
        let alg = match jwk.alg.as_deref() {
            None => default_alg,
            Some(name) => {
                let alg =
                    KeyManagement::from_name(name).ok_or(Error::InvalidKey("unsupported alg"))?;
                if alg.key_kind() != kind {
                    return Err(Error::InvalidKey("alg does not match kty"));
                }
                alg
            }
        };
        Ok(Self {
            kid: jwk.kid.clone(),
            alg,
            public,
        })
    }

    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key management algorithm tokens to this key use.
    #[must_use]
    pub fn alg(&self) -> KeyManagement {
        self.alg
    }
}

fn rsa_public(jwk: &Jwk) -> Result<Public, Error> {
    let n = member(jwk.n.as_deref())?;
    let e = member(jwk.e.as_deref())?;
    rsa_key::check_components(&n, &e)?;
    let der = PublicKeyComponents { n: &n, e: &e }
        .as_der()
        .map_err(|_| Error::InvalidKey("invalid RSA key"))?;
    let key = rsa::PublicEncryptingKey::from_der(der.as_ref())
        .map_err(|_| Error::InvalidKey("invalid RSA key"))?;
    rsa::OaepPublicEncryptingKey::new(key)
        .map(Public::Rsa)
        .map_err(|_| Error::InvalidKey("invalid RSA key"))
}
