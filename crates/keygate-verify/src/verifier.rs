//! The verifier: trusted keys plus the rules a token must meet.
//!
//! Key selection: with a `kid`, only the key with that `kid` is tried, and
//! one of its bound algorithms (one, unless it was published without `alg`)
//! must equal the header's `alg`; keys without a `kid` are never reached
//! this way. Without a `kid`, each key bound to the header's `alg` is tried
//! in order, whatever its `kid` (keygate's own tokens always carry a `kid`;
//! this serves single-key configurations and the RFC examples).

use std::borrow::Cow;
use std::sync::Arc;

use crate::alg::{KeyMaterial, verify_primitive};
use crate::jwe::{Decrypter, is_compact_jwe};
use crate::jwk::VerifyingKey;
use crate::jwks::JwkSet;
use crate::jws::{self, Compact, Header, Mode};
use crate::{Claims, Error};

/// Leeway used when none is configured, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// Largest leeway a verifier accepts: clocks this far apart are a fault.
pub const MAX_LEEWAY_SECS: u64 = 300;
/// Default token length cap (DESIGN.md: tokens over 8 KiB are refused).
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8192;
/// The cap may be lowered freely but raised only this far.
pub const MAX_TOKEN_LEN_LIMIT: usize = 64 * 1024;

/// What a token must satisfy beyond its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// Compared with `iss` exactly (no normalisation, no trailing-slash games).
    pub issuer: String,
    /// Must equal one element of `aud` exactly (case-sensitive).
    pub audience: String,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, at most [`MAX_LEEWAY_SECS`].
    pub leeway_secs: u64,
    /// The header `typ` required by `verify` (e.g. `at+jwt`, RFC 9068), or
    /// `None` to accept any or none.
    pub required_typ: Option<String>,
    /// Tokens longer than this are refused before any decoding.
    pub max_token_len: usize,
}

impl Validation {
    /// Defaults for keygate access tokens: 30 s leeway, `typ: at+jwt`, 8 KiB.
    #[must_use]
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
            required_typ: Some("at+jwt".to_owned()),
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
        }
    }
}

/// Whether a verifier with a decrypter also takes signed tokens that were
/// not encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// Nested JWTs and plain JWS both verify (a rollout, or a route that
    /// encrypts for some audiences only).
    Optional,
    /// Only nested JWTs: a plain JWS is refused, so a token minted without
    /// encryption by mistake is never accepted where confidentiality is
    /// expected.
    Required,
}

/// Verifies tokens against a fixed set of trusted keys.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: Vec<VerifyingKey>,
    validation: Validation,
    decryption: Option<(Arc<Decrypter>, Encryption)>,
}

impl Verifier {
    /// Builds a verifier; refuses an empty issuer or audience, a leeway over
    /// [`MAX_LEEWAY_SECS`], a length cap over [`MAX_TOKEN_LEN_LIMIT`].
    pub fn new(keys: JwkSet, validation: Validation) -> Result<Self, Error> {
        if validation.issuer.is_empty() || validation.audience.is_empty() {
            return Err(Error::InvalidConfig("issuer and audience are required"));
        }
        if validation.leeway_secs > MAX_LEEWAY_SECS {
            return Err(Error::InvalidConfig("leeway too large"));
        }
        if validation.max_token_len == 0 || validation.max_token_len > MAX_TOKEN_LEN_LIMIT {
            return Err(Error::InvalidConfig("max_token_len out of range"));
        }
        Ok(Self {
            keys: keys.into_keys(),
            validation,
            decryption: None,
        })
    }

    /// Accepts nested JWTs (RFC 7519 §5.2) decrypted by `decrypter`, then
    /// verified exactly as a plain token; `Encryption::Required` refuses
    /// plain ones. Without this, a JWE is refused as malformed.
    #[must_use]
    pub fn with_decryption(mut self, decrypter: Arc<Decrypter>, mode: Encryption) -> Self {
        self.decryption = Some((decrypter, mode));
        self
    }

