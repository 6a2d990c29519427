//! User records and the validated values they are made of: ids, usernames,
//! roles and custom claims. The password hash is not here: it lives in
//! `password::PhcHash`, which storage hands out apart from the record, so
//! nothing that serializes a `UserRecord` can leak it.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::model::Tenant;
use crate::prefixed_id::prefixed_id;

pub type Claims = serde_json::Map<String, serde_json::Value>;

pub const MAX_USERNAME_CHARS: usize = 128;
pub const MAX_ROLES: usize = 64;
/// Custom claims are copied into every access token; this keeps a typical
/// token under 1 KB.
pub const MAX_CLAIMS_BYTES: usize = 2048;

/// Claim names that tokens set themselves (RFC 7519, RFC 8693, RFC 7800 and
/// keygate's own); a user's custom claims may not shadow them.
pub const RESERVED_CLAIMS: [&str; 15] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "roles",
    "tenant",
    "scope",
    "client_id",
    "typ",
    "cnf",
    "act",
    "azp",
];

/// Every claim named with this prefix is keygate's (`kg_kind`, `kg_owner`).
pub const RESERVED_PREFIX: &str = "kg_";

prefixed_id! {
    /// The public identifier of a user: `usr_` + 16 base62 characters.
    UserId { prefix: "usr_", chars: 16, field: "id", noun: "a user id" }
}

/// A username as shown, with its key: the form that is unique, server-wide
/// rather than per tenant, so a login needs no tenant.
///
/// The key is RFC 8265's UsernameCaseMapped profile (PRECIS): fullwidth
/// letters become their usual forms, case is folded and the result is in
/// NFC, so `ｃarol`, `CAROL` and `carol` are one name. A name the profile
/// refuses (spaces, symbols, control or invisible characters) cannot be
/// created. The shown form is the UsernameCasePreserved profile's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    display: String,
    normalized: String,
}

/// Keys of rows created before usernames were PRECIS-keyed, whose names the
/// profile refuses (such as `Dave Smith`): this prefix and the lowercase
/// form. The profile never outputs a control character, so no new name can
/// reach such a key.
const LEGACY_KEY_PREFIX: char = '\u{1}';
/// Keys of rows shut out of login by name, because an older row has their
/// key; nothing a client sends maps to one.
const SHUT_OUT_KEY_PREFIX: char = '\u{2}';

fn precis_key(name: &str) -> Option<String> {
    use precis_profiles::UsernameCaseMapped;
    use precis_profiles::precis_core::profile::PrecisFastInvocation;
    let key = UsernameCaseMapped::enforce(name).ok()?;
    // The key must be a fixed point, or two spellings of one name could
    // still end up under two keys.
    let again = UsernameCaseMapped::enforce(key.as_ref()).ok()?;
    (again == key).then(|| key.into_owned())
}

