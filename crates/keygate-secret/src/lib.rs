//! `Secret<T>`: a password, token, key or credential-bearing URL that
//! refuses to print. `Debug` and `Display` write a fixed `[redacted]`
//! whatever the value, so a secret inside a derived `Debug` (a request body,
//! a config struct, a tracing field) stays out of logs and error messages.
//!
//! Serde is transparent: a `Secret<String>` is a JSON string on the wire,
//! so a struct changes nothing in its format by wrapping a field. Sending a
//! secret is deliberate (the API shows a new key exactly once); printing one
//! never is.
//!
//! The value is reached only through `expose()`, which makes every use
//! greppable, and it is overwritten when dropped (`zeroize`). Copies the
//! program made before wrapping it (a parse buffer) are not covered.
//!
//! There is no `PartialEq`: comparing secrets wants constant time, which
//! belongs with the digest, not on the wrapper.
#![forbid(unsafe_code)]

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, Zeroizing};

/// What `Debug` and `Display` write for every secret.
pub const REDACTED: &str = "[redacted]";

/// A value that is never printed and is wiped on drop.
pub struct Secret<T: Zeroize>(Zeroizing<T>);

/// The common case: a secret text.
pub type SecretString = Secret<String>;

impl<T: Zeroize> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The value itself. Every call site is a place a secret leaves its
    /// wrapper: keep them few and never format the result.
    pub fn expose(&self) -> &T {
        &self.0
    }

    pub fn expose_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl Secret<String> {
    /// The text, for APIs that take `&str`.
    pub fn expose_str(&self) -> &str {
        self.0.as_str()
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret<String> {
    fn from(value: &str) -> Self {
        Self::new(value.to_owned())
    }
}

impl<T: Zeroize + Clone> Clone for Secret<T> {
    fn clone(&self) -> Self {
        Self::new(self.expose().clone())
    }
}

impl<T: Zeroize + Default> Default for Secret<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Zeroize + Serialize> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.expose().serialize(serializer)
    }
}

impl<'de, T: Zeroize + Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const VALUE: &str = "kg_live_hunter2hunter2";

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = SecretString::from(VALUE);
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{s:#?} {s:>40}"), format!("{REDACTED} {REDACTED}"));
        let bytes = Secret::new(b"raw bytes".to_vec());
        assert_eq!(format!("{bytes:?}"), REDACTED);
    }

    #[test]
    fn a_derived_debug_around_it_is_redacted_too() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Login {
            username: String,
            password: SecretString,
            refresh: Option<SecretString>,
        }
        let login = Login {
            username: "carol".into(),
            password: VALUE.into(),
            refresh: Some("refresh-token-value".into()),
        };
        let text = format!("{login:?} {login:#?}");
        assert!(text.contains("carol"));
        assert!(!text.contains(VALUE));
        assert!(!text.contains("refresh-token-value"));
    }

    #[test]
    fn serde_is_transparent() {
        let s = SecretString::from(VALUE);
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{VALUE}\""));
        let back: SecretString = serde_json::from_str(&format!("\"{VALUE}\"")).unwrap();
        assert_eq!(back.expose(), VALUE);
        let none: Option<SecretString> = serde_json::from_str("null").unwrap();
        assert!(none.is_none());
        assert!(serde_json::from_str::<SecretString>("42").is_err());
    }

    #[test]
    fn expose_clone_and_default_reach_the_value() {
        let mut s = SecretString::from(VALUE);
        assert_eq!(s.expose_str(), VALUE);
        let c = s.clone();
        s.expose_mut().push('!');
        assert_eq!(c.expose(), VALUE);
        assert_eq!(s.expose_str(), format!("{VALUE}!"));
        assert!(SecretString::default().expose().is_empty());
    }
}