    fn unwrap_nested<'t>(&self, token: &'t str) -> Result<Cow<'t, str>, Error> {
        unwrap_nested(self.decryption.as_ref(), token)
    }

    #[must_use]
    pub fn validation(&self) -> &Validation {
        &self.validation
    }

    /// The JWS layer and the key binding, without claims: returns the header
    /// and the raw payload. For test vectors and `--signature-only`.
    pub fn verify_signature(&self, token: &str) -> Result<(Header, Vec<u8>), Error> {
        let mut signature_buf = [0u8; jws::SIGNATURE_BUF];
        let compact = self.verify_jws(token, Mode::SignatureOnly, &mut signature_buf)?;
        Ok((compact.header, compact.payload))
    }

    fn verify_jws<'t, 'b>(
        &self,
        token: &'t str,
        mode: Mode,
        signature_buf: &'b mut [u8; jws::SIGNATURE_BUF],
    ) -> Result<Compact<'t, 'b>, Error> {
        let compact = jws::parse(token, self.validation.max_token_len, mode, signature_buf)?;
        let header = &compact.header;
        // The material bound to the header's algorithm: the algorithm still
        // comes from the key, the header only picks among its bindings.
        let check = |material: &KeyMaterial| {
            verify_primitive(
                material.alg(),
                material,
                compact.signing_input,
                &compact.signature,
            )
        };
        if let Some(kid) = &header.kid {
            let key = self
                .keys
                .iter()
                .find(|key| key.kid() == Some(kid.as_str()))
                .ok_or(Error::UnknownKid)?;
            let material = key
                .material_for(header.alg)
                .ok_or(Error::KeyAlgorithmMismatch)?;
            check(material)?;
        } else {
            let mut candidates = self
                .keys
                .iter()
                .filter_map(|key| key.material_for(header.alg))
                .peekable();
            if candidates.peek().is_none() {
                return Err(Error::NoMatchingKey);
            }
            // Try every candidate; never stop early on a structural error of
            // one key, and report a plain bad signature if none verifies.
            if !candidates.any(|material| check(material).is_ok()) {
                return Err(Error::BadSignature);
            }
        }
        Ok(compact)
    }

    /// Everything: signature, `typ`, then the claims at time `now_secs`
    /// (seconds since the epoch, from the caller's clock). A token bound
    /// to a client certificate (RFC 8705) is refused with
    /// [`Error::BoundToken`]: whoever holds it may have stolen it, and only
    /// [`Verifier::verify_bound`], given the connection's certificate, can
    /// tell.
    pub fn verify(&self, token: &str, now_secs: u64) -> Result<Claims, Error> {
        let claims = self.verify_unchecked_binding(token, now_secs)?;
        if claims.x5t_s256()?.is_some() {
            return Err(Error::BoundToken);
        }
        Ok(claims)
    }

    /// As [`Verifier::verify`], and a bound token must be bound to the
    /// certificate whose SHA-256 thumbprint (of its DER) is `thumbprint`,
    /// the one the caller's TLS connection presented. An unbound token is
    /// accepted with or without a certificate.
    pub fn verify_bound(
        &self,
        token: &str,
        now_secs: u64,
        thumbprint: Option<&[u8; 32]>,
    ) -> Result<Claims, Error> {
        let claims = self.verify_unchecked_binding(token, now_secs)?;
        check_binding(&claims, thumbprint)?;
        Ok(claims)
    }

    /// As [`Verifier::verify`], leaving a bound token's `cnf` to the caller
    /// ([`check_binding`]): for a server that caches verified claims across
    /// requests, each of which has its own certificate.
    pub fn verify_unchecked_binding(&self, token: &str, now_secs: u64) -> Result<Claims, Error> {
        let token = self.unwrap_nested(token)?;
        let mut signature_buf = [0u8; jws::SIGNATURE_BUF];
        let compact = self.verify_jws(&token, Mode::Jwt, &mut signature_buf)?;
        if let Some(required) = &self.validation.required_typ {
            let matches = compact
                .header
                .typ
                .as_deref()
                .is_some_and(|typ| jws::typ_matches(typ, required));
            if !matches {
                return Err(Error::InvalidTokenType);
            }
        }
        let claims = Claims::parse(&compact.payload)?;
        claims.validate(&self.validation, now_secs)?;
        Ok(claims)
    }
}

/// The JWS inside `token` if it is a nested JWT and a decrypter is
/// configured, else `token` itself (which the JWS layer refuses if it is a
/// JWE); a plain token where encryption is required is refused.
pub(crate) fn unwrap_nested<'t>(
    decryption: Option<&(Arc<Decrypter>, Encryption)>,
    token: &'t str,
) -> Result<Cow<'t, str>, Error> {
    match decryption {
        Some((decrypter, _)) if is_compact_jwe(token) => {
            Ok(Cow::Owned(decrypter.decrypt_nested(token)?))
        }
        Some((_, Encryption::Required)) => Err(Error::EncryptionMismatch),
        _ => Ok(Cow::Borrowed(token)),
    }
}

/// Whether `claims` may be used by the holder of the certificate whose
/// thumbprint is `thumbprint` (RFC 8705 §3): an unbound token by anyone, a
/// bound one only with its certificate. Compared in constant time.
pub fn check_binding(claims: &Claims, thumbprint: Option<&[u8; 32]>) -> Result<(), Error> {
    let Some(bound) = claims.x5t_s256()? else {
        return Ok(());
    };
    let presented = thumbprint.ok_or(Error::CertificateMismatch)?;
    aws_lc_rs::constant_time::verify_slices_are_equal(&bound, presented)
        .map_err(|_| Error::CertificateMismatch)
}