fn precis_display(name: &str) -> Option<String> {
    use precis_profiles::UsernameCasePreserved;
    use precis_profiles::precis_core::profile::PrecisFastInvocation;
    UsernameCasePreserved::enforce(name)
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// The rules every name ever created obeyed.
fn check_length_and_controls(name: &str) -> Result<(), Error> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_USERNAME_CHARS {
        return Err(Error::invalid(
            "username",
            format!("must be 1-{MAX_USERNAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "username",
            "must not contain control characters",
        ));
    }
    Ok(())
}

impl Username {
    /// A new username: refused unless RFC 8265 accepts it.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let trimmed = s.trim();
        check_length_and_controls(trimmed)?;
        let refused = || {
            Error::invalid(
                "username",
                "is not a username under RFC 8265 (PRECIS UsernameCaseMapped): use letters, \
                 digits and ASCII punctuation, without spaces, symbols or invisible characters",
            )
        };
        let normalized = precis_key(trimmed).ok_or_else(refused)?;
        let display = precis_display(trimmed).ok_or_else(refused)?;
        check_length_and_controls(&normalized)?;
        Ok(Self {
            display,
            normalized,
        })
    }

    /// The key a login with this name looks up, or None for a name no user
    /// can have. Names RFC 8265 refuses map to the legacy key, which only
    /// rows created before PRECIS keys can hold.
    pub fn login_key(s: &str) -> Option<String> {
        let trimmed = s.trim();
        check_length_and_controls(trimmed).ok()?;
        Some(precis_key(trimmed).unwrap_or_else(|| {
            let mut key = String::from(LEGACY_KEY_PREFIX);
            key.push_str(&trimmed.to_lowercase());
            key
        }))
    }

    /// The key of a stored row whose key an older row already holds.
    pub fn shut_out_key(id: &UserId) -> String {
        format!("{SHUT_OUT_KEY_PREFIX}{id}")
    }

    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The form that uniqueness and login throttling use.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

/// A role name such as `billing-admin`: the same alphabet as a scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Role(String);

impl Role {
    pub fn parse(s: &str) -> Result<Self, Error> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":._-*/".contains(&b));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::invalid(
                "roles",
                format!("{s:?} is not a role: 1-64 letters, digits or : . _ - * /"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Role {
    type Error = Error;
    fn try_from(v: String) -> Result<Self, Error> {
        Self::parse(&v)
    }
}

impl Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

pub fn validate_roles(roles: &[Role]) -> Result<Vec<Role>, Error> {
    if roles.len() > MAX_ROLES {
        return Err(Error::invalid(
            "roles",
            format!("at most {MAX_ROLES} roles"),
        ));
    }
    let mut out = roles.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

pub fn validate_claims(claims: &Claims) -> Result<(), Error> {
    if let Some(name) = claims
        .keys()
        .find(|k| RESERVED_CLAIMS.contains(&k.as_str()) || k.starts_with(RESERVED_PREFIX))
    {
        return Err(Error::invalid(
            "claims",
            format!("{name:?} is set by keygate itself and cannot be a custom claim"),
        ));
    }
    let size = serde_json::to_vec(claims).map_or(usize::MAX, |v| v.len());
    if size > MAX_CLAIMS_BYTES {
        return Err(Error::invalid(
            "claims",
            format!("must serialize to at most {MAX_CLAIMS_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// A user as stored, without its password hash. Times are Unix seconds,
/// except `sessions_cutoff_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub id: UserId,
    /// As given at creation, trimmed and width-mapped; unique under RFC
    /// 8265 (see `Username`).
    pub username: String,
    pub roles: Vec<Role>,
    pub tenant: Option<Tenant>,
    pub claims: Claims,
    pub disabled: bool,
    /// Unix milliseconds. Every token issued to this user before it, and
    /// every refresh family started before it, is refused. 0: never cut.
    pub sessions_cutoff_ms: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Bumped by every update, for optimistic concurrency.
    pub version: i64,
}

impl UserRecord {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.as_str() == role)
    }
}

/// Whether a token with this `iat` (Unix seconds) was issued before the
/// cut-off (Unix milliseconds), and must be refused. A JWT's `iat` is whole
/// seconds, so a token from the very second of the cut-off is refused too:
/// issue with [`earliest_iat_secs`] to avoid that for fresh logins.
pub fn issued_before_cutoff(iat_secs: i64, cutoff_ms: i64) -> bool {
    iat_secs.saturating_mul(1000) < cutoff_ms
}

/// The `iat` to put in a token issued now: never before the cut-off's
/// second, so a login right after a password change is not refused.
pub fn earliest_iat_secs(now_secs: i64, cutoff_ms: i64) -> i64 {
    now_secs.max(cutoff_ms.saturating_add(999).div_euclid(1000))
}

#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub tenant: Option<Tenant>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn usernames_are_trimmed_and_normalized() {
        let u = Username::parse("  Alice.Example ").unwrap();
        assert_eq!(u.as_str(), "Alice.Example");
        assert_eq!(u.normalized(), "alice.example");
        assert!(Username::parse("   ").is_err());
        assert!(Username::parse("a\u{0}b").is_err());
        assert!(Username::parse("a\nb").is_err());
        assert!(Username::parse(&"é".repeat(128)).is_ok());
        assert!(Username::parse(&"é".repeat(129)).is_err());
    }

    #[test]
    fn usernames_are_keyed_by_rfc_8265() {
        let key = |s: &str| Username::parse(s).unwrap().normalized().to_owned();
        // Fullwidth, case and composition variants are one name.
        for same in [
            "\u{ff43}arol",
            "\u{ff23}\u{ff21}\u{ff32}\u{ff2f}\u{ff2c}",
            "CaRoL",
        ] {
            assert_eq!(key(same), "carol", "{same}");
        }
        assert_eq!(key("Jose\u{301}"), key("Jos\u{e9}"));
        // The shown form keeps case but not width.
        assert_eq!(Username::parse("\u{ff23}arol").unwrap().as_str(), "Carol");
        // Refused: spaces, symbols, invisible and compatibility characters.
        for bad in [
            "carol smith",
            "snow\u{2603}",
            "a\u{200b}b",
            "\u{2126}mega",
            "a\u{3000}b",
        ] {
            let err = Username::parse(bad).unwrap_err();
            assert!(err.to_string().contains("RFC 8265"), "{bad}: {err}");
        }
        // A login key: the same for a creatable name, a legacy key for a
        // name only an old row can have, none for an impossible one.
        assert_eq!(Username::login_key(" \u{ff43}arol ").unwrap(), "carol");
        let legacy = Username::login_key("Dave Smith").unwrap();
        assert_eq!(legacy, "\u{1}dave smith");
        assert!(Username::parse(&legacy).is_err());
        assert!(Username::login_key("a\nb").is_none());
        let id = UserId::generate().unwrap();
        assert!(Username::login_key(&Username::shut_out_key(&id)).is_none());
    }

    #[test]
    fn ids_roles_and_claims_validate() {
        let id = UserId::generate().unwrap();
        assert!(id.as_str().starts_with("usr_"));
        assert_eq!(UserId::parse(id.as_str()).unwrap(), id);
        assert!(UserId::parse("key_0123456789abcdef").is_err());
        assert!(Role::parse("billing:admin").is_ok());
        assert!(Role::parse("has space").is_err());
        let roles = validate_roles(&[
            Role::parse("b").unwrap(),
            Role::parse("a").unwrap(),
            Role::parse("b").unwrap(),
        ])
        .unwrap();
        assert_eq!(roles.len(), 2);

        let mut claims = Claims::new();
        claims.insert("department".into(), serde_json::json!("sales"));
        assert!(validate_claims(&claims).is_ok());
        for reserved in RESERVED_CLAIMS
            .into_iter()
            .chain(["kg_kind", "kg_owner", "kg_x"])
        {
            let mut c = claims.clone();
            c.insert(reserved.into(), serde_json::json!(1));
            assert!(validate_claims(&c).is_err(), "{reserved}");
        }
        claims.insert(
            "big".into(),
            serde_json::json!("x".repeat(MAX_CLAIMS_BYTES)),
        );
        assert!(validate_claims(&claims).is_err());
    }

    #[test]
    fn cutoff_rule_refuses_the_cutoff_second_and_issuers_step_past_it() {
        let cutoff = 1_700_000_000_500;
        assert!(issued_before_cutoff(1_699_999_999, cutoff));
        assert!(issued_before_cutoff(1_700_000_000, cutoff));
        assert!(!issued_before_cutoff(1_700_000_001, cutoff));
        let iat = earliest_iat_secs(1_700_000_000, cutoff);
        assert_eq!(iat, 1_700_000_001);
        assert!(!issued_before_cutoff(iat, cutoff));
        assert_eq!(earliest_iat_secs(1_700_000_000, 0), 1_700_000_000);
        assert!(!issued_before_cutoff(5, 5000));
    }
}
