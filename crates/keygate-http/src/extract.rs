//! Extractors whose every failure is a clear problem+json 4xx: JSON bodies
//! and ids in paths (`id_in_path`, `KeyIdPath`); and the JSON response writer.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keygate_core::{KeyId, PrefixedId};
use serde::de::DeserializeOwned;

use crate::problem::ApiError;

/// The id in the path, parsed as a `T`. Anything else, including a path
/// that is not valid UTF-8 once decoded, is a problem+json 400 with `code`
/// before the handler runs.
pub async fn id_in_path<T: PrefixedId, S: Send + Sync>(
    code: &'static str,
    parts: &mut Parts,
    state: &S,
) -> Result<T, ApiError> {
    let invalid = || ApiError::bad_request(code, format!("{} looks like {}", T::NOUN, T::SHAPE));
    let Path(id) = Path::<String>::from_request_parts(parts, state)
        .await
        .map_err(|_| invalid())?;
    T::parse(&id).map_err(|_| invalid())
}

/// A key id from the path; anything else is a 400 before the handler.
pub struct KeyIdPath(pub KeyId);

impl<S: Send + Sync> FromRequestParts<S> for KeyIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        id_in_path("invalid_key_id", parts, state).await.map(Self)
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

/// A body that could not be read: too large a 413, anything else a 400.
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
pub fn json_response<T: serde::Serialize>(value: &T) -> Result<Response, ApiError> {
    let mut body = Vec::with_capacity(512);
    serde_json::to_writer(&mut body, value).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

/// A JSON body parsed as `T`; unknown fields and bad values are a 400.
pub fn parse_json<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("the JSON body is not valid here: {e}"),
        )
    })
}
