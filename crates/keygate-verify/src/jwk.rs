//! One JSON Web Key (RFC 7517) and its strict import into a [`VerifyingKey`].
//!
//! Import is where algorithms get bound to the key. A key that names its
//! `alg` verifies that one only. A key without one (as several large
//! identity providers publish their RSA keys) verifies those of the
//! caller's [`ImportOptions::algorithms_without_alg`] that fit its type:
//! RS256 alone by default for RSA, PS* only when named, an EC curve's or
//! Ed25519's one algorithm, and HMAC never unless named. Everything a token
//! says later is checked against that binding and can never change it.

use aws_lc_rs::{hmac, signature};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

use crate::alg::{Algorithm, AlgorithmSet, KeyMaterial};
use crate::{Error, b64, json, rsa_key};

/// Longest `kid` accepted, in a key or in a token header.
pub const MAX_KID_LEN: usize = 256;

/// A JWK as published. Private members are kept only so they can be detected
/// (and stripped); nothing ever reads them. `Debug` redacts `k` and them.
#[derive(Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// The symmetric secret of an `oct` key (a private member on any other kty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dq: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qi: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oth: Option<Value>,
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kty", &self.kty)
            .field("crv", &self.crv)
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("use", &self.use_)
            .field("key_ops", &self.key_ops)
            .field("private_members", &self.has_private_members())
            .finish_non_exhaustive()
    }
}

/// How strict an import is. The default is for keys fetched from a URL:
/// public asymmetric keys only. [`ImportOptions::local_file`] is for a file
/// the operator controls (the CLI): `oct` keys are allowed and private
/// members are stripped rather than refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOptions {
    /// Accept `oct` (HMAC) keys.
    pub allow_symmetric: bool,
    /// Ignore private members instead of refusing the key (or set).
    pub strip_private: bool,
    /// What a key without `alg` may verify: those of these algorithms that
    /// fit its type. Never applied to a key that names its own.
    /// [`AlgorithmSet::DEFAULT_WITHOUT_ALG`] unless set.
    pub algorithms_without_alg: AlgorithmSet,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            allow_symmetric: false,
            strip_private: false,
            algorithms_without_alg: AlgorithmSet::DEFAULT_WITHOUT_ALG,
        }
    }
}

impl ImportOptions {
    /// The strict default, for keys from a URL.
    #[must_use]
    pub fn remote() -> Self {
        Self::default()
    }

    /// For a local file: `oct` keys allowed, private members stripped.
    #[must_use]
    pub fn local_file() -> Self {
        Self {
            allow_symmetric: true,
            strip_private: true,
            ..Self::default()
        }
    }

    /// Replaces what keys without `alg` may verify (e.g. add PS256 for an
    /// issuer that signs with PSS, or name HS256 for a bare `oct` key).
    #[must_use]
    pub fn with_algorithms_without_alg(mut self, algs: AlgorithmSet) -> Self {
        self.algorithms_without_alg = algs;
        self
    }
}

/// A trusted key and its `kid`: material bound to one algorithm, or to
/// each of a few when the key was published without `alg`.
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    kid: Option<String>,
    material: KeyMaterial,
    /// Further algorithms of a key published without `alg`, in
    /// [`Algorithm::ALL`]'s order after `material`'s.
    more: Vec<KeyMaterial>,
}

impl VerifyingKey {
    /// An HMAC key from configuration. Secrets shorter than the hash output
    /// (32 bytes for HS256) are refused: `secret`, `changeme` and empty keys
    /// never reach a verifier.
    pub fn from_hmac_secret(
        alg: Algorithm,
        secret: &[u8],
        kid: Option<String>,
    ) -> Result<Self, Error> {
        check_kid(kid.as_deref())?;
        Ok(Self {
            kid,
            material: hmac_material(alg, secret)?,
            more: Vec::new(),
        })
    }

    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm this key verifies (the first, for a key published
    /// without `alg` that verifies several).
    #[must_use]
    pub fn alg(&self) -> Algorithm {
        self.material().alg()
    }

    /// Every algorithm this key verifies.
    #[must_use]
    pub fn algorithms(&self) -> AlgorithmSet {
        self.materials().map(KeyMaterial::alg).collect()
    }

    /// The material for [`Self::alg`].
    #[must_use]
    pub fn material(&self) -> &KeyMaterial {
        &self.material
    }

    /// The material bound to `alg`, if this key verifies it.
    #[must_use]
    pub fn material_for(&self, alg: Algorithm) -> Option<&KeyMaterial> {
        self.materials().find(|m| m.alg() == alg)
    }

    fn materials(&self) -> impl Iterator<Item = &KeyMaterial> {
        std::iter::once(&self.material).chain(&self.more)
    }
}

impl Jwk {
    /// Parses one JWK strictly (duplicate members refused).
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        Self::from_value(json::parse_strict(bytes).map_err(json_error)?)
    }

