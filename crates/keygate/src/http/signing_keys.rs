//! `/v1/signing-keys` (root admins) and the public discovery documents:
//! `/.well-known/jwks.json` and `/.well-known/oauth-authorization-server`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keygate_api::signing::{SigningKeyList, SigningKeyView};
use keygate_core::jwt::{KeyState, KeyStatus};
use serde_json::json;

use super::AppState;
use super::extract::AdminAuth;
use super::views::rfc3339;
use keygate_http::ApiError;

/// As the API names them (`KeyState` serializes to the same words).
fn state_name(state: KeyState) -> &'static str {
    match state {
        KeyState::Pending => "pending",
        KeyState::Active => "active",
        KeyState::Retired => "retired",
        KeyState::Expired => "expired",
    }
}

fn view(status: &KeyStatus) -> SigningKeyView {
    let record = &status.record;
    SigningKeyView {
        kid: record.kid.clone(),
        alg: record.alg.as_str().to_owned(),
        state: state_name(status.state).to_owned(),
        created_at: rfc3339(record.created_at),
        activate_at: rfc3339(record.activate_at),
        retire_at: status.retire_at.map(rfc3339),
        unpublish_at: status.unpublish_at.map(rfc3339),
        public_jwk: serde_json::from_str(&record.public_jwk).ok(),
    }
}

#[utoipa::path(get, path = "/v1/signing-keys", operation_id = "list_signing_keys", tag = "signing-keys",
    responses((status = 200, body = SigningKeyList), (status = 401), (status = 403)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
) -> Result<Json<SigningKeyList>, ApiError> {
    let keys = state.tokens.signing_keys(&admin)?;
    Ok(Json(SigningKeyList {
        keys: keys.iter().map(view).collect(),
    }))
}

/// Adds a key that starts signing once it has been published for one JWKS
/// lifetime (201); with a rotation already pending, answers that key (200).
#[utoipa::path(post, path = "/v1/signing-keys/rotate", operation_id = "rotate_signing_key", tag = "signing-keys",
    responses((status = 201, body = SigningKeyView), (status = 200, body = SigningKeyView),
        (status = 401), (status = 403)),
    security(("api_key" = [])))]
pub async fn rotate(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
) -> Result<(StatusCode, Json<SigningKeyView>), ApiError> {
    let (status, created) = state.tokens.rotate(&admin).await?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(view(&status))))
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "discovery",
    responses((status = 200, description = "RFC 7517 JWK set: public keys only")))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let body = state.tokens.jwks_json();
    let max_age = state.tokens.config().jwks_max_age;
    let mut res = body.to_string().into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    res
}

/// RFC 8414 authorization server metadata.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
    responses((status = 200, description = "RFC 8414 metadata")))]
pub async fn metadata(State(state): State<AppState>) -> Response {
    let config = state.tokens.config();
    let issuer = &config.issuer;
    let algs: Vec<&str> = if config.algorithm.is_published() {
        vec![config.algorithm.as_str()]
    } else {
        Vec::new()
    };
    let body = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "grant_types_supported": ["client_credentials", "refresh_token"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post",
            "tls_client_auth", "self_signed_tls_client_auth",
        ],
        // RFC 8705 §3.3: tokens issued over a connection with a client
        // certificate are bound to it.
        "tls_client_certificate_bound_access_tokens": true,
        "introspection_endpoint_auth_methods_supported": ["bearer"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "token_endpoint_auth_signing_alg_values_supported": algs,
    });
    let mut res = Json(body).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}
