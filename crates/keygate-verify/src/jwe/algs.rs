//! The JWE algorithms keygate implements (RFC 7518 §4, §5), the ones it
//! refuses by design, and the caller's policy of which it accepts.
//!
//! Refused outright, whatever the policy: `RSA1_5` (PKCS#1 v1.5 encryption
//! is a padding oracle by construction, RFC 8725 §3.2), `PBES2-*` (a
//! password-derived key has no place between services, and `p2c` is a
//! denial-of-service knob in the attacker's hands), and `A192KW` /
//! `ECDH-ES+A192KW` (aws-lc-rs offers AES key wrap with 128- and 256-bit
//! keys only, and we do not write a key wrap of our own for a size nobody
//! configures). Every name outside [`KeyManagement`] and [`ContentEncryption`]
//! is an unsupported algorithm, refused before any key is touched.

/// A key management algorithm (`alg` of a JWE, RFC 7518 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyManagement {
    /// Direct use of a shared symmetric key as the CEK.
    Dir,
    A128Kw,
    A256Kw,
    A128GcmKw,
    A192GcmKw,
    A256GcmKw,
    /// ECDH-ES direct key agreement: the agreed key is the CEK.
    EcdhEs,
    EcdhEsA128Kw,
    EcdhEsA256Kw,
    /// RSAES-OAEP with SHA-1 and MGF1-SHA-1.
    RsaOaep,
    /// RSAES-OAEP with SHA-256 and MGF1-SHA-256.
    RsaOaep256,
}

/// Which kind of key a key management algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Symmetric,
    Ec,
    Rsa,
}

impl KeyManagement {
    pub const ALL: [KeyManagement; 11] = [
        Self::Dir,
        Self::A128Kw,
        Self::A256Kw,
        Self::A128GcmKw,
        Self::A192GcmKw,
        Self::A256GcmKw,
        Self::EcdhEs,
        Self::EcdhEsA128Kw,
        Self::EcdhEsA256Kw,
        Self::RsaOaep,
        Self::RsaOaep256,
    ];

    /// The registered name, matched case-sensitively; `None` for every name
    /// keygate does not implement (`RSA1_5`, `PBES2-*`, `A192KW`, `none`...).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Dir => "dir",
            Self::A128Kw => "A128KW",
            Self::A256Kw => "A256KW",
            Self::A128GcmKw => "A128GCMKW",
            Self::A192GcmKw => "A192GCMKW",
            Self::A256GcmKw => "A256GCMKW",
            Self::EcdhEs => "ECDH-ES",
            Self::EcdhEsA128Kw => "ECDH-ES+A128KW",
            Self::EcdhEsA256Kw => "ECDH-ES+A256KW",
            Self::RsaOaep => "RSA-OAEP",
            Self::RsaOaep256 => "RSA-OAEP-256",
        }
    }

    pub(crate) fn key_kind(self) -> KeyKind {
        match self {
            Self::Dir
            | Self::A128Kw
            | Self::A256Kw
            | Self::A128GcmKw
            | Self::A192GcmKw
            | Self::A256GcmKw => KeyKind::Symmetric,
            Self::EcdhEs | Self::EcdhEsA128Kw | Self::EcdhEsA256Kw => KeyKind::Ec,
            Self::RsaOaep | Self::RsaOaep256 => KeyKind::Rsa,
        }
    }

    /// The length of the key-encryption key of the AES key wraps (given, or
    /// derived by ECDH-ES), and of the AES-GCM key wraps.
    pub(crate) fn wrap_key_len(self) -> Option<usize> {
        match self {
            Self::A128Kw | Self::EcdhEsA128Kw | Self::A128GcmKw => Some(16),
            Self::A192GcmKw => Some(24),
            Self::A256Kw | Self::EcdhEsA256Kw | Self::A256GcmKw => Some(32),
            _ => None,
        }
    }

    /// Whether the JWE Encrypted Key must be empty (RFC 7516 §5.2 step 10).
    pub(crate) fn is_direct(self) -> bool {
        matches!(self, Self::Dir | Self::EcdhEs)
    }
}

/// A content encryption algorithm (`enc` of a JWE, RFC 7518 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentEncryption {
    A128Gcm,
    A192Gcm,
    A256Gcm,
    A128CbcHs256,
    A192CbcHs384,
    A256CbcHs512,
}

