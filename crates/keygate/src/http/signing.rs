//! `/v1/keys/{id}/signing-secret`: a key's HMAC request-signing secret
//! (RFC 9421, `hmac-sha256`), created or replaced, shown once.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use keygate_core::httpsig::{
    BodyStatus, HmacError, HmacIdentity, HmacService, Refusal, RequestView, SigCode,
};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::cluster::{WaitAll, WaitParam, propagate};
use super::error::ApiError;
use super::extract::{AdminAuth, KeyIdPath, body_error};
use super::views::rfc3339;

pub use crate::gateway::hmac::HeaderMapLookup;

/// Verifies a signed request from its axum parts: the authority is the
/// URI's (HTTP/2, absolute form) or else `Host`; `scheme` is how the client
/// reached us (`https` behind a TLS-terminating proxy). For the gateway.
pub async fn verify_parts(
    hmac: &HmacService,
    parts: &Parts,
    scheme: &str,
    body: BodyStatus<'_>,
) -> Result<HmacIdentity, HmacError> {
    let authority = match parts.uri.authority() {
        Some(a) => a.as_str(),
        None => parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(|| {
                Refusal::new(SigCode::SignatureMalformed, "the request names no host")
            })?,
    };
    let headers = HeaderMapLookup(&parts.headers);
    let view = RequestView {
        method: parts.method.as_str(),
        scheme,
        authority,
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &headers,
    };
    hmac.verify_request(&view, body).await
}

/// The only response that ever carries the secret.
#[derive(Serialize, ToSchema)]
pub struct SigningSecretView {
    pub key_id: String,
    /// 32 random bytes, base64: the HMAC-SHA256 key for signing requests.
    pub secret: String,
    pub created_at: String,
    /// With `?wait=all` only: how far the replacement has spread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation: Option<super::views::PropagationView>,
}

/// Create or replace a key's signing secret. Replacing takes effect at
/// once: requests signed with the old secret are refused from now on.
#[utoipa::path(post, path = "/v1/keys/{id}/signing-secret", operation_id = "create_signing_secret", tag = "keys",
    params(("id" = String, Path, pattern = "^key_[0-9A-Za-z]{16}$"), WaitParam),
    request_body(content = Object, description = "none, or `{}`"),
    responses((status = 201, body = SigningSecretView), (status = 400), (status = 401),
        (status = 403), (status = 404), (status = 409)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    KeyIdPath(id): KeyIdPath,
    wait: WaitAll,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<SigningSecretView>), ApiError> {
    let body = body.map_err(body_error)?;
    let trimmed = body.trim_ascii();
    if !(trimmed.is_empty() || trimmed == b"{}") {
        return Err(ApiError::bad_request(
            "invalid_request",
            "this endpoint takes no body (or `{}`)",
        ));
    }
    let issued = state.hmac.create_secret(&admin, &id).await?;
    let propagation = propagate(&state, wait).await?;
    Ok((
        StatusCode::CREATED,
        Json(SigningSecretView {
            key_id: issued.key_id.to_string(),
            secret: issued.secret.as_str().to_owned(),
            created_at: rfc3339(issued.created_at),
            propagation,
        }),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};
    use axum::response::IntoResponse;
    use keygate_core::httpsig::HeaderLookup;

    #[test]
    fn header_maps_are_read_in_order_and_refusals_are_401_with_their_code() {
        let mut map = HeaderMap::new();
        map.append("x-a", HeaderValue::from_static("1"));
        map.append("X-A", HeaderValue::from_static("2"));
        let lookup = HeaderMapLookup(&map);
        assert_eq!(lookup.values("x-a"), vec![b"1".as_slice(), b"2".as_slice()]);
        assert!(lookup.values("x-b").is_empty());
        for code in SigCode::ALL {
            let err = ApiError::from(HmacError::Refused(Refusal::new(code, "why")));
            assert_eq!(err.code, code.as_str());
            let res = err.into_response();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            assert!(res.headers().contains_key("www-authenticate"));
        }
        let err = ApiError::from(HmacError::Unavailable(keygate_core::Error::Storage(
            "db".into(),
        )));
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
