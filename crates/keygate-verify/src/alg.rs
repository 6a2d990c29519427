//! The algorithms keygate verifies, and the one function that runs a
//! signature or MAC check.
//!
//! Every verification in the crate ends in [`verify_primitive`]: the JWS
//! layer calls it with the algorithm bound to the key (never the header's),
//! and the primitive test vectors call it directly.

use aws_lc_rs::{hmac, signature};
use std::fmt;

use crate::Error;

/// A JWS algorithm (RFC 7518 §3, RFC 8037 §3.1). `none` is deliberately absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    EdDSA,
}

impl Algorithm {
    /// Every algorithm, for tests and for listing what a verifier accepts.
    pub const ALL: [Algorithm; 13] = [
        Self::HS256,
        Self::HS384,
        Self::HS512,
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::ES512,
        Self::EdDSA,
    ];

    /// The registered name, matched case-sensitively (`none`, `NONE`, `es256`
    /// and unregistered names such as `ES521` are all `None`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "HS256" => Self::HS256,
            "HS384" => Self::HS384,
            "HS512" => Self::HS512,
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            "ES512" => Self::ES512,
            "EdDSA" => Self::EdDSA,
            _ => return None,
        })
    }

    /// The registered name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
            Self::EdDSA => "EdDSA",
        }
    }

    /// True for the HMAC algorithms.
    #[must_use]
    pub fn is_symmetric(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }

    /// The RSA parameters for RS*/PS*: moduli of 2048 to 8192 bits only.
    pub(crate) fn rsa_params(self) -> Option<&'static signature::RsaParameters> {
        Some(match self {
            Self::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Self::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Self::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Self::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            Self::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
            Self::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
            _ => return None,
        })
    }

    /// For ES*: the fixed-format (r||s) verification algorithm, the curve
    /// name, the coordinate length and the exact signature length.
    pub(crate) fn ec_params(
        self,
    ) -> Option<(
        &'static signature::EcdsaVerificationAlgorithm,
        &'static str,
        usize,
    )> {
        Some(match self {
            Self::ES256 => (&signature::ECDSA_P256_SHA256_FIXED, "P-256", 32),
            Self::ES384 => (&signature::ECDSA_P384_SHA384_FIXED, "P-384", 48),
            Self::ES512 => (&signature::ECDSA_P521_SHA512_FIXED, "P-521", 66),
            _ => return None,
        })
    }

    /// For HS*: the HMAC algorithm and its output length, which is also the
    /// shortest key we accept (RFC 7518 §3.2).
    pub(crate) fn hmac_params(self) -> Option<(hmac::Algorithm, usize)> {
        Some(match self {
            Self::HS256 => (hmac::HMAC_SHA256, 32),
            Self::HS384 => (hmac::HMAC_SHA384, 48),
            Self::HS512 => (hmac::HMAC_SHA512, 64),
            _ => return None,
        })
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of algorithms: what a key published without `alg` may verify.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AlgorithmSet(u16);

impl AlgorithmSet {
    /// For keys without `alg` unless the caller says otherwise: RS256 for
    /// RSA (PS* only when named: a key published for PKCS#1 v1.5 is not
    /// thereby meant for PSS), and each EC curve's and Ed25519's one
    /// algorithm. No HMAC: a secret must name its algorithm.
    pub const DEFAULT_WITHOUT_ALG: Self = Self::of(&[
        Algorithm::RS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::EdDSA,
    ]);

    #[must_use]
    pub const fn empty() -> Self {
        Self(0)
    }

    #[must_use]
    pub const fn of(algs: &[Algorithm]) -> Self {
        let mut set = Self(0);
        let mut i = 0;
        while i < algs.len() {
            set = set.with(algs[i]);
            i += 1;
        }
        set
    }

    #[must_use]
    pub const fn with(self, alg: Algorithm) -> Self {
        Self(self.0 | 1 << alg as u16)
    }

    #[must_use]
    pub const fn contains(self, alg: Algorithm) -> bool {
        self.0 & (1 << alg as u16) != 0
    }

    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members, in [`Algorithm::ALL`]'s order.
    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(move |alg| self.contains(*alg))
    }
}

