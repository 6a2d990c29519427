//! The decrypter: compact JWE (RFC 7516 §7.1) in, plaintext out.
//!
//! Order, as in the JWS layer: the length cap, the shape (exactly five
//! segments of strict base64url), the header and the caller's policy, the
//! exact lengths of IV and tag, the key (by `kid`, bound to the `alg`),
//! and only then any cryptography. Every cryptographic failure, wherever
//! it happens, is the one [`Error::Decryption`].

use std::fmt;

use super::algs::JwePolicy;
use super::header::{self, JweHeader};
use super::key::DecryptionKey;
use super::{content, keymgmt};
use crate::{Error, b64};

/// Tokens longer than this are refused before decoding: a nested token of
/// the JWS cap (8 KiB) grows by a third in base64 plus the JWE overhead.
pub const DEFAULT_MAX_JWE_LEN: usize = 16 * 1024;

/// A decrypted JWE.
#[derive(Debug, Clone)]
pub struct Decrypted {
    pub header: JweHeader,
    pub plaintext: Vec<u8>,
}

/// Decrypts JWEs with the recipient's private keys, under a policy of
/// accepted algorithms.
pub struct Decrypter {
    keys: Vec<DecryptionKey>,
    policy: JwePolicy,
    max_len: usize,
}

impl fmt::Debug for Decrypter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decrypter")
            .field("keys", &self.keys)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Decrypter {
    /// Refuses an empty key list and two keys with one `kid`.
    pub fn new(keys: Vec<DecryptionKey>, policy: JwePolicy) -> Result<Self, Error> {
        if keys.is_empty() {
            return Err(Error::InvalidConfig("a decrypter needs a key"));
        }
        for (i, key) in keys.iter().enumerate() {
            if key.kid().is_some() && keys[..i].iter().any(|other| other.kid() == key.kid()) {
                return Err(Error::DuplicateKid);
            }
        }
        Ok(Self {
            keys,
            policy,
            max_len: DEFAULT_MAX_JWE_LEN,
        })
    }

    /// One key, the default policy.
    pub fn with_key(key: DecryptionKey) -> Result<Self, Error> {
        Self::new(vec![key], JwePolicy::default())
    }

    #[must_use]
    pub fn policy(&self) -> &JwePolicy {
        &self.policy
    }

    /// Decrypts `token` and returns its header and plaintext.
    pub fn decrypt(&self, token: &str) -> Result<Decrypted, Error> {
        if token.len() > self.max_len {
            return Err(Error::TokenTooLarge);
        }
        let segments = Segments::split(token)?;
        let header_bytes =
            b64::decode(segments.header).ok_or(Error::MalformedToken("header is not base64url"))?;
        let header = header::parse(&header_bytes, &self.policy)?;
        let part =
            |text: &str, what: &'static str| b64::decode(text).ok_or(Error::MalformedToken(what));
        let encrypted_key = part(segments.encrypted_key, "encrypted key is not base64url")?;
        let iv = part(segments.iv, "IV is not base64url")?;
        let ciphertext = part(segments.ciphertext, "ciphertext is not base64url")?;
        let tag = part(segments.tag, "tag is not base64url")?;
        if iv.len() != header.enc.iv_len() {
            return Err(Error::MalformedToken("IV has the wrong length"));
        }
        if tag.len() != header.enc.tag_len() {
            return Err(Error::MalformedToken(
                "authentication tag has the wrong length",
            ));
        }
        if header.alg.is_direct() != encrypted_key.is_empty() {
            return Err(Error::MalformedToken("encrypted key is empty or must be"));
        }
        let open = |key: &DecryptionKey| {
            let cek = keymgmt::recover_cek(key, &header, &encrypted_key)?;
            content::decrypt(
                header.enc,
                &cek,
                &iv,
                segments.header.as_bytes(),
                &ciphertext,
                &tag,
            )
        };
        let plaintext = self.with_keys(&header, open)?;
        Ok(Decrypted { header, plaintext })
    }

    /// With a `kid`, only the key of that `kid`, which must serve the
    /// header's algorithms; without, each key that serves them in turn.
    fn with_keys(
        &self,
        header: &JweHeader,
        open: impl Fn(&DecryptionKey) -> Result<Vec<u8>, Error>,
    ) -> Result<Vec<u8>, Error> {
        let serves = |key: &&DecryptionKey| key.serves(header.alg, header.enc);
        if let Some(kid) = &header.kid {
            let key = self
                .keys
                .iter()
                .find(|key| key.kid() == Some(kid.as_str()))
                .ok_or(Error::UnknownKid)?;
            if !serves(&key) {
                return Err(Error::KeyAlgorithmMismatch);
            }
            return open(key);
        }
        let mut candidates = self.keys.iter().filter(serves).peekable();
        if candidates.peek().is_none() {
            return Err(Error::NoMatchingKey);
        }
        let mut last = Error::Decryption;
        for key in candidates {
            match open(key) {
                Ok(plaintext) => return Ok(plaintext),
                Err(error) => last = error,
            }
        }
        Err(last)
    }

    /// Decrypts a nested JWT (RFC 7519 §5.2): `cty` must say `JWT`, and the
    /// plaintext must be a compact JWS, returned for the verifier.
    pub fn decrypt_nested(&self, token: &str) -> Result<String, Error> {
        let decrypted = self.decrypt(token)?;
        let is_jwt = decrypted.header.cty.as_deref().is_some_and(|cty| {
            cty.eq_ignore_ascii_case("JWT") || cty.eq_ignore_ascii_case("application/jwt")
        });
        if !is_jwt {
            return Err(Error::InvalidHeader { name: "cty" });
        }
        let inner = String::from_utf8(decrypted.plaintext)
            .map_err(|_| Error::MalformedToken("nested token is not a compact JWS"))?;
        if inner.split('.').count() != 3 {
            return Err(Error::MalformedToken("nested token is not a compact JWS"));
        }
        Ok(inner)
    }
}

/// True when `token` has the shape of a compact JWE (five segments).
#[must_use]
pub fn is_compact_jwe(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 4
}

struct Segments<'t> {
    header: &'t str,
    encrypted_key: &'t str,
    iv: &'t str,
    ciphertext: &'t str,
    tag: &'t str,
}

impl<'t> Segments<'t> {
    fn split(token: &'t str) -> Result<Self, Error> {
        if token.trim_start().starts_with('{') {
            return Err(Error::MalformedToken("JSON serialization is not supported"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(encrypted_key), Some(iv), Some(ciphertext), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(Error::MalformedToken("expected five segments"));
        };
        if header.is_empty() {
            return Err(Error::MalformedToken("empty header"));
        }
        Ok(Self {
            header,
            encrypted_key,
            iv,
            ciphertext,
            tag,
        })
    }
}
