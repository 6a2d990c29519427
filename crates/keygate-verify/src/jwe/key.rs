//! The recipient's private [`DecryptionKey`] (a JWK, PKCS#8 DER or PEM),
//! and the curves ECDH-ES runs on. The sender's view, the public key, is
//! in `recipient`.
//!
//! As with signing keys, import binds the algorithms: a key that names its
//! `alg` serves that one only (an `oct` key naming an `enc`, as RFC 7520
//! §5.6 does, serves `dir` with that `enc` only), a key without one serves
//! the algorithms of its type. EC keys are checked whole: `d` must produce
//! exactly the published `x`/`y`, and every point is validated by aws-lc.

use aws_lc_rs::agreement;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{self, KeyPairComponents, PublicKeyComponents};
use std::fmt;

use super::algs::{ContentEncryption, KeyKind, KeyManagement};
use crate::jwk::Jwk;
use crate::{Error, b64, rsa_key};

/// A curve usable for ECDH-ES: the NIST curves (`kty: "EC"`), and X25519
/// (`kty: "OKP"`, RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
    P521,
    X25519,
}

impl Curve {
    /// The curve of an `EC` key.
    pub(crate) fn from_crv(crv: Option<&str>) -> Result<Self, Error> {
        match crv {
            Some("P-256") => Ok(Self::P256),
            Some("P-384") => Ok(Self::P384),
            Some("P-521") => Ok(Self::P521),
            _ => Err(Error::InvalidKey("unsupported EC curve")),
        }
    }

    /// The curve of an `OKP` key: X25519 only (Ed25519 signs, X448 is not
    /// in aws-lc-rs).
    pub(crate) fn from_okp_crv(crv: Option<&str>) -> Result<Self, Error> {
        match crv {
            Some("X25519") => Ok(Self::X25519),
            _ => Err(Error::InvalidKey("unsupported OKP curve (X25519 only)")),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
            Self::X25519 => "X25519",
        }
    }

    /// The `kty` of the curve's JWKs.
    pub(crate) fn kty(self) -> &'static str {
        match self {
            Self::X25519 => "OKP",
            _ => "EC",
        }
    }

    pub(crate) fn agreement(self) -> &'static agreement::Algorithm {
        match self {
            Self::P256 => &agreement::ECDH_P256,
            Self::P384 => &agreement::ECDH_P384,
            Self::P521 => &agreement::ECDH_P521,
            Self::X25519 => &agreement::X25519,
        }
    }

    pub(crate) fn coord_len(self) -> usize {
        match self {
            Self::P256 | Self::X25519 => 32,
            Self::P384 => 48,
            Self::P521 => 66,
        }
    }

    /// An X25519 public key from an `OKP` JWK's `x` (32 bytes), parsed.
    /// Points of small order are not refused here: the agreement with one
    /// is all zeros, which aws-lc refuses (RFC 7748 §6.1's check).
    pub(crate) fn parse_okp(
        self,
        x: &[u8],
    ) -> Result<(Vec<u8>, agreement::ParsedPublicKey), Error> {
        if self != Self::X25519 || x.len() != 32 {
            return Err(Error::InvalidKey("OKP key has the wrong length"));
        }
        let parsed = agreement::ParsedPublicKey::try_from(&agreement::UnparsedPublicKey::new(
            self.agreement(),
            x,
        ))
        .map_err(|_| Error::InvalidKey("invalid X25519 public key"))?;
        Ok((x.to_vec(), parsed))
    }

    /// The public key in a JWK of this curve: `x` and `y` for EC, `x`
    /// alone for OKP.
    pub(crate) fn public_of(
        self,
        jwk: &Jwk,
    ) -> Result<(Vec<u8>, agreement::ParsedPublicKey), Error> {
        if self == Self::X25519 {
            if jwk.y.is_some() {
                return Err(Error::InvalidKey("an OKP key has no y"));
            }
            return self.parse_okp(&member(jwk.x.as_deref())?);
        }
        self.parse_point(&member(jwk.x.as_deref())?, &member(jwk.y.as_deref())?)
    }

    #[cfg(test)]
    pub(crate) fn point(self, x: &[u8], y: &[u8]) -> Result<Vec<u8>, Error> {
        self.parse_point(x, y).map(|(point, _)| point)
    }

    /// The uncompressed SEC1 point `04 || x || y` from JWK members of
    /// exactly the curve's length, validated (on the curve, not the
    /// identity) by aws-lc: the invalid-curve attack stops here. With the
    /// parsed key, so an agreement does not parse the point a second time.
    pub(crate) fn parse_point(
        self,
        x: &[u8],
        y: &[u8],
    ) -> Result<(Vec<u8>, agreement::ParsedPublicKey), Error> {
        let coord = self.coord_len();
        if x.len() != coord || y.len() != coord {
            return Err(Error::InvalidKey("EC coordinate has the wrong length"));
        }
        let mut point = Vec::with_capacity(1 + 2 * coord);
        point.push(0x04);
        point.extend_from_slice(x);
        point.extend_from_slice(y);
        let parsed = agreement::ParsedPublicKey::try_from(&agreement::UnparsedPublicKey::new(
            self.agreement(),
            &point,
        ))
        .map_err(|_| Error::InvalidKey("EC point is not on the curve"))?;
        Ok((point, parsed))
    }
}

