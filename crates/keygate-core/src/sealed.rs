//! Secrets keygate must be able to use again (JWT signing keys, HMAC request
//! signing secrets) are stored sealed: AES-256-GCM under the master key from
//! configuration, so a stolen database alone yields nothing usable.
//!
//! Sealed form: `0x01` (format version) || 12-byte random nonce || ciphertext
//! || 16-byte tag. The associated data names what the secret is for and which
//! record holds it (`signing-key:<kid>`, `hmac-secret:<key id>`), so a sealed
//! value copied into another row does not open there.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::keys::apikey::random_bytes;

pub const MASTER_KEY_BYTES: usize = 32;
const FORMAT_V1: u8 = 1;
const TAG_LEN: usize = 16;

/// The master key. Never printed, never serialized.
pub struct MasterKey {
    key: LessSafeKey,
    fingerprint: String,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(redacted)")
    }
}

impl MasterKey {
    /// Exactly 32 bytes of key material.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != MASTER_KEY_BYTES {
            return Err(Error::invalid(
                "master_key",
                format!("must be exactly {MASTER_KEY_BYTES} bytes"),
            ));
        }
        let fingerprint = {
            use hmac::{Hmac, Mac};
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(bytes)
                .map_err(|e| Error::Internal(format!("HMAC key: {e}")))?;
            mac.update(b"keygate/master-key-fingerprint/v1");
            hex::encode(mac.finalize().into_bytes())
        };
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| Error::Internal("AES-256-GCM key".into()))?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
            fingerprint,
        })
    }

    /// Parses the configured text form: 32 bytes as base64 (standard or
    /// URL-safe, padded or not) or as 64 hex digits.
    pub fn parse(text: &str) -> Result<Self, Error> {
        use base64::Engine;
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        let text = text.trim();
        let decoded = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).ok().map(Zeroizing::new)
        } else {
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(text).ok())
                .map(Zeroizing::new)
        };
        match decoded {
            Some(bytes) if bytes.len() == MASTER_KEY_BYTES => Self::from_bytes(&bytes),
            _ => Err(Error::invalid(
                "master_key",
                "must be 32 random bytes written as base64 or 64 hex digits \
                 (e.g. from `openssl rand -base64 32`)",
            )),
        }
    }

    /// A fresh random key and its text form (base64), for first starts.
    pub fn generate() -> Result<(Self, Zeroizing<String>), Error> {
        use base64::Engine;
        let mut raw = Zeroizing::new([0u8; MASTER_KEY_BYTES]);
        random_bytes(raw.as_mut())?;
        let text = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(raw.as_ref()));
        Ok((Self::from_bytes(raw.as_ref())?, text))
    }

    /// A public fingerprint (an HMAC of a fixed label), recorded in the
    /// database so a wrong master key is caught at start.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn seal(&self, plaintext: &[u8], aad: &str) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut body,
            )
            .map_err(|_| Error::Internal("sealing failed".into()))?;
        out.extend_from_slice(&body);
        // The plaintext copy is wiped by overwriting before drop.
        zeroize::Zeroize::zeroize(&mut body);
        Ok(out)
    }

    /// Opens a sealed value; a wrong key, wrong `aad` or any altered byte
    /// answers `Error::Internal` (the stored data is not what we wrote).
    pub fn open(&self, sealed: &[u8], aad: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != FORMAT_V1 {
            return Err(Error::Internal(
                "sealed secret has an unknown format".into(),
            ));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1..=NONCE_LEN]);
        let mut body = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
        let len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                body.as_mut_slice(),
            )
            .map_err(|_| {
                Error::Internal("a sealed secret does not open under the master key".into())
            })?
            .len();
        body.truncate(len);
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seals_and_opens_bound_to_its_label() {
        let (key, text) = MasterKey::generate().unwrap();
        let sealed = key.seal(b"private key bytes", "signing-key:abc").unwrap();
        assert_eq!(sealed.len(), 1 + NONCE_LEN + 17 + TAG_LEN);
        assert!(!sealed.windows(7).any(|w| w == b"private"));
        let opened = key.open(&sealed, "signing-key:abc").unwrap();
        assert_eq!(opened.as_slice(), b"private key bytes");
        assert!(key.open(&sealed, "signing-key:abd").is_err());
        let same = MasterKey::parse(&text).unwrap();
        assert_eq!(same.fingerprint(), key.fingerprint());
        assert!(same.open(&sealed, "signing-key:abc").is_ok());
        let (other, _) = MasterKey::generate().unwrap();
        assert!(other.open(&sealed, "signing-key:abc").is_err());
        assert_ne!(other.fingerprint(), key.fingerprint());
    }

    #[test]
    fn every_altered_byte_is_detected() {
        let (key, _) = MasterKey::generate().unwrap();
        let sealed = key.seal(b"secret", "x").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(key.open(&bad, "x").is_err(), "byte {i}");
        }
        assert!(key.open(&sealed[..sealed.len() - 1], "x").is_err());
        assert!(key.open(&[], "x").is_err());
    }

    #[test]
    fn parses_base64_and_hex_and_refuses_other_lengths() {
        let hex = "00".repeat(32);
        let a = MasterKey::parse(&hex).unwrap();
        let b = MasterKey::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert!(MasterKey::parse("AAAA").is_err());
        assert!(MasterKey::parse(&"00".repeat(31)).is_err());
        assert!(MasterKey::parse("not a key at all!").is_err());
        assert!(!format!("{a:?}").contains("00"));
    }
}
