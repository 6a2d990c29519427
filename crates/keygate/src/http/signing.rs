//! `/v1/keys/{id}/signing-secret`: a key's HMAC request-signing secret
//! (RFC 9421, `hmac-sha256`), created or replaced, shown once.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use keygate_api::signing::SigningSecretView;

use super::AppState;
use super::cluster::{WaitAll, WaitParam, propagate};
use super::extract::{AdminAuth, KeyIdPath, body_error};
use super::views::rfc3339;
use keygate_http::ApiError;

/// The gateway verifies signed requests with these; they live with the
/// rest of the HTTP vocabulary.
pub use keygate_http::signature::{HeaderMapLookup, verify_parts};

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
            secret: issued.secret.as_str().into(),
            created_at: rfc3339(issued.created_at),
            propagation,
        }),
    ))
}
