//! The axum extractors (feature `axum`): a handler that takes
//! [`VerifiedClaims`] cannot run without a token that verified. For a whole
//! router, [`require_token`] is the same check as middleware (a tower layer
//! through `axum::middleware::from_fn_with_state`).
//!
//! keygate signs user session tokens and client-credentials tokens alike;
//! [`VerifiedClaims`] takes both. A handler meant for people takes
//! [`UserClaims`] instead, one meant for applications [`ClientClaims`]: a
//! token of the other kind is 403 `wrong_token_kind`, one without a kind
//! (`kg_kind`) 401. Prefer them to reading `sub` from [`VerifiedClaims`].
//!
//! Refusals follow RFC 6750 and RFC 9457: 401 with
//! `WWW-Authenticate: Bearer realm="..."`, plus `error="invalid_token"` only
//! when a token was sent, and a problem+json body with a stable `code`. The
//! token is never echoed, in the body or a header. A key set that was never
//! fetched is our fault, not the client's: 503.

use axum::extract::{FromRef, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::{AcceptedKinds, Claims, RemoteError, RemoteVerifier};

/// The claims of the request's verified bearer token.
///
/// The verifier comes from the router state through [`FromRef`], so it can be
/// a field of the service's own state.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims(pub Claims);

/// The claims of a verified **user** token (`kg_kind: "user"`): `sub` is
/// the user id. A client token is refused with 403.
#[derive(Debug, Clone, PartialEq)]
pub struct UserClaims(pub Claims);

/// The claims of a verified **client** token (`kg_kind: "client"`): `sub`
/// and `client_id` are the API key's id. A user token is refused with 403.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientClaims(pub Claims);

/// The SHA-256 thumbprint of the DER of the client certificate the
/// request's TLS connection presented (RFC 8705 `x5t#S256`). keygate-verify
/// does not terminate TLS: the application's TLS layer inserts this in the
/// request's extensions when the client sent a certificate. Without it, a
/// token bound to a certificate is refused (`certificate_mismatch`); with
/// it, only a token bound to that certificate (or an unbound one) passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCertThumbprint(pub [u8; 32]);

/// Why [`VerifiedClaims`] refused a request; answers for itself.
#[derive(Debug, Clone)]
pub struct Rejection {
    status: StatusCode,
    code: &'static str,
    detail: String,
    /// `WWW-Authenticate`, already formatted.
    challenge: Option<String>,
}

impl Rejection {
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code of the problem body.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.code
    }

    fn missing(realm: &str) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "missing_token",
            detail: "send a token as `Authorization: Bearer <token>`".to_owned(),
            challenge: Some(format!("Bearer realm=\"{realm}\"")),
        }
    }

    /// A valid token of a kind this handler does not take: the client is
    /// known, so 403, and no challenge (another token of the same kind
    /// would not help).
    fn kind(realm: &str, error: &crate::Error) -> Self {
        if *error != crate::Error::WrongTokenKind {
            return Self::invalid(realm, &RemoteError::Token(error.clone()));
        }
        Self {
            status: StatusCode::FORBIDDEN,
            code: error.code(),
            detail: error.to_string(),
            challenge: None,
        }
    }

    fn invalid(realm: &str, error: &RemoteError) -> Self {
        match error {
            RemoteError::KeysUnavailable => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: error.code(),
                detail: "the token issuer's keys are unavailable; retry later".to_owned(),
                challenge: None,
            },
            // Display texts are fixed strings without token content, and
            // they contain no `"` or `\`, so they quote as they are.
            RemoteError::Token(inner) => Self {
                status: StatusCode::UNAUTHORIZED,
                code: inner.code(),
                detail: inner.to_string(),
                challenge: Some(format!(
                    "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{}\"",
                    inner.to_string().replace(['"', '\\', '`'], "")
                )),
            },
        }
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = Problem {
            kind: format!("urn:keygate:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (self.status, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(value) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// The bearer token, if the request carries exactly one `Authorization`
/// header with the `Bearer` scheme (case-insensitive, RFC 7235). Any other
/// scheme counts as no token: it is not ours to judge.
fn bearer(headers: &HeaderMap) -> Option<Option<&str>> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        // None, or several: several is ambiguous, treat as a bad token.
        return headers.contains_key(header::AUTHORIZATION).then_some(None);
    };
    let Ok(text) = value.to_str() else {
        return Some(None);
    };
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    Some((!token.is_empty() && !token.contains(' ')).then_some(token))
}

async fn authenticate(
    verifier: &RemoteVerifier,
    headers: &HeaderMap,
    thumbprint: Option<&ClientCertThumbprint>,
) -> Result<VerifiedClaims, Rejection> {
    let realm = verifier.realm();
    match bearer(headers) {
        None => Err(Rejection::missing(realm)),
        Some(None) => Err(Rejection::invalid(
            realm,
            &RemoteError::Token(crate::Error::MalformedToken("not a single bearer token")),
        )),
        Some(Some(token)) => verifier
            .verify_bound(token, thumbprint.map(|t| &t.0))
            .await
            .map(VerifiedClaims)
            .map_err(|error| Rejection::invalid(realm, &error)),
    }
}

impl<S> FromRequestParts<S> for VerifiedClaims
where
    RemoteVerifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Behind `require_token` the token was verified already.
        if let Some(claims) = parts.extensions.get::<Self>() {
            return Ok(claims.clone());
        }
        let thumbprint = parts.extensions.get::<ClientCertThumbprint>();
        authenticate(&RemoteVerifier::from_ref(state), &parts.headers, thumbprint).await
    }
}

async fn of_kind<S>(
    parts: &mut Parts,
    state: &S,
    accepted: AcceptedKinds,
) -> Result<Claims, Rejection>
where
    RemoteVerifier: FromRef<S>,
    S: Send + Sync,
{
    let VerifiedClaims(claims) = VerifiedClaims::from_request_parts(parts, state).await?;
    match accepted.check(&claims) {
        Ok(_) => Ok(claims),
        Err(error) => Err(Rejection::kind(
            RemoteVerifier::from_ref(state).realm(),
            &error,
        )),
    }
}

impl<S> FromRequestParts<S> for UserClaims
where
    RemoteVerifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        of_kind(parts, state, AcceptedKinds::Users).await.map(Self)
    }
}

impl<S> FromRequestParts<S> for ClientClaims
where
    RemoteVerifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        of_kind(parts, state, AcceptedKinds::Clients)
            .await
            .map(Self)
    }
}

/// Middleware refusing every request without a verified token, as the
/// extractor does; the claims then ride in the request's extensions
/// (`Extension<VerifiedClaims>`, or the extractor, which will not verify
/// twice). Use with
/// `axum::middleware::from_fn_with_state(verifier, require_token)`.
pub async fn require_token(
    State(verifier): State<RemoteVerifier>,
    mut request: Request,
    next: Next,
) -> Response {
    let thumbprint = request.extensions().get::<ClientCertThumbprint>().copied();
    match authenticate(&verifier, request.headers(), thumbprint.as_ref()).await {
        Ok(claims) => {
            request.extensions_mut().insert(claims);
            next.run(request).await
        }
        Err(rejection) => rejection.into_response(),
    }
}