    pub(crate) fn from_value(value: Value) -> Result<Self, Error> {
        if !value.is_object() {
            return Err(Error::InvalidKey("JWK is not an object"));
        }
        serde_json::from_value(value).map_err(|_| Error::InvalidKey("malformed JWK member"))
    }

    /// True if the key carries private material: `d`, `p`, `q`, `dp`, `dq`,
    /// `qi`, `oth`, or `k` on an asymmetric key.
    #[must_use]
    pub fn has_private_members(&self) -> bool {
        [
            &self.d, &self.p, &self.q, &self.dp, &self.dq, &self.qi, &self.oth,
        ]
        .iter()
        .any(|m| m.is_some())
            || (self.kty != "oct" && self.k.is_some())
    }

    /// The key with every private member removed (an `oct` key keeps `k`:
    /// it has no public part).
    #[must_use]
    pub fn to_public(&self) -> Self {
        Self {
            k: if self.kty == "oct" {
                self.k.clone()
            } else {
                None
            },
            d: None,
            p: None,
            q: None,
            dp: None,
            dq: None,
            qi: None,
            oth: None,
            ..self.clone()
        }
    }

    /// Validates the key and binds it to its algorithm.
    pub fn import(&self, options: &ImportOptions) -> Result<VerifyingKey, Error> {
        if self.has_private_members() && !options.strip_private {
            return Err(Error::PrivateKeyMaterial);
        }
        if self.kty == "oct" && !options.allow_symmetric {
            return Err(Error::SymmetricKeyRefused);
        }
        if self.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err(Error::InvalidKey("use is not sig"));
        }
        if let Some(ops) = &self.key_ops
            && !ops.iter().any(|op| op == "verify")
        {
            return Err(Error::InvalidKey("key_ops lacks verify"));
        }
        check_kid(self.kid.as_deref())?;
        let own_alg = match &self.alg {
            Some(name) => {
                Some(Algorithm::from_name(name).ok_or(Error::InvalidKey("unsupported alg"))?)
            }
            None => None,
        };
        let unbound = options.algorithms_without_alg;
        let mut materials = match self.kty.as_str() {
            "EC" => vec![self.import_ec(own_alg, unbound)?],
            "OKP" => vec![self.import_okp(own_alg, unbound)?],
            "RSA" => {
                let algs = bound_or_fitting(own_alg, unbound, |a| a.rsa_params().is_some())
                    .ok_or(Error::InvalidKey("RSA key without an allowed alg"))?;
                self.import_rsa(&algs)?
            }
            "oct" => {
                let algs = bound_or_fitting(own_alg, unbound, Algorithm::is_symmetric)
                    .ok_or(Error::InvalidKey("oct key needs an alg"))?;
                let secret = decode_member(&self.k)?;
                algs.into_iter()
                    .map(|alg| hmac_material(alg, &secret))
                    .collect::<Result<_, _>>()?
            }
            _ => return Err(Error::InvalidKey("unsupported kty")),
        };
        if materials.is_empty() {
            return Err(Error::InvalidKey("no algorithm for this key"));
        }
        let material = materials.remove(0);
        Ok(VerifyingKey {
            kid: self.kid.clone(),
            material,
            more: materials,
        })
    }

    fn import_ec(
        &self,
        own_alg: Option<Algorithm>,
        unbound: AlgorithmSet,
    ) -> Result<KeyMaterial, Error> {
        // The curve decides the algorithm; a key whose `alg` disagrees with its
        // curve (ES256 on P-384, or the unregistered ES521) is refused.
        let inferred = match self.crv.as_deref() {
            Some("P-256") => Algorithm::ES256,
            Some("P-384") => Algorithm::ES384,
            Some("P-521") => Algorithm::ES512,
            _ => return Err(Error::InvalidKey("unsupported EC curve")),
        };
        if own_alg.is_some_and(|alg| alg != inferred) {
            return Err(Error::InvalidKey("alg does not match crv"));
        }
        if own_alg.is_none() && !unbound.contains(inferred) {
            return Err(Error::InvalidKey("EC key without an allowed alg"));
        }
        let Some((verify_alg, _, coord)) = inferred.ec_params() else {
            return Err(Error::InvalidKey("unsupported EC curve"));
        };
        let x = decode_member(&self.x)?;
        let y = decode_member(&self.y)?;
        if x.len() != coord || y.len() != coord {
            return Err(Error::InvalidKey("EC coordinate has the wrong length"));
        }
        let mut point = Vec::with_capacity(1 + 2 * coord);
        point.push(0x04);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        // aws-lc checks the point is on the curve and not the identity.
        let parsed = signature::ParsedPublicKey::new(verify_alg, &point)
            .map_err(|_| Error::InvalidKey("EC point is not on the curve"))?;
        Ok(KeyMaterial::public(inferred, parsed))
    }

    fn import_okp(
        &self,
        own_alg: Option<Algorithm>,
        unbound: AlgorithmSet,
    ) -> Result<KeyMaterial, Error> {
        if self.crv.as_deref() != Some("Ed25519") {
            return Err(Error::InvalidKey("unsupported OKP curve"));
        }
        if own_alg.is_some_and(|alg| alg != Algorithm::EdDSA) {
            return Err(Error::InvalidKey("alg does not match crv"));
        }
        if own_alg.is_none() && !unbound.contains(Algorithm::EdDSA) {
            return Err(Error::InvalidKey("OKP key without an allowed alg"));
        }
        let x = decode_member(&self.x)?;
        if x.len() != signature::ED25519_PUBLIC_KEY_LEN {
            return Err(Error::InvalidKey("Ed25519 key has the wrong length"));
        }
        let parsed = signature::ParsedPublicKey::new(&signature::ED25519, &x)
            .map_err(|_| Error::InvalidKey("invalid Ed25519 key"))?;
        Ok(KeyMaterial::public(Algorithm::EdDSA, parsed))
    }

    /// One parsed key per algorithm: aws-lc binds a parsed RSA key to its
    /// padding and hash.
    fn import_rsa(&self, algs: &[Algorithm]) -> Result<Vec<KeyMaterial>, Error> {
        let n = decode_member(&self.n)?;
        let e = decode_member(&self.e)?;
        rsa_key::check_components(&n, &e)?;
        algs.iter()
            .map(|&alg| {
                let params = alg
                    .rsa_params()
                    .ok_or(Error::InvalidKey("alg does not match kty"))?;
                let parsed = signature::RsaPublicKeyComponents { n: &n, e: &e }
                    .to_parsed_public_key(params)
                    .map_err(|_| Error::InvalidKey("invalid RSA key"))?;
                Ok(KeyMaterial::public(alg, parsed))
            })
            .collect()
    }
}

