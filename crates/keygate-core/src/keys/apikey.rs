//! The API-key format: `kg_<env>_<secret><check>` and the public `key_<id>`.
//!
//! `secret` is 32 bytes from the OS CSPRNG written as exactly 43 base62
//! characters; `check` is the CRC32 of everything before it as 6 base62
//! characters. The checksum lets us refuse a mistyped or random string without
//! touching storage, and lets secret scanners recognise a keygate key.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::base62::ALPHABET;
pub use crate::base62::{random_bytes, random_id};
use crate::error::Error;
use crate::prefixed_id::prefixed_id;

pub const SECRET_CHARS: usize = 43;
pub const CHECK_CHARS: usize = 6;
/// Characters of the secret kept in the display prefix: enough to tell keys
/// apart in a list, far too few (24 bits of 256) to help guess one.
const PREFIX_SECRET_CHARS: usize = 4;

fn is_base62(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Writes a 256-bit big-endian number as exactly 43 base62 digits
/// (62^43 > 2^256, so every value fits and short values are zero-padded).
pub(crate) fn base62_fixed(bytes: &[u8; 32]) -> [u8; SECRET_CHARS] {
    let mut num = *bytes;
    let mut out = [b'0'; SECRET_CHARS];
    for slot in out.iter_mut().rev() {
        let mut rem: u32 = 0;
        for byte in num.iter_mut() {
            let acc = (rem << 8) | u32::from(*byte);
            *byte = (acc / 62) as u8;
            rem = acc % 62;
        }
        *slot = ALPHABET[rem as usize];
    }
    out
}

fn checksum(body: &[u8]) -> [u8; CHECK_CHARS] {
    let mut crc = u64::from(crc32fast::hash(body));
    let mut out = [b'0'; CHECK_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(crc % 62) as usize];
        crc /= 62;
    }
    out
}

/// Which environment a key belongs to; part of the key text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KeyEnv {
    #[default]
    Live,
    Test,
}

impl KeyEnv {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyEnv::Live => "live",
            KeyEnv::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "live" => Some(KeyEnv::Live),
            "test" => Some(KeyEnv::Test),
            _ => None,
        }
    }
}

/// A full API key secret. It refuses to print, is wiped from memory on drop,
/// and has no `==`: comparing secrets is done on their hashes, in constant time.
#[derive(Clone)]
pub struct ApiKey {
    text: Zeroizing<String>,
    env: KeyEnv,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}…, redacted)", self.display_prefix())
    }
}

impl ApiKey {
    pub fn generate(env: KeyEnv) -> Result<Self, Error> {
        let mut raw = Zeroizing::new([0u8; 32]);
        random_bytes(raw.as_mut())?;
        let secret = Zeroizing::new(base62_fixed(&raw));
        let mut text = Zeroizing::new(String::with_capacity(64));
        text.push_str("kg_");
        text.push_str(env.as_str());
        text.push('_');
        // base62 output is ASCII by construction.
        text.extend(secret.iter().map(|&b| char::from(b)));
        let check = checksum(text.as_bytes());
        text.extend(check.iter().map(|&b| char::from(b)));
        Ok(Self { text, env })
    }

    /// Checks the shape and checksum only; never touches storage.
    pub fn parse(candidate: &str) -> Result<Self, Error> {
        let env = Self::check(candidate)?;
        Ok(Self {
            text: Zeroizing::new(candidate.to_owned()),
            env,
        })
    }

    /// `parse` without making a copy of the secret: the verification hot
    /// path hashes the caller's string directly.
    pub fn check(candidate: &str) -> Result<KeyEnv, Error> {
        let env = Self::check_shape(candidate)?;
        Self::check_checksum(candidate)?;
        Ok(env)
    }

    /// Prefix, environment, length and alphabet, without the checksum.
    pub fn check_shape(candidate: &str) -> Result<KeyEnv, Error> {
        let rest = candidate.strip_prefix("kg_").ok_or(Error::MalformedKey)?;
        let (env, body) = rest.split_once('_').ok_or(Error::MalformedKey)?;
        let env = KeyEnv::parse(env).ok_or(Error::MalformedKey)?;
        if body.len() != SECRET_CHARS + CHECK_CHARS || !body.bytes().all(is_base62) {
            return Err(Error::MalformedKey);
        }
        Ok(env)
    }

