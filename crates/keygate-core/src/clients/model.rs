//! The registry's records: client ids, certificate thumbprints, CA names,
//! and the matcher that ties a certificate to one registered client.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::clients::pattern::{NameKind, NamePattern};
use crate::error::Error;
use crate::model::{RateLimitSpec, Scope, Tenant};
use crate::prefixed_id::prefixed_id;

prefixed_id! {
    /// The public identifier of a client: `cli_` + 16 base62 characters.
    ClientId { prefix: "cli_", chars: 16, field: "id", noun: "a client id" }
}

/// SHA-256 of a certificate's DER: RFC 8705's `x5t#S256`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Thumbprint(pub [u8; 32]);

impl Thumbprint {
    /// Base64url without padding (43 characters, as `x5t#S256` is written)
    /// or hex (64 digits, either case, as `openssl x509 -fingerprint
    /// -sha256` prints it once its colons are removed; colons are accepted).
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = || {
            Error::invalid(
                "thumbprint",
                "a SHA-256 thumbprint is 43 base64url characters (x5t#S256) or 64 hex digits",
            )
        };
        let mut out = [0u8; 32];
        let hexed: String = s.chars().filter(|c| *c != ':').collect();
        if hexed.len() == 64 {
            hex::decode_to_slice(&hexed, &mut out).map_err(|_| bad())?;
            return Ok(Self(out));
        }
        if s.len() == 43 {
            let raw = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
            if raw.len() == 32 {
                out.copy_from_slice(&raw);
                return Ok(Self(out));
            }
        }
        Err(bad())
    }

    /// The `x5t#S256` form.
    pub fn to_b64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl fmt::Debug for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Thumbprint({})", self.to_b64url())
    }
}

impl fmt::Display for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_b64url())
    }
}

/// The name of a configured client CA (`[mtls] cas`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CaName(String);

impl CaName {
    pub fn parse(s: &str) -> Result<Self, Error> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::invalid(
                "ca",
                format!("{s:?} is not a CA name: 1-64 letters, digits or . _ -"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a certificate is tied to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Exactly this certificate, whoever issued it (a self-signed one too:
    /// RFC 8705's `self_signed_tls_client_auth`). Its dates still apply.
    Pinned(Thumbprint),
    /// Any certificate that chains to the named CA and carries a name the
    /// pattern matches.
    Pattern { ca: CaName, pattern: NamePattern },
}

impl Matcher {
    pub fn ca(&self) -> Option<&CaName> {
        match self {
            Matcher::Pinned(_) => None,
            Matcher::Pattern { ca, .. } => Some(ca),
        }
    }

    /// The stored `kind` column: `thumbprint` or the name kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Matcher::Pinned(_) => "thumbprint",
            Matcher::Pattern { pattern, .. } => pattern.kind().as_str(),
        }
    }

    /// The stored `pattern` column: the thumbprint (base64url) or the pattern.
    pub fn value(&self) -> String {
        match self {
            Matcher::Pinned(t) => t.to_b64url(),
            Matcher::Pattern { pattern, .. } => pattern.as_str().to_owned(),
        }
    }

    /// The inverse of (`ca`, `kind`, `value`), for reading rows back.
    pub fn from_parts(ca: Option<&str>, kind: &str, value: &str) -> Result<Self, Error> {
        match (kind, ca) {
            ("thumbprint", None) => Ok(Matcher::Pinned(Thumbprint::parse(value)?)),
            (kind, Some(ca)) => Ok(Matcher::Pattern {
                ca: CaName::parse(ca)?,
                pattern: NamePattern::parse(NameKind::parse(kind)?, value)?,
            }),
            _ => Err(Error::invalid(
                "matcher",
                "a pattern needs a CA, a thumbprint none",
            )),
        }
    }
}

/// A registered client. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRecord {
    pub id: ClientId,
    pub name: String,
    pub owner: String,
    pub tenant: Option<Tenant>,
    pub scopes: Vec<Scope>,
    pub rate_limit: Option<RateLimitSpec>,
    pub matcher: Matcher,
    pub created_at: i64,
    pub updated_at: i64,
    pub revoked_at: Option<i64>,
    /// Bumped by every update, for optimistic concurrency.
    pub version: i64,
}

impl ClientRecord {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s.as_str() == scope)
    }
}

#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub owner: String,
    pub tenant: Option<Tenant>,
    pub scopes: Vec<Scope>,
    pub rate_limit: Option<RateLimitSpec>,
    pub matcher: Matcher,
}

/// A partial update. `Some(None)` clears the rate limit.
#[derive(Debug, Clone, Default)]
pub struct ClientPatch {
    pub name: Option<String>,
    pub owner: Option<String>,
    pub scopes: Option<Vec<Scope>>,
    pub rate_limit: Option<Option<RateLimitSpec>>,
    /// A new certificate to pin, or a new pattern: how a client's
    /// certificate is rotated without a new client id.
    pub matcher: Option<Matcher>,
}

/// The clients list's filters.
#[derive(Debug, Clone, Default)]
pub struct ClientFilter {
    pub tenant: Option<Tenant>,
    pub owner: Option<String>,
    pub ca: Option<CaName>,
    pub include_revoked: bool,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_other_shapes() {
        let id = ClientId::generate().unwrap();
        assert_eq!(ClientId::parse(id.as_str()).unwrap(), id);
        for bad in [
            "",
            "cli_",
            "key_AbCdEfGh01234567",
            "cli_AbCdEfGh0123456!",
            "cli_AbCdEfGh012345678",
        ] {
            assert!(ClientId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn thumbprints_parse_from_base64url_and_hex_alike() {
        let raw = [0xabu8; 32];
        let b64 = URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(Thumbprint::parse(&b64).unwrap().0, raw);
        assert_eq!(Thumbprint::parse(&hex::encode(raw)).unwrap().0, raw);
        assert_eq!(Thumbprint::parse(&hex::encode_upper(raw)).unwrap().0, raw);
        let colons = raw
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(Thumbprint::parse(&colons).unwrap().0, raw);
        for bad in [
            "",
            "abc",
            &b64[..42],
            &hex::encode([1u8; 31]),
            &format!("{b64}="),
        ] {
            assert!(Thumbprint::parse(bad).is_err(), "{bad}");
        }
    }
}
