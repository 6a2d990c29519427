//! A JWK Set (RFC 7517 §5): the trusted keys of one issuer.
//!
//! Problems with the set as a whole refuse it entirely: a duplicate `kid`
//! makes key selection ambiguous, private members or symmetric secrets mean
//! the publisher leaked something, and such a set should not be half-trusted.
//! A problem with one key (an unsupported curve, an off-curve point, a 1024-bit
//! modulus) skips that key only, so one bad entry cannot take an issuer down;
//! the skipped keys are reported.

use serde_json::Value;
use std::collections::HashSet;

use crate::jwk::{ImportOptions, Jwk, VerifyingKey, json_error};
use crate::{Error, json};

/// Largest key set document accepted, in bytes.
pub const MAX_JWKS_LEN: usize = 512 * 1024;
/// Most keys accepted in one set.
pub const MAX_KEYS: usize = 100;

/// The usable keys of a set, and the ones that were skipped.
#[derive(Debug, Clone, Default)]
pub struct JwkSet {
    keys: Vec<VerifyingKey>,
    skipped: Vec<SkippedKey>,
}

/// A key left out of a set, with its position, its `kid` if it had a string
/// one, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    pub index: usize,
    pub kid: Option<String>,
    pub error: Error,
}

impl JwkSet {
    /// Parses and imports `{"keys": [...]}` under `options`.
    pub fn from_json(bytes: &[u8], options: &ImportOptions) -> Result<Self, Error> {
        if bytes.len() > MAX_JWKS_LEN {
            return Err(Error::InvalidKeySet("too large"));
        }
        let Value::Object(mut document) = json::parse_strict(bytes).map_err(json_error)? else {
            return Err(Error::InvalidKeySet("not a JSON object"));
        };
        let Some(Value::Array(entries)) = document.remove("keys") else {
            return Err(Error::InvalidKeySet("no keys array"));
        };
        if entries.len() > MAX_KEYS {
            return Err(Error::InvalidKeySet("too many keys"));
        }
        Self::from_entries(entries, options)
    }

    /// Imports already-parsed entries (each should be a JWK object).
    pub fn from_entries(entries: Vec<Value>, options: &ImportOptions) -> Result<Self, Error> {
        check_whole_set(&entries, options)?;
        let mut set = Self::default();
        for (index, entry) in entries.into_iter().enumerate() {
            let kid = entry.get("kid").and_then(Value::as_str).map(str::to_owned);
            match Jwk::from_value(entry).and_then(|jwk| jwk.import(options)) {
                Ok(key) => set.keys.push(key),
                Err(error) => set.skipped.push(SkippedKey { index, kid, error }),
            }
        }
        Ok(set)
    }

    /// Builds a set from keys imported one by one; duplicate kids are refused.
    pub fn from_keys(keys: Vec<VerifyingKey>) -> Result<Self, Error> {
        let mut seen = HashSet::new();
        for kid in keys.iter().filter_map(VerifyingKey::kid) {
            if !seen.insert(kid) {
                return Err(Error::DuplicateKid);
            }
        }
        Ok(Self {
            keys,
            skipped: Vec::new(),
        })
    }

    #[must_use]
    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    #[must_use]
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    pub(crate) fn into_keys(self) -> Vec<VerifyingKey> {
        self.keys
    }
}

/// The checks that refuse a whole set, made on the raw entries so that a key
/// which would be skipped still counts (a duplicate `kid` on a broken key is
/// still a duplicate).
fn check_whole_set(entries: &[Value], options: &ImportOptions) -> Result<(), Error> {
    let mut kids = HashSet::new();
    let (mut symmetric, mut asymmetric) = (false, false);
    for entry in entries {
        if let Some(kid) = entry.get("kid").and_then(Value::as_str)
            && !kids.insert(kid)
        {
            return Err(Error::DuplicateKid);
        }
        let kty = entry.get("kty").and_then(Value::as_str);
        let is_oct = kty == Some("oct");
        symmetric |= is_oct;
        asymmetric |= kty.is_some() && !is_oct;
        let private = ["d", "p", "q", "dp", "dq", "qi", "oth"]
            .iter()
            .any(|m| entry.get(m).is_some())
            || (!is_oct && entry.get("k").is_some());
        if private && !options.strip_private {
            return Err(Error::PrivateKeyMaterial);
        }
    }
    if symmetric && !options.allow_symmetric {
        return Err(Error::SymmetricKeyRefused);
    }
    // A file of HMAC secrets is not a public key set; mixing the two is how a
    // secret ends up published next to public keys.
    if symmetric && asymmetric {
        return Err(Error::MixedKeySet);
    }
    Ok(())
}
