//! The values sessions are made of: the refresh-token secret, family ids,
//! the stored rows, and what a refresh asks the store to write.

use std::fmt;

use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::keys::apikey::{SECRET_CHARS, base62_fixed, random_bytes};
use crate::keys::pepper::{KeyHash, Pepper};
use crate::model::{AuditEntry, Tenant};
use crate::prefixed_id::prefixed_id;

pub const REFRESH_PREFIX: &str = "kgr_";

/// Domain separation between a token's stored hash and its successor. Both
/// are HMACs of the token under the pepper; without this label the stored
/// hash of a token would *be* the material of its successor, and a copy of
/// the database would hand out live tokens.
const SUCCESSOR_LABEL: &str = "keygate/refresh-successor/v1:";

/// Reasons a family is revoked, as stored in `revoked_reason`.
pub const REASON_REUSE: &str = "reuse";
pub const REASON_LOGOUT: &str = "logout";
pub const REASON_REVOKED: &str = "revoked";
pub const REASON_USER_REVOKED: &str = "user_revoked";

/// A revocation reason: 1-64 lowercase letters, digits, `_`, `-` or `.`, so
/// it is safe to store, log and match on.
pub fn validate_reason(reason: &str) -> Result<(), Error> {
    let ok = !reason.is_empty()
        && reason.len() <= 64
        && reason
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "reason",
            "1-64 lowercase letters, digits, _ - or .",
        ))
    }
}

/// A refresh token: `kgr_` + 43 base62 characters (256 bits). It refuses to
/// print, is wiped on drop, and has no `==`: only its hash is ever compared.
#[derive(Clone)]
pub struct RefreshToken(Zeroizing<String>);

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(redacted)")
    }
}

impl RefreshToken {
    /// A fresh token from the OS CSPRNG: the first of a family.
    pub fn generate() -> Result<Self, Error> {
        let mut raw = Zeroizing::new([0u8; 32]);
        random_bytes(raw.as_mut())?;
        Ok(Self::from_digits(&raw))
    }

    fn from_digits(raw: &[u8; 32]) -> Self {
        let digits = Zeroizing::new(base62_fixed(raw));
        let mut text = Zeroizing::new(String::with_capacity(REFRESH_PREFIX.len() + SECRET_CHARS));
        text.push_str(REFRESH_PREFIX);
        text.extend(digits.iter().map(|&b| char::from(b)));
        Self(text)
    }

    /// Checks the shape only; never touches storage.
    pub fn parse(candidate: &str) -> Option<Self> {
        let body = candidate.strip_prefix(REFRESH_PREFIX)?;
        (body.len() == SECRET_CHARS && body.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| Self(Zeroizing::new(candidate.to_owned())))
    }

    /// The token that replaces this one when it is used.
    ///
    /// It is derived, not drawn, so that a retry inside the grace window can
    /// be answered with the very same successor without storing any secret.
    /// This is safe because computing it needs both the pepper (never in the
    /// database) and this token's plaintext (which only its holder has); the
    /// output is a full 256-bit HMAC, as unpredictable as a random token; and
    /// what is stored for the successor is a second HMAC, of the successor's
    /// text, which is not the material computed here (see `SUCCESSOR_LABEL`).
    pub fn successor(&self, pepper: &Pepper) -> Self {
        let mut input = Zeroizing::new(String::with_capacity(SUCCESSOR_LABEL.len() + self.0.len()));
        input.push_str(SUCCESSOR_LABEL);
        input.push_str(&self.0);
        let digest = Zeroizing::new(pepper.hash(&input));
        Self::from_digits(&digest)
    }

    /// The secret text. Call only to hash it or to hand it to its holder.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

prefixed_id! {
    /// The public id of a refresh-token family: `fam_` + 16 base62 characters.
    FamilyId { prefix: "fam_", chars: 16, field: "family_id", noun: "a family id" }
}

/// One login session: the chain of refresh tokens that rotate from its first.
/// Times are Unix milliseconds: the grace window is counted in seconds and
/// a whole-second clock would make it up to a second longer or shorter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefreshFamily {
    pub id: FamilyId,
    /// Whatever the caller identifies users by; opaque here.
    pub user_id: String,
    pub tenant: Option<Tenant>,
    pub created_at_ms: i64,
    pub absolute_expires_at_ms: i64,
    /// The last successful rotation (or the start); the idle timeout counts from it.
    pub last_used_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    pub revoked_reason: Option<String>,
}

