//! JWT claims (RFC 7519 §4.1): typed registered claims, the rest as JSON,
//! and their validation against a [`Validation`] at a given time.
//!
//! Time rule, precisely (`now` and `leeway` in whole seconds):
//! - `exp` is required; the token is refused when `exp <= now - leeway`, so
//!   with no leeway a token whose `exp` equals `now` is already expired;
//! - `nbf` and `iat` are optional; the token is refused when either is
//!   `> now + leeway`.
//!
//! A fractional NumericDate is rounded toward refusal: `exp` down, `nbf` and
//! `iat` up. A time claim must be a JSON number, finite, non-negative and at
//! most [`MAX_NUMERIC_DATE`]; any other type or value is an error, never
//! treated as absent (CVE-2026-25537).

use serde_json::{Map, Value};
use std::borrow::Cow;

use crate::json::{self, Members};
use crate::{Error, Validation};

/// 9999-12-31T23:59:59Z: later dates are refused, not saturated.
pub const MAX_NUMERIC_DATE: f64 = 253_402_300_799.0;

/// Seconds since the epoch as a JWT carries them (integer or finite float).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct NumericDate(f64);

impl NumericDate {
    fn parse(value: &Value, name: &'static str) -> Result<Self, Error> {
        let invalid = Error::InvalidClaim { name };
        let Value::Number(number) = value else {
            return Err(invalid);
        };
        let secs = number.as_f64().ok_or(invalid.clone())?;
        if !secs.is_finite() || !(0.0..=MAX_NUMERIC_DATE).contains(&secs) {
            return Err(invalid);
        }
        Ok(Self(secs))
    }

    /// A whole-second date, as keygate issues them; later than
    /// [`MAX_NUMERIC_DATE`] is clamped to it.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn from_secs(secs: u64) -> Self {
        // Exact: the value is below 2^38 once clamped.
        Self((secs as f64).min(MAX_NUMERIC_DATE))
    }

    /// The value as sent.
    #[must_use]
    pub fn as_f64(self) -> f64 {
        self.0
    }

    /// Whole seconds, rounded down: an RFC 7519 NumericDate as an integer,
    /// for outputs that promise one (RFC 7662 introspection).
    #[must_use]
    pub fn whole_secs(self) -> u64 {
        self.floor()
    }

    // Both casts are exact: the value is a non-negative integer below 2^38.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn floor(self) -> u64 {
        self.0.floor() as u64
    }

    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn ceil(self) -> u64 {
        self.0.ceil() as u64
    }
}

/// RFC 7800's confirmation claim.
pub const CNF_CLAIM: &str = "cnf";
/// RFC 8705 §3.1: the base64url SHA-256 of the bound certificate's DER.
pub const X5T_S256: &str = "x5t#S256";

/// The claims of a verified token.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub iss: String,
    pub sub: Option<String>,
    /// Always at least one element; a single string becomes a one-element list.
    pub aud: Vec<String>,
    pub exp: NumericDate,
    pub nbf: Option<NumericDate>,
    pub iat: Option<NumericDate>,
    pub jti: Option<String>,
    /// Every other member (roles, tenant, scope, custom claims).
    pub extra: Map<String, Value>,
}

/// The members of a claims set as the parser hands them over: the registered
/// claims in their own slots, every other member in `extra`. The type and
/// presence checks wait until the whole set has parsed, so JSON errors
/// (duplicates, depth, syntax) always come first, as with a map.
#[derive(Default)]
pub(crate) struct ClaimMembers {
    iss: Option<Value>,
    sub: Option<Value>,
    aud: Option<Value>,
    exp: Option<Value>,
    nbf: Option<Value>,
    iat: Option<Value>,
    jti: Option<Value>,
    extra: Map<String, Value>,
}

/// `ClaimMembers`' place for a member that goes to `extra`.
const EXTRA: u8 = 7;

impl ClaimMembers {
    /// The place of a name; names are matched as bytes, which compiles to
    /// a few integer compares rather than calls to `memcmp`.
    fn place_of(name: &str) -> u8 {
        match name.as_bytes() {
            [b'i', b's', b's'] => 0,
            [b's', b'u', b'b'] => 1,
            [b'a', b'u', b'd'] => 2,
            [b'e', b'x', b'p'] => 3,
            [b'n', b'b', b'f'] => 4,
            [b'i', b'a', b't'] => 5,
            [b'j', b't', b'i'] => 6,
            _ => EXTRA,
        }
    }

    fn slot(&mut self, place: u8) -> Option<&mut Option<Value>> {
        Some(match place {
            0 => &mut self.iss,
            1 => &mut self.sub,
            2 => &mut self.aud,
            3 => &mut self.exp,
            4 => &mut self.nbf,
            5 => &mut self.iat,
            6 => &mut self.jti,
            _ => return None,
        })
    }
}

impl<'de> Members<'de> for ClaimMembers {
    fn place(&self, name: &str) -> Option<u8> {
        let place = Self::place_of(name);
        let taken = match place {
            0 => self.iss.is_some(),
            1 => self.sub.is_some(),
            2 => self.aud.is_some(),
            3 => self.exp.is_some(),
            4 => self.nbf.is_some(),
            5 => self.iat.is_some(),
            6 => self.jti.is_some(),
            _ => self.extra.contains_key(name),
        };
        (!taken).then_some(place)
    }

