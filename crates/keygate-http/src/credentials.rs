//! Credentials from headers: `Authorization: Bearer <token>` and
//! `X-API-Key`, parsed in one place so that every entry point accepts the
//! same requests and refuses the others with the same words.
//!
//! A header sent twice is refused, not read first-wins: `Authorization` is
//! not a list (RFC 9110 §11.6.2), and a proxy in front that read the other
//! copy would have let a different credential through than the one checked.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use keygate_core::model::Scope;

use crate::problem::ApiError;

pub const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// Why the credential headers of a request cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialError {
    /// `Authorization` is there but is not `Bearer <token>`.
    MalformedAuthorization,
    /// A credential header was sent more than once.
    Repeated(&'static str),
    /// `Authorization` and `X-API-Key` carry different keys.
    Ambiguous,
}

impl CredentialError {
    /// The stable problem code, also the gateway's refusal reason.
    pub fn code(self) -> &'static str {
        match self {
            Self::MalformedAuthorization => "invalid_authorization",
            Self::Repeated(_) => "repeated_credentials",
            Self::Ambiguous => "ambiguous_credentials",
        }
    }
}

impl From<CredentialError> for ApiError {
    fn from(e: CredentialError) -> Self {
        let code = e.code();
        match e {
            CredentialError::MalformedAuthorization => ApiError::unauthorized(
                code,
                "the Authorization header must be `Bearer <credential>`",
                true,
            ),
            CredentialError::Repeated(name) => ApiError::bad_request(
                code,
                format!("the {name} header is sent more than once; send it once"),
            ),
            CredentialError::Ambiguous => ApiError::bad_request(
                code,
                "Authorization and X-API-Key carry different keys; send one",
            ),
        }
    }
}

/// The one value of a header, None without it; a repeated header is an
/// error (see the module note).
fn single<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
    shown: &'static str,
) -> Result<Option<&'a axum::http::HeaderValue>, CredentialError> {
    let mut all = headers.get_all(name).iter();
    let first = all.next();
    if all.next().is_some() {
        return Err(CredentialError::Repeated(shown));
    }
    Ok(first)
}

/// The token of `Authorization: Bearer <token>`, None without the header.
/// The scheme is case-insensitive (RFC 9110 §11.1); spaces around the token
/// are ignored. A header that is not Bearer, has no token, has a token with
/// a space in it (no token68 has one) or is not ASCII is malformed.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, CredentialError> {
    let Some(value) = single(headers, &header::AUTHORIZATION, "Authorization")? else {
        return Ok(None);
    };
    let text = ascii(value).trim();
    match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            // `text` is trimmed: only the spaces after the scheme remain.
            let token = token.trim_start();
            if token.is_empty() || token.contains(' ') {
                return Err(CredentialError::MalformedAuthorization);
            }
            Ok(Some(token))
        }
        _ => Err(CredentialError::MalformedAuthorization),
    }
}

/// The value as text when it is ASCII, else "": what `HeaderValue::to_str`
/// accepts, since a `HeaderValue` never holds a control byte but tab.
/// `to_str` checks byte by byte, and a JWT is hundreds of bytes on every
/// request; std's word-at-a-time ASCII check costs a fraction of that.
fn ascii(value: &HeaderValue) -> &str {
    let bytes = value.as_bytes();
    if !bytes.is_ascii() {
        return "";
    }
    std::str::from_utf8(bytes).unwrap_or("")
}

/// The key in `X-API-Key`, trimmed, None without the header. A value that
/// is not ASCII reads as the empty key, which verification refuses as
/// malformed: the header was sent, so the request did present a key.
pub fn api_key(headers: &HeaderMap) -> Result<Option<&str>, CredentialError> {
    Ok(single(headers, &API_KEY_HEADER, "X-API-Key")?.map(|v| ascii(v).trim()))
}

/// The API key of a request to an endpoint that takes only keys: in
/// `Authorization: Bearer` or in `X-API-Key`; both only when they agree.
pub fn api_credential(headers: &HeaderMap) -> Result<Option<&str>, CredentialError> {
    match (bearer(headers)?, api_key(headers)?) {
        (Some(a), Some(b)) if a != b => Err(CredentialError::Ambiguous),
        (Some(a), _) => Ok(Some(a)),
        (None, b) => Ok(b),
    }
}

/// A scope as a credential holds it: a parsed `Scope` (a key) or the text
/// of a token's `scope` claim.
pub trait ScopeName {
    fn scope_name(&self) -> &str;
}

impl ScopeName for Scope {
    fn scope_name(&self) -> &str {
        self.as_str()
    }
}

impl ScopeName for String {
    fn scope_name(&self) -> &str {
        self
    }
}

impl ScopeName for &str {
    fn scope_name(&self) -> &str {
        self
    }
}