/// The private part of a [`DecryptionKey`].
pub(crate) enum Private {
    Ec(Curve, agreement::PrivateKey),
    Rsa(rsa::OaepPrivateDecryptingKey),
    /// The `oct` secret: a key-wrap key, or the CEK itself for `dir`.
    Symmetric(Vec<u8>),
}

/// A recipient's private key, bound to the key management algorithms it
/// may be used with. `Debug` shows no key material.
pub struct DecryptionKey {
    kid: Option<String>,
    algs: Vec<KeyManagement>,
    /// For `dir`: the one `enc` the key is the CEK of, when named.
    dir_enc: Option<ContentEncryption>,
    pub(crate) private: Private,
}

impl fmt::Debug for DecryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptionKey")
            .field("kid", &self.kid)
            .field("algs", &self.algs)
            .finish_non_exhaustive()
    }
}

impl DecryptionKey {
    /// Imports a private JWK (`EC`, `RSA` or `oct`); `use` must be `enc`
    /// when present.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, Error> {
        if jwk.use_.as_deref().is_some_and(|u| u != "enc") {
            return Err(Error::InvalidKey("use is not enc"));
        }
        if let Some(ops) = &jwk.key_ops {
            let usable = ["decrypt", "unwrapKey", "deriveKey", "deriveBits"];
            if !ops.iter().any(|op| usable.contains(&op.as_str())) {
                return Err(Error::InvalidKey("key_ops allows no decryption"));
            }
        }
        if jwk.kid.as_ref().is_some_and(|kid| kid.is_empty()) {
            return Err(Error::InvalidKey("kid is empty or too long"));
        }
        let (own_alg, dir_enc) = match jwk.alg.as_deref() {
            None => (None, None),
            Some(name) => match (
                KeyManagement::from_name(name),
                ContentEncryption::from_name(name),
            ) {
                (Some(alg), _) => (Some(alg), None),
                (None, Some(enc)) if jwk.kty == "oct" => (Some(KeyManagement::Dir), Some(enc)),
                _ => return Err(Error::InvalidKey("unsupported alg")),
            },
        };
        let (kind, private) = match jwk.kty.as_str() {
            "EC" => (
                KeyKind::Ec,
                ec_private(jwk, Curve::from_crv(jwk.crv.as_deref())?)?,
            ),
            "OKP" => (
                KeyKind::Ec,
                ec_private(jwk, Curve::from_okp_crv(jwk.crv.as_deref())?)?,
            ),
            "RSA" => (KeyKind::Rsa, rsa_private(jwk)?),
            "oct" => (
                KeyKind::Symmetric,
                Private::Symmetric(member(jwk.k.as_deref())?),
            ),
            _ => return Err(Error::InvalidKey("unsupported kty")),
        };
        let algs = match own_alg {
            Some(alg) if alg.key_kind() != kind => {
                return Err(Error::InvalidKey("alg does not match kty"));
            }
            Some(alg) => vec![alg],
            None => KeyManagement::ALL
                .into_iter()
                .filter(|alg| alg.key_kind() == kind)
                .collect(),
        };
        let key = Self {
            kid: jwk.kid.clone(),
            algs,
            dir_enc,
            private,
        };
        key.check_symmetric_length()?;
        Ok(key)
    }

    /// Imports a PKCS#8 (or, for EC, RFC 5915; for RSA, PKCS#1) private key
    /// in DER; it serves every algorithm of its type.
    pub fn from_der(der: &[u8], kid: Option<String>) -> Result<Self, Error> {
        let (kind, private) = if let Some(rsa) = rsa_from_der(der) {
            (KeyKind::Rsa, Private::Rsa(rsa))
        } else {
            let curve = [Curve::P256, Curve::P384, Curve::P521, Curve::X25519]
                .into_iter()
                .find_map(|curve| {
                    agreement::PrivateKey::from_private_key_der(curve.agreement(), der)
                        .ok()
                        .map(|key| (curve, key))
                });
            let (curve, key) =
                curve.ok_or(Error::InvalidKey("not an RSA, EC or X25519 private key"))?;
            (KeyKind::Ec, Private::Ec(curve, key))
        };
        Ok(Self {
            kid,
            algs: KeyManagement::ALL
                .into_iter()
                .filter(|alg| alg.key_kind() == kind)
                .collect(),
            dir_enc: None,
            private,
        })
    }

    /// Imports a PEM `PRIVATE KEY`, `EC PRIVATE KEY` or `RSA PRIVATE KEY`.
    pub fn from_pem(pem: &str, kid: Option<String>) -> Result<Self, Error> {
        Self::from_der(&pem_body(pem)?, kid)
    }

    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key management algorithms this key may be used with.
    #[must_use]
    pub fn algorithms(&self) -> &[KeyManagement] {
        &self.algs
    }

    /// Whether this key may decrypt a token of `alg` and `enc`: the
    /// algorithm is bound to it, and a secret has the exact length the
    /// algorithm needs (a 16-byte key never serves `A256KW`).
    pub(crate) fn serves(&self, alg: KeyManagement, enc: ContentEncryption) -> bool {
        self.algs.contains(&alg)
            && match &self.private {
                Private::Symmetric(secret) => secret_fits(secret.len(), alg, enc, self.dir_enc),
                _ => true,
            }
    }

    fn check_symmetric_length(&self) -> Result<(), Error> {
        let Private::Symmetric(secret) = &self.private else {
            return Ok(());
        };
        let fits = |alg: &KeyManagement| {
            ContentEncryption::ALL
                .into_iter()
                .any(|enc| secret_fits(secret.len(), *alg, enc, self.dir_enc))
        };
        if !self.algs.iter().any(fits) {
            return Err(Error::InvalidKey(
                "oct key has the wrong length for its alg",
            ));
        }
        Ok(())
    }
}