    fn put(&mut self, place: u8, name: Cow<'de, str>, value: Value) {
        match self.slot(place) {
            Some(slot) => *slot = Some(value),
            None => {
                self.extra.insert(name.into_owned(), value);
            }
        }
    }

    fn try_put(&mut self, name: &'de str, value: Value) -> Option<()> {
        match self.slot(Self::place_of(name)) {
            Some(Some(_)) => None,
            Some(slot) => {
                *slot = Some(value);
                Some(())
            }
            None => json::try_insert(&mut self.extra, name, value),
        }
    }
}

impl Claims {
    /// The claims beyond the registered ones (`roles`, `tenant`, `scope`,
    /// custom claims) as the caller's own type, e.g.
    /// `#[derive(Deserialize)] struct Mine { roles: Vec<String>, plan: Option<String> }`.
    /// A claim of the wrong type is an error, never silently dropped.
    pub fn custom<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(serde_json::Value::Object(self.extra.clone()))
            .map_err(|_| Error::InvalidClaim { name: "custom" })
    }

    /// The RFC 8705 confirmation: the SHA-256 thumbprint of the client
    /// certificate the token is bound to (`cnf` with `x5t#S256`), if any.
    /// A `cnf` that is not an object, or an `x5t#S256` that is not the
    /// base64url of 32 bytes, is an error: a binding misread is no binding.
    pub fn x5t_s256(&self) -> Result<Option<[u8; 32]>, Error> {
        const INVALID: Error = Error::InvalidClaim { name: "cnf" };
        let cnf = match self.extra.get(CNF_CLAIM) {
            None => return Ok(None),
            Some(Value::Object(cnf)) => cnf,
            Some(_) => return Err(INVALID),
        };
        match cnf.get(X5T_S256) {
            None => Ok(None),
            Some(Value::String(text)) => {
                let bytes = crate::b64::decode(text).ok_or(INVALID)?;
                bytes.try_into().map(Some).map_err(|_| INVALID)
            }
            Some(_) => Err(INVALID),
        }
    }

    /// Parses a claims set strictly (see [`crate::json::parse_strict`]), then
    /// checks types and presence; values are checked by [`Claims::validate`].
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, Error> {
        Self::from_members(json::parse_members(bytes, ClaimMembers::default)?)
    }

    /// Checks types and presence, in a fixed order.
    fn from_members(members: ClaimMembers) -> Result<Self, Error> {
        let iss = match members.iss {
            Some(Value::String(iss)) => iss,
            Some(_) => return Err(Error::InvalidIssuer),
            None => return Err(Error::MissingClaim { name: "iss" }),
        };
        let aud = match members.aud {
            Some(value) => parse_audience(value)?,
            None => return Err(Error::MissingClaim { name: "aud" }),
        };
        let exp = match members.exp {
            Some(value) => NumericDate::parse(&value, "exp")?,
            None => return Err(Error::MissingClaim { name: "exp" }),
        };
        let nbf = optional_date(members.nbf, "nbf")?;
        let iat = optional_date(members.iat, "iat")?;
        let sub = optional_string(members.sub, "sub")?;
        let jti = optional_string(members.jti, "jti")?;
        Ok(Self {
            iss,
            sub,
            aud,
            exp,
            nbf,
            iat,
            jti,
            extra: members.extra,
        })
    }

    /// Applies the time rule (see the module note), then `iss` and `aud`.
    pub(crate) fn validate(&self, validation: &Validation, now: u64) -> Result<(), Error> {
        let leeway = validation.leeway_secs;
        if u128::from(self.exp.floor()) + u128::from(leeway) <= u128::from(now) {
            return Err(Error::Expired);
        }
        let latest = u128::from(now) + u128::from(leeway);
        if self.nbf.is_some_and(|nbf| u128::from(nbf.ceil()) > latest) {
            return Err(Error::NotYetValid);
        }
        if self.iat.is_some_and(|iat| u128::from(iat.ceil()) > latest) {
            return Err(Error::IssuedInFuture);
        }
        if self.iss != validation.issuer {
            return Err(Error::InvalidIssuer);
        }
        if !self.aud.contains(&validation.audience) {
            return Err(Error::InvalidAudience);
        }
        Ok(())
    }
}

fn parse_audience(value: Value) -> Result<Vec<String>, Error> {
    match value {
        Value::String(aud) => Ok(vec![aud]),
        Value::Array(items) if !items.is_empty() => items
            .into_iter()
            .map(|item| match item {
                Value::String(aud) => Ok(aud),
                _ => Err(Error::InvalidAudience),
            })
            .collect(),
        _ => Err(Error::InvalidAudience),
    }
}

fn optional_date(value: Option<Value>, name: &'static str) -> Result<Option<NumericDate>, Error> {
    value
        .map(|value| NumericDate::parse(&value, name))
        .transpose()
}

fn optional_string(value: Option<Value>, name: &'static str) -> Result<Option<String>, Error> {
    match value {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(Error::InvalidClaim { name }),
    }
}