impl ContentEncryption {
    pub const ALL: [ContentEncryption; 6] = [
        Self::A128Gcm,
        Self::A192Gcm,
        Self::A256Gcm,
        Self::A128CbcHs256,
        Self::A192CbcHs384,
        Self::A256CbcHs512,
    ];

    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|enc| enc.name() == name)
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::A128Gcm => "A128GCM",
            Self::A192Gcm => "A192GCM",
            Self::A256Gcm => "A256GCM",
            Self::A128CbcHs256 => "A128CBC-HS256",
            Self::A192CbcHs384 => "A192CBC-HS384",
            Self::A256CbcHs512 => "A256CBC-HS512",
        }
    }

    /// The CEK length in bytes (for CBC-HS, MAC key and encryption key).
    #[must_use]
    pub fn key_len(self) -> usize {
        match self {
            Self::A128Gcm => 16,
            Self::A192Gcm => 24,
            Self::A256Gcm | Self::A128CbcHs256 => 32,
            Self::A192CbcHs384 => 48,
            Self::A256CbcHs512 => 64,
        }
    }

    pub(crate) fn iv_len(self) -> usize {
        if self.is_gcm() { 12 } else { 16 }
    }

    /// The exact authentication tag length: anything else is refused, so a
    /// truncated tag can never be accepted (RFC 7518 §5.2.2.2, §5.3).
    pub(crate) fn tag_len(self) -> usize {
        match self {
            Self::A128Gcm | Self::A192Gcm | Self::A256Gcm | Self::A128CbcHs256 => 16,
            Self::A192CbcHs384 => 24,
            Self::A256CbcHs512 => 32,
        }
    }

    pub(crate) fn is_gcm(self) -> bool {
        matches!(self, Self::A128Gcm | Self::A192Gcm | Self::A256Gcm)
    }
}

/// Which `alg` and `enc` values a decrypter accepts; anything else is
/// refused before any key is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwePolicy {
    pub algs: Vec<KeyManagement>,
    pub encs: Vec<ContentEncryption>,
}

impl Default for JwePolicy {
    /// What keygate encrypts with and a little room around it: ECDH-ES+A256KW
    /// and ECDH-ES for EC keys, RSA-OAEP-256 for RSA keys; A256GCM,
    /// A128GCM, A128CBC-HS256 and A256CBC-HS512. RSA-OAEP (SHA-1), the
    /// 128-bit key wraps and the symmetric algorithms must be named.
    fn default() -> Self {
        Self {
            algs: vec![
                KeyManagement::EcdhEsA256Kw,
                KeyManagement::EcdhEs,
                KeyManagement::RsaOaep256,
            ],
            encs: vec![
                ContentEncryption::A256Gcm,
                ContentEncryption::A128Gcm,
                ContentEncryption::A128CbcHs256,
                ContentEncryption::A256CbcHs512,
            ],
        }
    }
}

impl JwePolicy {
    /// Every algorithm keygate implements (for test vectors, or a recipient
    /// that must read tokens of many issuers).
    #[must_use]
    pub fn all() -> Self {
        Self {
            algs: KeyManagement::ALL.to_vec(),
            encs: ContentEncryption::ALL.to_vec(),
        }
    }

    pub(crate) fn allows(&self, alg: KeyManagement, enc: ContentEncryption) -> bool {
        self.algs.contains(&alg) && self.encs.contains(&enc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_refused_names_are_unknown() {
        for alg in KeyManagement::ALL {
            assert_eq!(KeyManagement::from_name(alg.name()), Some(alg));
        }
        for enc in ContentEncryption::ALL {
            assert_eq!(ContentEncryption::from_name(enc.name()), Some(enc));
        }
        for refused in [
            "RSA1_5",
            "PBES2-HS256+A128KW",
            "PBES2-HS512+A256KW",
            "A192KW",
            "ECDH-ES+A192KW",
            "none",
            "dir ",
            "rsa-oaep-256",
        ] {
            assert_eq!(KeyManagement::from_name(refused), None, "{refused}");
        }
        assert_eq!(ContentEncryption::from_name("A256gcm"), None);
    }
}