    /// The CRC32 checksum; call after `check_shape`.
    pub fn check_checksum(candidate: &str) -> Result<(), Error> {
        if candidate.len() < CHECK_CHARS {
            return Err(Error::MalformedKey);
        }
        let split = candidate.len() - CHECK_CHARS;
        let (head, check) = candidate.as_bytes().split_at(split);
        if checksum(head) != check {
            return Err(Error::MalformedKey);
        }
        Ok(())
    }

    /// The secret text. Call only to hash it or to show it once to its owner.
    pub fn expose(&self) -> &str {
        &self.text
    }

    pub fn env(&self) -> KeyEnv {
        self.env
    }

    /// `kg_live_AbCd`: safe to store and show in lists.
    pub fn display_prefix(&self) -> String {
        let head = 4 + self.env.as_str().len() + PREFIX_SECRET_CHARS;
        self.text.get(..head).unwrap_or("kg_").to_owned()
    }
}

prefixed_id! {
    /// The public identifier of a key: `key_` + 16 base62 characters.
    KeyId { prefix: "key_", chars: 16, field: "id", noun: "a key id" }
}

impl From<KeyId> for String {
    fn from(value: KeyId) -> String {
        value.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_key_has_the_documented_shape() {
        let key = ApiKey::generate(KeyEnv::Live).unwrap();
        let text = key.expose();
        assert!(text.starts_with("kg_live_"));
        assert_eq!(text.len(), "kg_live_".len() + SECRET_CHARS + CHECK_CHARS);
        assert!(text["kg_live_".len()..].bytes().all(is_base62));
        assert_eq!(key.display_prefix().len(), "kg_live_".len() + 4);
        assert!(!format!("{key:?}").contains(text));
    }

    #[test]
    fn base62_is_fixed_width_and_big_endian() {
        assert_eq!(&base62_fixed(&[0; 32]), &[b'0'; SECRET_CHARS]);
        let mut one = [0u8; 32];
        one[31] = 61;
        let enc = base62_fixed(&one);
        assert_eq!(enc[SECRET_CHARS - 1], b'z');
        assert!(enc[..SECRET_CHARS - 1].iter().all(|&b| b == b'0'));
        let max = base62_fixed(&[0xff; 32]);
        assert_ne!(max[0], b'0', "2^256-1 needs all 43 digits");
    }

    #[test]
    fn known_malformed_inputs_are_refused() {
        for bad in [
            "",
            "kg_",
            "kg_live_",
            "kg_prod_abc",
            "sk_live_x",
            "kg_live_短",
        ] {
            assert!(ApiKey::parse(bad).is_err(), "{bad}");
        }
        let good = ApiKey::generate(KeyEnv::Test).unwrap();
        let long = format!("{}0", good.expose());
        assert!(ApiKey::parse(&long).is_err());
    }

    #[test]
    fn key_ids_parse_and_reject() {
        let id = KeyId::generate().unwrap();
        assert_eq!(KeyId::parse(id.as_str()).unwrap(), id);
        for bad in [
            "key_",
            "key_short",
            "kex_0123456789abcdef",
            "key_0123456789abcde!",
            "../etc",
        ] {
            assert!(KeyId::parse(bad).is_err(), "{bad}");
        }
    }

    fn env_strategy() -> impl Strategy<Value = KeyEnv> {
        prop_oneof![Just(KeyEnv::Live), Just(KeyEnv::Test)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn every_generated_key_parses(env in env_strategy()) {
            let key = ApiKey::generate(env).unwrap();
            let parsed = ApiKey::parse(key.expose()).unwrap();
            prop_assert_eq!(parsed.env(), env);
            prop_assert_eq!(parsed.expose(), key.expose());
        }

        #[test]
        fn any_one_character_change_is_malformed(
            env in env_strategy(),
            pos in any::<prop::sample::Index>(),
            replacement in prop::sample::select(
                b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-+/=. ".to_vec()
            ),
        ) {
            let key = ApiKey::generate(env).unwrap();
            let mut bytes = key.expose().as_bytes().to_vec();
            let i = pos.index(bytes.len());
            prop_assume!(bytes[i] != replacement);
            bytes[i] = replacement;
            let changed = String::from_utf8(bytes).unwrap();
            // Swapping the env for the other valid one changes the checksummed
            // text, so it must still fail.
            prop_assert!(ApiKey::parse(&changed).is_err(), "{} accepted", changed);
        }
    }
}
