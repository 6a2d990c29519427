//! The JWS layer: compact serialization (RFC 7515 §7.1) and its header.
//!
//! Order matters here. The length cap comes before any decoding, the shape
//! (exactly three segments) before base64, and the header rules (`alg`,
//! `crit`, `b64`, `kid`) before any key is looked up. Key-carrying headers
//! (`jwk`, `jku`, `x5u`, `x5c`, `x5t`) are kept in [`Header::members`] for
//! display but never consulted: keys come only from the trusted set.

use serde_json::{Map, Value};
use std::borrow::Cow;

use crate::alg::Algorithm;
use crate::json::Members;
use crate::jwk::MAX_KID_LEN;
use crate::{Error, b64, json};

/// The protected header of a verified token.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// The header's `alg`, which equalled the key's bound algorithm.
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub typ: Option<String>,
    pub cty: Option<String>,
    /// Every member as sent, for display (e.g. the CLI's output).
    pub members: Map<String, Value>,
}

/// A token split and decoded, not yet verified.
pub(crate) struct Compact<'t, 'b> {
    pub header: Header,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`, the signed bytes.
    pub signing_input: &'t [u8],
    pub payload: Vec<u8>,
    /// In the caller's buffer unless longer than [`SIGNATURE_BUF`].
    pub signature: Cow<'b, [u8]>,
}

/// The caller's signature buffer: every ECDSA, EdDSA and HMAC signature and
/// RSA up to 4096 bits fit; a longer one is decoded onto the heap.
pub(crate) const SIGNATURE_BUF: usize = 512;

/// Headers decoded on the stack up to this length (keygate's are ~80 bytes).
const HEADER_BUF: usize = 256;

/// What the caller does with a parsed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A JWT (`Verifier::verify`): the payload must not be empty, and the
    /// header serves its rules only, so [`Header::members`] is left empty.
    Jwt,
    /// Any JWS (`Verifier::verify_signature`): RFC 7515 allows an empty
    /// payload and the Wycheproof vectors assert it; the header is returned
    /// with every member.
    SignatureOnly,
}

/// Splits and decodes `token`, applying every rule that needs no key.
pub(crate) fn parse<'t, 'b>(
    token: &'t str,
    max_len: usize,
    mode: Mode,
    signature_buf: &'b mut [u8; SIGNATURE_BUF],
) -> Result<Compact<'t, 'b>, Error> {
    if token.len() > max_len {
        return Err(Error::TokenTooLarge);
    }
    if token.trim_start().starts_with('{') {
        return Err(Error::MalformedToken("JSON serialization is not supported"));
    }
    let mut segments = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(if token.split('.').count() == 5 {
            Error::MalformedToken("JWE is not supported")
        } else {
            Error::MalformedToken("expected three segments")
        });
    };
    if header_b64.is_empty() {
        return Err(Error::MalformedToken("empty header"));
    }
    let mut header_buf = [0u8; HEADER_BUF];
    let header_bytes = b64::decode_buffered(header_b64, &mut header_buf)
        .ok_or(Error::MalformedToken("header is not base64url"))?;
    let header = parse_header_for(&header_bytes, mode == Mode::SignatureOnly)?;
    if payload_b64.is_empty() && mode == Mode::Jwt {
        return Err(Error::MalformedToken("empty payload"));
    }
    let payload =
        b64::decode(payload_b64).ok_or(Error::MalformedToken("payload is not base64url"))?;
    if signature_b64.is_empty() {
        return Err(Error::MalformedToken("empty signature"));
    }
    let signature = b64::decode_buffered(signature_b64, signature_buf)
        .ok_or(Error::MalformedToken("signature is not base64url"))?;
    let signed_len = header_b64.len() + 1 + payload_b64.len();
    Ok(Compact {
        header,
        signing_input: &token.as_bytes()[..signed_len],
        payload,
        signature,
    })
}

/// The header with every member kept (see [`parse_header_for`]).
#[cfg(test)]
fn parse_header(bytes: &[u8]) -> Result<Header, Error> {
    parse_header_for(bytes, true)
}

/// The header members the rules read, in slots; the others only need to be
/// told apart for the duplicate rule, unless every member is kept for
/// display.
#[derive(Default)]
struct HeaderMembers {
    alg: Option<Value>,
    kid: Option<Value>,
    typ: Option<Value>,
    cty: Option<Value>,
    crit: Option<Value>,
    b64: Option<Value>,
    keep_all: bool,
    /// With `keep_all`, every member; otherwise those without a slot.
    members: Map<String, Value>,
}

/// `HeaderMembers`' place for a member without a slot.
const OTHER: u8 = 6;

impl<'de> Members<'de> for HeaderMembers {
    fn place(&self, name: &str) -> Option<u8> {
        let (place, taken) = match name {
            "alg" => (0, self.alg.is_some()),
            "kid" => (1, self.kid.is_some()),
            "typ" => (2, self.typ.is_some()),
            "cty" => (3, self.cty.is_some()),
            "crit" => (4, self.crit.is_some()),
            "b64" => (5, self.b64.is_some()),
            _ => (OTHER, self.members.contains_key(name)),
        };
        (!taken).then_some(place)
    }

    fn put(&mut self, place: u8, name: Cow<'de, str>, value: Value) {
        let slot = match place {
            0 => &mut self.alg,
            1 => &mut self.kid,
            2 => &mut self.typ,
            3 => &mut self.cty,
            4 => &mut self.crit,
            5 => &mut self.b64,
            _ => {
                self.members.insert(name.into_owned(), value);
                return;
            }
        };
        if self.keep_all {
            self.members.insert(name.into_owned(), value.clone());
        }
        *slot = Some(value);
    }
}

/// Parses a header strictly and applies its rules. `keep_all` fills
/// [`Header::members`]; without it that map is left empty.
fn parse_header_for(bytes: &[u8], keep_all: bool) -> Result<Header, Error> {
    let header = json::parse_members(bytes, || HeaderMembers {
        keep_all,
        ..HeaderMembers::default()
    })?;
    // `alg` first, so `none` in any spelling is refused before anything else.
    let alg = match &header.alg {
        Some(Value::String(name)) => {
            Algorithm::from_name(name).ok_or(Error::UnsupportedAlgorithm)?
        }
        _ => return Err(Error::InvalidHeader { name: "alg" }),
    };
    // RFC 7515 §4.1.11: a recipient must refuse `crit` it does not understand,
    // and `crit` may not be empty or list registered names; we understand no
    // extension, so any `crit` is refused, well-formed or not.
    if header.crit.is_some() {
        return Err(Error::CriticalHeader);
    }
    // RFC 7797 unencoded payloads change what is signed; never supported.
    if header.b64.is_some() {
        return Err(Error::UnsupportedHeader { name: "b64" });
    }
    let kid = optional_string(header.kid, "kid")?;
    if kid
        .as_ref()
        .is_some_and(|kid| kid.is_empty() || kid.len() > MAX_KID_LEN)
    {
        return Err(Error::InvalidHeader { name: "kid" });
    }
    let typ = optional_string(header.typ, "typ")?;
    let cty = optional_string(header.cty, "cty")?;
    // A nested JWT would be verified by whoever unwraps it, with whatever
    // rules they have; keygate tokens are never nested (RFC 8725 §2.8).
    if cty.as_deref().is_some_and(is_jwt_media_type) {
        return Err(Error::UnsupportedHeader { name: "cty" });
    }
    Ok(Header {
        alg,
        kid,
        typ,
        cty,
        members: if keep_all { header.members } else { Map::new() },
    })
}

fn optional_string(value: Option<Value>, name: &'static str) -> Result<Option<String>, Error> {
    match value {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(Error::InvalidHeader { name }),
    }
}

fn is_jwt_media_type(value: &str) -> bool {
    value.eq_ignore_ascii_case("JWT") || value.eq_ignore_ascii_case("application/jwt")
}

/// Compares a `typ` with the required one as RFC 7515 §4.1.9 says: media
/// types case-insensitively, with the `application/` prefix optional.
pub(crate) fn typ_matches(actual: &str, required: &str) -> bool {
    fn bare(value: &str) -> &str {
        match value.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => {
                value.get(12..).unwrap_or(value)
            }
            _ => value,
        }
    }
    bare(actual).eq_ignore_ascii_case(bare(required))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(json: &str) -> Result<Header, Error> {
        parse_header(json.as_bytes())
    }

    #[test]
    fn header_rules() {
        assert!(header(r#"{"alg":"ES256","kid":"a","typ":"at+jwt"}"#).is_ok());
        assert_eq!(
            header(r#"{"alg":"none"}"#),
            Err(Error::UnsupportedAlgorithm)
        );
        assert_eq!(
            header(r#"{"alg":1}"#),
            Err(Error::InvalidHeader { name: "alg" })
        );
        assert_eq!(
            header(r#"{"alg":"ES256","crit":[]}"#),
            Err(Error::CriticalHeader)
        );
        assert_eq!(
            header(r#"{"alg":"ES256","b64":true}"#),
            Err(Error::UnsupportedHeader { name: "b64" })
        );
        assert_eq!(
            header(r#"{"alg":"ES256","cty":"jwt"}"#),
            Err(Error::UnsupportedHeader { name: "cty" })
        );
        assert_eq!(
            header(r#"{"alg":"ES256","kid":5}"#),
            Err(Error::InvalidHeader { name: "kid" })
        );
        assert_eq!(
            header(r#"{"alg":"ES256","typ":null}"#),
            Err(Error::InvalidHeader { name: "typ" })
        );
    }

    #[test]
    fn typ_comparison() {
        assert!(typ_matches("at+jwt", "at+jwt"));
        assert!(typ_matches("AT+JWT", "at+jwt"));
        assert!(typ_matches("application/at+jwt", "at+jwt"));
        assert!(!typ_matches("JWT", "at+jwt"));
        assert!(!typ_matches("at+jwt2", "at+jwt"));
        assert!(!typ_matches("", "at+jwt"));
    }
}
