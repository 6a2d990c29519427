//! Extractors: credentials, the authenticated admin or verifier, request ids
//! and JSON bodies whose every failure is a clear problem+json 4xx.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, MatchedPath, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use keygate_core::audit::Failure;
use keygate_core::{Admin, AuthFailure, KeyId, Verifier, VerifyCode};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;

/// The request id, set by the request-id middleware on every request.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The API credential of a request: `Authorization: Bearer` or `X-API-Key`.
pub fn credential(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let bearer = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let text = value.to_str().unwrap_or("");
            let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
            if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
                return Err(ApiError::unauthorized(
                    "invalid_authorization",
                    "the Authorization header must be `Bearer <key>`",
                    true,
                ));
            }
            Some(token.trim())
        }
    };
    let header_key = headers
        .get("x-api-key")
        .map(|v| v.to_str().unwrap_or("").trim());
    match (bearer, header_key) {
        (Some(a), Some(b)) if a != b => Err(ApiError::bad_request(
            "ambiguous_credentials",
            "Authorization and X-API-Key carry different keys; send one",
        )),
        (Some(a), _) => Ok(Some(a)),
        (None, b) => Ok(b),
    }
}

fn auth_error(state: &AppState, failure: AuthFailure, parts: &Parts) -> ApiError {
    let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
    let reason = match &failure {
        AuthFailure::Unauthenticated(code, _) => code.as_str(),
        AuthFailure::Forbidden(_) => "FORBIDDEN",
        AuthFailure::Storage(_) => return ApiError::from(storage_error(failure)),
    };
    // The route template, not the path: a path can carry anything a client
    // typed, including a key pasted in the wrong place.
    state.audit_auth_failure(Failure {
        source: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| state.trusted_proxies.client_ip(c.0.ip(), &parts.headers)),
        reason,
        route: parts
            .extensions
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str),
        method: crate::metrics::method_label(&parts.method),
        request_id: request_id.as_deref(),
    });
    match failure {
        AuthFailure::Unauthenticated(VerifyCode::RateLimited, decision) => {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "this key is over its rate limit",
            );
            let wait_ms = decision.map_or(1000, |d| d.retry_after_ms);
            e.retry_after_secs = Some(u64::try_from((wait_ms + 999) / 1000).unwrap_or(1).max(1));
            e
        }
        AuthFailure::Unauthenticated(code, _) => ApiError::unauthorized(
            "invalid_credentials",
            format!("the API key was refused ({})", code.as_str()),
            true,
        ),
        AuthFailure::Forbidden(why) => ApiError::forbidden(why),
        AuthFailure::Storage(e) => ApiError::from(e),
    }
}

fn storage_error(failure: AuthFailure) -> keygate_core::Error {
    match failure {
        AuthFailure::Storage(e) => e,
        _ => keygate_core::Error::Internal("unexpected auth failure".into()),
    }
}

fn required_credential(parts: &Parts) -> Result<&str, ApiError> {
    credential(&parts.headers)?.ok_or_else(|| {
        ApiError::unauthorized(
            "missing_credentials",
            "send an API key in `Authorization: Bearer <key>` or `X-API-Key`",
            false,
        )
    })
}

/// A key id from the path. Anything else is a problem+json 400 before the
/// handler runs, including paths that are not valid UTF-8 once decoded.
pub struct KeyIdPath(pub KeyId);

impl<S: Send + Sync> FromRequestParts<S> for KeyIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let invalid = || {
            ApiError::bad_request(
                "invalid_key_id",
                "a key id looks like key_ followed by 16 letters or digits",
            )
        };
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| invalid())?;
        KeyId::parse(&id).map(KeyIdPath).map_err(|_| invalid())
    }
}

/// An authenticated admin; a handler taking one cannot run without it.
pub struct AdminAuth(pub Admin);

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = required_credential(parts)?;
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
        state
            .keys
            .authorize_admin(key, request_id)
            .await
            .map(AdminAuth)
            .map_err(|f| auth_error(state, f, parts))
    }
}

/// An authenticated caller of `POST /oauth2/introspect`: a key with the
/// `tokens:introspect` (or `admin`) scope.
pub struct IntrospectorAuth(pub Verifier);

pub const INTROSPECT_SCOPE: &str = "tokens:introspect";

impl FromRequestParts<AppState> for IntrospectorAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = required_credential(parts)?;
        state
            .keys
            .authorize_scope(
                key,
                INTROSPECT_SCOPE,
                "introspection needs a key with the tokens:introspect or admin scope",
            )
            .await
            .map(IntrospectorAuth)
            .map_err(|f| auth_error(state, f, parts))
    }
}

/// An authenticated caller of `POST /v1/keys/verify`.
pub struct VerifierAuth(pub Verifier);

impl FromRequestParts<AppState> for VerifierAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = required_credential(parts)?;
        state
            .keys
            .authorize_verifier(key)
            .await
            .map(VerifierAuth)
            .map_err(|f| auth_error(state, f, parts))
    }
}

/// A JSON body. Wrong content type 415, too large 413, anything unparsable
/// or with unknown fields 400, each as problem+json.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let JsonBody(bytes) = JsonBody::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The raw bytes of a JSON body, with `ApiJson`'s checks, for handlers that
/// parse it themselves (borrowing from it rather than copying).
pub struct JsonBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        Bytes::from_request(req, state)
            .await
            .map(JsonBody)
            .map_err(body_error)
    }
}

pub fn body_error(rejection: BytesRejection) -> ApiError {
    match rejection {
        BytesRejection::FailedToBufferBody(_)
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE =>
        {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is larger than this server accepts",
            )
        }
        other => ApiError::bad_request("unreadable_body", other.body_text()),
    }
}

/// A JSON response from a buffer sized for a typical answer up front, so
/// serializing does not grow it several times on the hot path.
pub fn json_response<T: serde::Serialize>(value: &T) -> Result<axum::response::Response, ApiError> {
    let mut body = Vec::with_capacity(512);
    serde_json::to_writer(&mut body, value).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut res = axum::response::IntoResponse::into_response(body);
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

pub fn parse_json<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("the JSON body is not valid here: {e}"),
        )
    })
}

/// The client's address: the TCP peer, or what the trusted proxies in
/// front of it say (`trusted_proxies`; see `client_addr`).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub std::net::IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or_else(|| ApiError::internal("no peer address on the connection"))?;
        Ok(Self(state.trusted_proxies.client_ip(peer, &parts.headers)))
    }
}