/// One refresh token as stored: its peppered hash, never its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub hash: KeyHash,
    pub pepper_version: i32,
    pub family_id: FamilyId,
    /// 0 for the family's first token, +1 per rotation.
    pub generation: i64,
    pub issued_at_ms: i64,
    /// Set once, by the rotation that consumed it.
    pub used_at_ms: Option<i64>,
}

/// What the store read, under the family's lock, for a presented token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedToken {
    pub family: RefreshFamily,
    pub token: RefreshTokenRecord,
    /// The family's highest generation (the presented token itself when it is current).
    pub newest: RefreshTokenRecord,
}

/// What a refresh writes, decided by the session service from a
/// [`PresentedToken`] and applied by the store in the same transaction.
#[derive(Debug, Clone)]
pub enum RefreshStep {
    /// Mark the presented token used at `at_ms` (only if it is still unused),
    /// insert `successor`, and move the family's `last_used_at_ms` to `at_ms`.
    Rotate {
        at_ms: i64,
        successor: RefreshTokenRecord,
        audit: AuditEntry,
    },
    /// Revoke the whole family (the first revocation's time and reason are kept).
    RevokeFamily {
        at_ms: i64,
        reason: String,
        audit: AuditEntry,
    },
    /// Write nothing: a refusal, or a replay answered from what is stored.
    Nothing,
}

/// Chooses the step for what the store read. Called with the family locked.
pub type RefreshDecider<'a> =
    dyn Fn(&PresentedToken) -> Result<RefreshStep, Error> + Send + Sync + 'a;

/// Families whose absolute expiry, idle expiry or revocation lies before
/// these times (Unix ms) are deleted with their tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeCutoff {
    pub absolute_expired_before_ms: i64,
    pub last_used_before_ms: i64,
    pub revoked_before_ms: i64,
}

/// A blocked access token: its `jti` until its `exp` (Unix seconds, as in
/// the JWT). `seq` orders entries for syncing nodes; 0 before insertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedJti {
    pub seq: i64,
    pub jti: String,
    pub expires_at: i64,
    pub added_at_ms: i64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pepper() -> Pepper {
        Pepper::new(1, &[9; 32]).unwrap()
    }

    #[test]
    fn tokens_have_the_documented_shape_and_never_print() {
        let t = RefreshToken::generate().unwrap();
        assert!(t.expose().starts_with("kgr_"));
        assert_eq!(t.expose().len(), 4 + 43);
        assert!(RefreshToken::parse(t.expose()).is_some());
        assert!(!format!("{t:?}").contains(&t.expose()[4..]));
        for bad in [
            "",
            "kgr_",
            "kg_live_x",
            &format!("{}0", t.expose()),
            &t.expose()[1..],
        ] {
            assert!(RefreshToken::parse(bad).is_none(), "{bad}");
        }
        let mut odd = t.expose().to_owned();
        odd.replace_range(10..11, "-");
        assert!(RefreshToken::parse(&odd).is_none());
    }

    #[test]
    fn successors_are_deterministic_well_formed_and_not_the_stored_hash() {
        let p = pepper();
        let t = RefreshToken::generate().unwrap();
        let a = t.successor(&p);
        let b = t.successor(&p);
        assert_eq!(a.expose(), b.expose());
        assert_ne!(a.expose(), t.expose());
        assert!(RefreshToken::parse(a.expose()).is_some());
        // The stored form of `t` is not the successor's material.
        let stored = p.hash(t.expose());
        assert_ne!(RefreshToken::from_digits(&stored).expose(), a.expose());
        let other = Pepper::new(1, &[8; 32]).unwrap();
        assert_ne!(t.successor(&other).expose(), a.expose());
    }

    #[test]
    fn family_ids_and_reasons_parse() {
        let id = FamilyId::generate().unwrap();
        assert_eq!(FamilyId::parse(id.as_str()).unwrap(), id);
        for bad in [
            "fam_",
            "fam_short",
            "key_0123456789abcdef",
            "fam_0123456789abcde!",
        ] {
            assert!(FamilyId::parse(bad).is_err(), "{bad}");
        }
        for good in [
            REASON_REUSE,
            REASON_LOGOUT,
            REASON_REVOKED,
            REASON_USER_REVOKED,
            "admin.v2",
        ] {
            assert!(validate_reason(good).is_ok(), "{good}");
        }
        for bad in ["", "Logout", "has space", &"x".repeat(65)] {
            assert!(validate_reason(bad).is_err(), "{bad}");
        }
    }
}
