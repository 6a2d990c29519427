//! The records keygate keeps, and the validated values they are made of.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::keys::apikey::{KeyEnv, KeyId};

pub type Metadata = serde_json::Map<String, serde_json::Value>;

pub const MAX_SCOPES: usize = 64;
pub const MAX_METADATA_BYTES: usize = 8 * 1024;
pub const MAX_TEXT: usize = 256;

/// The scope that makes a key an admin key.
pub const ADMIN_SCOPE: &str = "admin";
/// The scope that lets a key call the verification endpoint.
pub const VERIFY_SCOPE: &str = "keys:verify";

fn valid_token(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// A permission name such as `orders:read`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Scope(String);

impl Scope {
    pub fn parse(s: &str) -> Result<Self, Error> {
        if valid_token(s, 64, b":._-*/") {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::invalid(
                "scopes",
                format!("{s:?} is not a scope: 1-64 letters, digits or : . _ - * /"),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Scope {
    type Error = Error;
    fn try_from(v: String) -> Result<Self, Error> {
        Self::parse(&v)
    }
}
impl From<Scope> for String {
    fn from(v: Scope) -> String {
        v.0
    }
}

/// A tenant name; keys of one tenant are invisible to another tenant's admins.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Tenant(String);

impl Tenant {
    pub fn parse(s: &str) -> Result<Self, Error> {
        if valid_token(s, 64, b"._-") {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::invalid(
                "tenant",
                format!("{s:?} is not a tenant: 1-64 letters, digits or . _ -"),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Tenant {
    type Error = Error;
    fn try_from(v: String) -> Result<Self, Error> {
        Self::parse(&v)
    }
}
impl From<Tenant> for String {
    fn from(v: Tenant) -> String {
        v.0
    }
}

/// `limit` requests per `period_seconds`, enforced per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    pub limit: u32,
    pub period_seconds: u32,
}

impl RateLimitSpec {
    pub fn validate(self) -> Result<Self, Error> {
        if self.limit == 0 || self.limit > 1_000_000_000 {
            return Err(Error::invalid(
                "rate_limit.limit",
                "must be between 1 and 1000000000",
            ));
        }
        if self.period_seconds == 0 || self.period_seconds > 86_400 * 31 {
            return Err(Error::invalid(
                "rate_limit.period_seconds",
                "must be between 1 and 2678400 (31 days)",
            ));
        }
        Ok(self)
    }
}

/// A key as stored (never its secret). Times are Unix seconds.
///
/// `repr(C)` keeps the fields every verification reads together at the
/// front, so a cold cache entry costs as few memory misses as possible.
#[derive(Debug, Clone, PartialEq)]
#[repr(C)]
pub struct KeyRecord {
    pub revoked_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub remaining: Option<i64>,
    pub rate_limit: Option<RateLimitSpec>,
    pub tenant: Option<Tenant>,
    pub scopes: Vec<Scope>,
    pub id: KeyId,
    pub name: String,
    pub owner: String,
    pub metadata: Metadata,
    pub env: KeyEnv,
    pub prefix: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_used_at: Option<i64>,
    /// Bumped by every update, for optimistic concurrency.
    pub version: i64,
}

impl KeyRecord {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s.as_str() == scope)
    }
    pub fn is_admin(&self) -> bool {
        self.has_scope(ADMIN_SCOPE)
    }
}

/// One stored secret of a key: the current one, or the previous one during a
/// rotation's grace window (`expires_at` set).
#[derive(Debug, Clone, PartialEq)]
pub struct SecretRecord {
    pub hash: [u8; 32],
    pub pepper_version: i32,
    pub key_id: KeyId,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

pub fn validate_text(field: &'static str, value: &str) -> Result<(), Error> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_TEXT {
        return Err(Error::invalid(
            field,
            format!("must be at most {MAX_TEXT} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

pub fn validate_scopes(scopes: &[Scope]) -> Result<Vec<Scope>, Error> {
    if scopes.len() > MAX_SCOPES {
        return Err(Error::invalid(
            "scopes",
            format!("at most {MAX_SCOPES} scopes"),
        ));
    }
    let mut out = scopes.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

pub fn validate_metadata(metadata: &Metadata) -> Result<(), Error> {
    let size = serde_json::to_vec(metadata)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_METADATA_BYTES {
        return Err(Error::invalid(
            "metadata",
            format!("must serialize to at most {MAX_METADATA_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// An audit trail entry. `detail` never holds a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    pub at: i64,
    pub action: String,
    pub actor: String,
    pub target: Option<String>,
    pub tenant: Option<String>,
    pub request_id: Option<String>,
    pub detail: serde_json::Value,
    /// Storage order, used as the pagination cursor; 0 before insertion.
    #[serde(skip)]
    pub seq: i64,
}

/// An audit row as listed: one event (`count` 1), or a tally of like
/// failures seen `count` times from `entry.at` to `last_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub entry: AuditEntry,
    pub count: i64,
    pub last_at: i64,
}

/// Failures that share `key` (what, from where, why, which minute): added to
/// the row with that key, or written as a new row. `key` never holds a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditTally {
    pub key: String,
    pub row: AuditRow,
}

/// Which keys a list asks for. `search`, `status` and `expires_before`
/// narrow further; `status` set overrides `include_revoked`.
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    pub tenant: Option<Tenant>,
    pub owner: Option<String>,
    pub include_revoked: bool,
    /// A case-insensitive substring of the name, display prefix, id or
    /// owner (matched literally: `%` and `_` are no wildcards). Case is
    /// folded for ASCII on SQLite, for all of Unicode on PostgreSQL.
    pub search: Option<String>,
    pub status: Option<KeyStatus>,
    /// Only keys with an expiry before this time (Unix seconds).
    pub expires_before: Option<i64>,
    /// The time `status` is judged at (Unix seconds); `KeyService::list`
    /// sets it from its clock.
    pub now: i64,
}

/// A key's state as the API and the dashboard name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Neither revoked nor expired.
    Active,
    Revoked,
    /// Past its expiry, not revoked.
    Expired,
}

impl KeyStatus {
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "active" => Ok(Self::Active),
            "revoked" => Ok(Self::Revoked),
            "expired" => Ok(Self::Expired),
            _ => Err(Error::invalid(
                "status",
                format!("{s:?} is not one of active, revoked, expired"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }

    /// The status of `key` at `now`.
    pub fn of(key: &KeyRecord, now: i64) -> Self {
        if key.revoked_at.is_some() {
            Self::Revoked
        } else if key.expires_at.is_some_and(|at| at <= now) {
            Self::Expired
        } else {
            Self::Active
        }
    }
}

/// How many keys an admin sees in each state; `expiring` counts the active
/// keys whose expiry comes before the time asked about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyCounts {
    pub active: u64,
    pub revoked: u64,
    pub expired: u64,
    pub expiring: u64,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub tenant: Option<Tenant>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// Keyset pagination: `after` is the storage sequence of the last row seen.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub after: Option<i64>,
    pub limit: u32,
}

pub const MAX_PAGE: u32 = 500;

// Serialized as the bare string, without the copy `serde(into)` would make.
impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

// Serialized as the bare string, without the copy `serde(into)` would make.
impl Serialize for Tenant {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn scopes_and_tenants_parse() {
        assert!(Scope::parse("orders:read").is_ok());
        assert!(Scope::parse("").is_err());
        assert!(Scope::parse("has space").is_err());
        assert!(Tenant::parse("acme-1").is_ok());
        assert!(Tenant::parse("acme/1").is_err());
        let scopes = validate_scopes(&[
            Scope::parse("b").unwrap(),
            Scope::parse("a").unwrap(),
            Scope::parse("b").unwrap(),
        ])
        .unwrap();
        assert_eq!(scopes.len(), 2);
    }

    #[test]
    fn rate_limits_are_bounded() {
        assert!(
            RateLimitSpec {
                limit: 0,
                period_seconds: 1
            }
            .validate()
            .is_err()
        );
        assert!(
            RateLimitSpec {
                limit: 1,
                period_seconds: 0
            }
            .validate()
            .is_err()
        );
        assert!(
            RateLimitSpec {
                limit: 10,
                period_seconds: 60
            }
            .validate()
            .is_ok()
        );
    }
}