fn secret_fits(
    len: usize,
    alg: KeyManagement,
    enc: ContentEncryption,
    dir_enc: Option<ContentEncryption>,
) -> bool {
    match alg {
        KeyManagement::Dir => dir_enc.is_none_or(|e| e == enc) && len == enc.key_len(),
        _ => alg.wrap_key_len() == Some(len),
    }
}

pub(crate) fn member(text: Option<&str>) -> Result<Vec<u8>, Error> {
    let text = text.ok_or(Error::InvalidKey("required member missing"))?;
    b64::decode(text).ok_or(Error::InvalidKey("member is not strict base64url"))
}

fn private_member(value: Option<&serde_json::Value>) -> Result<Vec<u8>, Error> {
    member(value.and_then(serde_json::Value::as_str))
}

/// An EC or X25519 private key, checked whole: `d` must produce exactly
/// the published public key.
fn ec_private(jwk: &Jwk, curve: Curve) -> Result<Private, Error> {
    let d = private_member(jwk.d.as_ref())?;
    if d.len() != curve.coord_len() {
        return Err(Error::InvalidKey("EC private key has the wrong length"));
    }
    let (point, _) = curve.public_of(jwk)?;
    let key = agreement::PrivateKey::from_private_key(curve.agreement(), &d)
        .map_err(|_| Error::InvalidKey("invalid EC private key"))?;
    let public = key
        .compute_public_key()
        .map_err(|_| Error::InvalidKey("invalid EC private key"))?;
    if public.as_ref() != point.as_slice() {
        return Err(Error::InvalidKey("EC private key does not match x and y"));
    }
    Ok(Private::Ec(curve, key))
}