/// The key's own algorithm (kept even if it does not fit: the import then
/// refuses it as not matching the key type), else those of `unbound` that
/// fit; None when that leaves nothing.
fn bound_or_fitting(
    own: Option<Algorithm>,
    unbound: AlgorithmSet,
    fits: impl Fn(Algorithm) -> bool,
) -> Option<Vec<Algorithm>> {
    if let Some(alg) = own {
        return Some(vec![alg]);
    }
    let algs: Vec<Algorithm> = unbound.iter().filter(|a| fits(*a)).collect();
    (!algs.is_empty()).then_some(algs)
}

fn hmac_material(alg: Algorithm, secret: &[u8]) -> Result<KeyMaterial, Error> {
    let (hmac_alg, min_len) = alg
        .hmac_params()
        .ok_or(Error::InvalidKey("alg does not match kty"))?;
    if secret.len() < min_len {
        return Err(Error::InvalidKey("HMAC key shorter than the hash output"));
    }
    Ok(KeyMaterial::hmac(alg, hmac::Key::new(hmac_alg, secret)))
}

fn check_kid(kid: Option<&str>) -> Result<(), Error> {
    match kid {
        Some(kid) if kid.is_empty() || kid.len() > MAX_KID_LEN => {
            Err(Error::InvalidKey("kid is empty or too long"))
        }
        _ => Ok(()),
    }
}

fn decode_member(member: &Option<String>) -> Result<Vec<u8>, Error> {
    let text = member
        .as_deref()
        .ok_or(Error::InvalidKey("required member missing"))?;
    b64::decode(text).ok_or(Error::InvalidKey("member is not strict base64url"))
}

/// JSON problems in a key document are key errors, not token errors.
pub(crate) fn json_error(error: Error) -> Error {
    match error {
        Error::DuplicateJsonMember | Error::JsonTooDeep => error,
        _ => Error::InvalidKey("invalid JSON"),
    }
}