/// Whether `granted` holds every scope in `required` (exact names).
pub fn scopes_cover<G: ScopeName>(required: &[Scope], granted: &[G]) -> bool {
    required
        .iter()
        .all(|r| granted.iter().any(|g| g.scope_name() == r.as_str()))
}

/// `scopes_cover`, or the 403 that says it does not.
pub fn require_scopes<G: ScopeName>(required: &[Scope], granted: &[G]) -> Result<(), ApiError> {
    if scopes_cover(required, granted) {
        Ok(())
    } else {
        Err(ApiError::insufficient_scope())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, StatusCode};

    fn with(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        h
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_spaces_are_ignored() {
        for v in [
            "Bearer tok",
            "bearer tok",
            "BEARER tok",
            "Bearer   tok  ",
            "  Bearer tok",
        ] {
            let h = with(&[("authorization", v.as_bytes())]);
            assert_eq!(bearer(&h), Ok(Some("tok")), "{v:?}");
        }
        assert_eq!(bearer(&HeaderMap::new()), Ok(None));
    }

    #[test]
    fn anything_but_bearer_and_one_token_is_malformed() {
        let bad: [&[u8]; 9] = [
            b"",
            b"Bearer",
            b"Bearer ",
            b"Bearer    ",
            b"Basic dXNlcjpwdw==",
            b"Bearertok",
            b"Bearer\ttok",
            b"Bearer a b",
            "Bearer t\u{e9}st".as_bytes(),
        ];
        for v in bad {
            let h = with(&[("authorization", v)]);
            assert_eq!(
                bearer(&h),
                Err(CredentialError::MalformedAuthorization),
                "{:?}",
                String::from_utf8_lossy(v)
            );
        }
    }

    #[test]
    fn a_credential_header_sent_twice_is_refused() {
        let h = with(&[
            ("authorization", b"Bearer a"),
            ("authorization", b"Bearer a"),
        ]);
        assert_eq!(bearer(&h), Err(CredentialError::Repeated("Authorization")));
        let h = with(&[("x-api-key", b"a"), ("X-Api-Key", b"b")]);
        assert_eq!(api_key(&h), Err(CredentialError::Repeated("X-API-Key")));
        let e = ApiError::from(CredentialError::Repeated("X-API-Key"));
        assert_eq!(
            (e.status, e.code),
            (StatusCode::BAD_REQUEST, "repeated_credentials")
        );
    }

    #[test]
    fn the_api_key_header_is_trimmed_and_unreadable_means_empty() {
        assert_eq!(
            api_key(&with(&[("x-api-key", b" kg_live_x ")])),
            Ok(Some("kg_live_x"))
        );
        assert_eq!(api_key(&with(&[("x-api-key", b"")])), Ok(Some("")));
        assert_eq!(
            api_key(&with(&[("x-api-key", "k\u{e9}y".as_bytes())])),
            Ok(Some(""))
        );
        assert_eq!(api_key(&HeaderMap::new()), Ok(None));
    }

    #[test]
    fn either_header_carries_the_key_and_both_must_agree() {
        let h = with(&[("authorization", b"Bearer k1")]);
        assert_eq!(api_credential(&h), Ok(Some("k1")));
        let h = with(&[("x-api-key", b"k1")]);
        assert_eq!(api_credential(&h), Ok(Some("k1")));
        let h = with(&[("authorization", b"Bearer k1"), ("x-api-key", b"k1")]);
        assert_eq!(api_credential(&h), Ok(Some("k1")));
        let h = with(&[("authorization", b"Bearer k1"), ("x-api-key", b"k2")]);
        assert_eq!(api_credential(&h), Err(CredentialError::Ambiguous));
        let h = with(&[("authorization", b"Basic x"), ("x-api-key", b"k1")]);
        assert_eq!(
            api_credential(&h),
            Err(CredentialError::MalformedAuthorization)
        );
        assert_eq!(api_credential(&HeaderMap::new()), Ok(None));
    }

    #[test]
    fn a_malformed_authorization_is_a_401_that_names_the_error() {
        let e = ApiError::from(CredentialError::MalformedAuthorization);
        assert_eq!(
            (e.status, e.code),
            (StatusCode::UNAUTHORIZED, "invalid_authorization")
        );
        assert!(e.challenge.is_some_and(|c| c.contains("invalid_token")));
    }

    #[test]
    fn scopes_cover_needs_every_required_scope() {
        let scope = |s: &str| Scope::parse(s).unwrap();
        let required = [scope("orders:read"), scope("orders:write")];
        assert!(scopes_cover(
            &required,
            &["orders:write", "orders:read", "x"]
        ));
        assert!(!scopes_cover(&required, &["orders:read"]));
        assert!(!scopes_cover(&required, &["Orders:read", "orders:write"]));
        assert!(scopes_cover::<String>(&[], &[]));
        assert!(scopes_cover(&required[..1], &[scope("orders:read")]));
        let e = require_scopes(&required, &[String::from("orders:read")]).unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::FORBIDDEN, "insufficient_scope")
        );
    }
}