impl FromIterator<Algorithm> for AlgorithmSet {
    fn from_iter<I: IntoIterator<Item = Algorithm>>(iter: I) -> Self {
        iter.into_iter().fold(Self::empty(), Self::with)
    }
}

impl fmt::Debug for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(Algorithm::name))
            .finish()
    }
}

/// Parsed, validated key material, bound to exactly one algorithm. Built
/// only by JWK import, so holding one means the key passed every import check.
#[derive(Clone)]
pub struct KeyMaterial {
    alg: Algorithm,
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    /// An EC, Ed25519 or RSA public key, parsed once at import for `alg`.
    Public(signature::ParsedPublicKey),
    /// An HMAC secret (local configuration only, never from a JWKS).
    Hmac(Box<hmac::Key>),
}

impl KeyMaterial {
    pub(crate) fn public(alg: Algorithm, key: signature::ParsedPublicKey) -> Self {
        Self {
            alg,
            inner: Inner::Public(key),
        }
    }

    pub(crate) fn hmac(alg: Algorithm, key: hmac::Key) -> Self {
        Self {
            alg,
            inner: Inner::Hmac(Box::new(key)),
        }
    }

    /// The one algorithm this key verifies.
    #[must_use]
    pub fn alg(&self) -> Algorithm {
        self.alg
    }
}

impl fmt::Debug for KeyMaterial {
    // Never print key bytes: a public key is harmless but an HMAC key is not,
    // and one rule for both is easier to keep.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyMaterial({}, redacted)", self.alg)
    }
}

/// Verifies `sig` over `input` with `key` under `alg`: the single code path
/// for every signature and MAC check in the crate.
///
/// `alg` must be the key's own algorithm (a mismatch is refused before any
/// cryptography). Lengths are checked before the primitive runs: ECDSA
/// signatures must be exactly the fixed r||s size (DER is refused), Ed25519
/// exactly 64 bytes, an HMAC tag exactly the hash length (no truncation).
pub fn verify_primitive(
    alg: Algorithm,
    key: &KeyMaterial,
    input: &[u8],
    sig: &[u8],
) -> Result<(), Error> {
    if alg != key.alg {
        return Err(Error::KeyAlgorithmMismatch);
    }
    let expected_len = match (alg.ec_params(), alg.hmac_params()) {
        (Some((_, _, coord)), _) => Some(2 * coord),
        (_, Some((_, len))) => Some(len),
        _ if alg == Algorithm::EdDSA => Some(64),
        // RSA: aws-lc checks the signature is exactly the modulus length.
        _ => None,
    };
    if expected_len.is_some_and(|len| sig.len() != len) {
        return Err(Error::BadSignature);
    }
    match &key.inner {
        // Constant-time comparison inside aws-lc.
        Inner::Hmac(secret) => hmac::verify(secret, input, sig),
        Inner::Public(public) => public.verify_sig(input, sig),
    }
    .map_err(|_| Error::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_sets_hold_what_was_put_in() {
        let set = AlgorithmSet::of(&[Algorithm::PS256, Algorithm::RS256]);
        assert!(set.contains(Algorithm::RS256) && set.contains(Algorithm::PS256));
        assert!(!set.contains(Algorithm::PS384) && !set.contains(Algorithm::HS256));
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [Algorithm::RS256, Algorithm::PS256]
        );
        assert_eq!(set.iter().collect::<AlgorithmSet>(), set);
        assert!(AlgorithmSet::empty().is_empty());
        let all: AlgorithmSet = Algorithm::ALL.into_iter().collect();
        assert_eq!(all.iter().count(), Algorithm::ALL.len());
        let default = AlgorithmSet::DEFAULT_WITHOUT_ALG;
        assert!(default.iter().all(|alg| !alg.is_symmetric()));
        assert!(!default.contains(Algorithm::PS256));
    }

    #[test]
    fn names_match_exactly() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
            assert_eq!(Algorithm::from_name(&alg.name().to_lowercase()), None);
            assert_eq!(Algorithm::from_name(&format!("{} ", alg.name())), None);
        }
        for name in ["none", "NONE", "", "ES521", "HS256\0", "eddsa", "EDDSA"] {
            assert_eq!(Algorithm::from_name(name), None, "{name:?}");
        }
    }
}