/// aws-lc-rs builds an RSA private key from components only as a signing
/// `KeyPair`; its PKCS#8 form is what the decrypting key is parsed from.
fn rsa_private(jwk: &Jwk) -> Result<Private, Error> {
    let n = member(jwk.n.as_deref())?;
    let e = member(jwk.e.as_deref())?;
    rsa_key::check_components(&n, &e)?;
    if jwk.oth.is_some() {
        return Err(Error::InvalidKey("multi-prime RSA keys are not supported"));
    }
    let components = KeyPairComponents {
        public_key: PublicKeyComponents { n: &n, e: &e },
        d: private_member(jwk.d.as_ref())?,
        p: private_member(jwk.p.as_ref())?,
        q: private_member(jwk.q.as_ref())?,
        dP: private_member(jwk.dp.as_ref())?,
        dQ: private_member(jwk.dq.as_ref())?,
        qInv: private_member(jwk.qi.as_ref())?,
    };
    let pair = rsa::KeyPair::from_components(&components)
        .map_err(|_| Error::InvalidKey("invalid RSA private key"))?;
    let der = pair
        .as_der()
        .map_err(|_| Error::InvalidKey("invalid RSA private key"))?;
    rsa_from_der(der.as_ref())
        .map(Private::Rsa)
        .ok_or(Error::InvalidKey("invalid RSA private key"))
}

fn rsa_from_der(der: &[u8]) -> Option<rsa::OaepPrivateDecryptingKey> {
    let key = rsa::PrivateDecryptingKey::from_pkcs8(der)
        .ok()
        .or_else(|| {
            // PKCS#1 (`RSA PRIVATE KEY`): through the signing key pair's PKCS#8.
            let pair = rsa::KeyPair::from_der(der).ok()?;
            let pkcs8 = pair.as_der().ok()?;
            rsa::PrivateDecryptingKey::from_pkcs8(pkcs8.as_ref()).ok()
        })?;
    rsa::OaepPrivateDecryptingKey::new(key).ok()
}

/// The DER inside one PEM block of a private-key label. Hand-written: a
/// PEM crate would be a dependency for twenty lines of base64.
fn pem_body(pem: &str) -> Result<Vec<u8>, Error> {
    use base64::Engine as _;
    let bad = Error::InvalidKey("not a PEM private key");
    let mut lines = pem.lines().map(str::trim).skip_while(|l| l.is_empty());
    let label = lines
        .next()
        .and_then(|l| l.strip_prefix("-----BEGIN "))
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or(bad.clone())?;
    if !["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"].contains(&label) {
        return Err(bad);
    }
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    for line in lines.by_ref() {
        if line == end {
            return base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|_| bad);
        }
        body.push_str(line);
    }
    Err(bad)
}
