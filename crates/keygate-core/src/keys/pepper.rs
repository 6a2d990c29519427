//! Hashing keys for storage: HMAC-SHA256 under a server-side pepper, so a
//! stolen database alone cannot be used to test candidate keys. Keys carry 256
//! bits of entropy, so a slow password hash would only cost latency.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::Error;

type HmacSha256 = Hmac<Sha256>;

/// A digest of a key under one pepper version, as stored.
pub type KeyHash = [u8; 32];

pub const MIN_PEPPER_BYTES: usize = 32;

/// The pepper: secret bytes plus the version stored beside every hash, so the
/// pepper can be rotated without losing existing keys.
pub struct Pepper {
    version: i32,
    // The keyed HMAC state is computed once; cloning it per hash skips the
    // key schedule on the hot path.
    keyed: HmacSha256,
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pepper(v{}, redacted)", self.version)
    }
}

impl Pepper {
    pub fn new(version: i32, secret: &[u8]) -> Result<Self, Error> {
        if secret.len() < MIN_PEPPER_BYTES {
            return Err(Error::invalid(
                "pepper",
                format!("must be at least {MIN_PEPPER_BYTES} bytes"),
            ));
        }
        let secret = Zeroizing::new(secret.to_vec());
        let keyed = HmacSha256::new_from_slice(&secret)
            .map_err(|e| Error::Internal(format!("HMAC key: {e}")))?;
        Ok(Self { version, keyed })
    }

    pub fn version(&self) -> i32 {
        self.version
    }

    /// A public fingerprint of this pepper (an HMAC of a fixed label), stored
    /// in the database so a wrong or lost pepper is caught at start rather
    /// than turning every key into NOT_FOUND.
    pub fn fingerprint(&self) -> String {
        self.hash("keygate/pepper-fingerprint/v1")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub fn hash(&self, key: &str) -> KeyHash {
        let mut mac = self.keyed.clone();
        mac.update(key.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn short_peppers_are_refused() {
        assert!(Pepper::new(1, &[7; 31]).is_err());
        assert!(Pepper::new(1, &[7; 32]).is_ok());
    }

    #[test]
    fn hash_matches_plain_hmac_and_depends_on_pepper() {
        let a = Pepper::new(1, &[1; 32]).unwrap();
        let b = Pepper::new(2, &[2; 32]).unwrap();
        let mut mac = HmacSha256::new_from_slice(&[1; 32]).unwrap();
        mac.update(b"kg_live_x");
        let expected: KeyHash = mac.finalize().into_bytes().into();
        assert_eq!(a.hash("kg_live_x"), expected);
        assert_ne!(a.hash("kg_live_x"), b.hash("kg_live_x"));
        assert!(!format!("{a:?}").contains("1, 1"));
    }
}
