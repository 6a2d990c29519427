//! The JWS layer: compact serialization (RFC 7515 §7.1) and its header.
//!
//! Order matters here. The length cap comes before any decoding, the shape
//! (exactly three segments) before base64, and the header rules (`alg`,
//! `crit`, `b64`, `kid`) before any key is looked up. Key-carrying headers
//! (`jwk`, `jku`, `x5u`, `x5c`, `x5t`) are kept in [`Header::members`] for
//! display but never consulted: keys come only from the trusted set.

use serde_json::{Map, Value};

use crate::alg::Algorithm;
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
pub(crate) struct Compact<'t> {
    pub header: Header,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`, the signed bytes.
    pub signing_input: &'t [u8],
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Splits and decodes `token`, applying every rule that needs no key.
///
/// An empty payload segment is refused unless `allow_empty_payload`: a JWT
/// needs a claims set, but RFC 7515 allows an empty JWS payload and the
/// Wycheproof vectors assert it, so the signature-only entry point allows it.
pub(crate) fn parse(
    token: &str,
    max_len: usize,
    allow_empty_payload: bool,
) -> Result<Compact<'_>, Error> {
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
    let header_bytes =
        b64::decode(header_b64).ok_or(Error::MalformedToken("header is not base64url"))?;
    let header = parse_header(&header_bytes)?;
    if payload_b64.is_empty() && !allow_empty_payload {
        return Err(Error::MalformedToken("empty payload"));
    }
    let payload =
        b64::decode(payload_b64).ok_or(Error::MalformedToken("payload is not base64url"))?;
    if signature_b64.is_empty() {
        return Err(Error::MalformedToken("empty signature"));
    }
    let signature =
        b64::decode(signature_b64).ok_or(Error::MalformedToken("signature is not base64url"))?;
    let signed_len = header_b64.len() + 1 + payload_b64.len();
    Ok(Compact {
        header,
        signing_input: &token.as_bytes()[..signed_len],
        payload,
        signature,
    })
}

fn parse_header(bytes: &[u8]) -> Result<Header, Error> {
    let members = json::parse_object(bytes)?;
    // `alg` first, so `none` in any spelling is refused before anything else.
    let alg = match members.get("alg") {
        Some(Value::String(name)) => {
            Algorithm::from_name(name).ok_or(Error::UnsupportedAlgorithm)?
        }
        _ => return Err(Error::InvalidHeader { name: "alg" }),
    };
    // RFC 7515 §4.1.11: a recipient must refuse `crit` it does not understand,
    // and `crit` may not be empty or list registered names; we understand no
    // extension, so any `crit` is refused, well-formed or not.
    if members.contains_key("crit") {
        return Err(Error::CriticalHeader);
    }
    // RFC 7797 unencoded payloads change what is signed; never supported.
    if members.contains_key("b64") {
        return Err(Error::UnsupportedHeader { name: "b64" });
    }
    let kid = optional_string(&members, "kid")?;
    if kid
        .as_ref()
        .is_some_and(|kid| kid.is_empty() || kid.len() > MAX_KID_LEN)
    {
        return Err(Error::InvalidHeader { name: "kid" });
    }
    let typ = optional_string(&members, "typ")?;
    let cty = optional_string(&members, "cty")?;
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
        members,
    })
}

fn optional_string(
    members: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, Error> {
    match members.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
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
