//! One module per page. Handlers parse, call one service, render.

pub mod audit;
pub mod keys;
pub mod login;
pub mod overview;
pub mod routes;
pub mod signing_keys;
pub mod users;

use axum::Router;
use axum::routing::{get, post};

use crate::Deps;
use crate::error::PageError;

/// The overview, users, signing keys, audit and routes pages (the front
/// page `/` is the overview).
pub fn routes() -> Router<Deps> {
    Router::new()
        .route("/users", get(users::list).post(users::create))
        .route("/users/{id}", get(users::show))
        .route("/users/{id}/password", post(users::set_password))
        .route("/users/{id}/enable", post(users::enable))
        .route(
            "/users/{id}/disable",
            get(users::confirm_disable).post(users::disable),
        )
        .route(
            "/users/{id}/revoke-sessions",
            get(users::confirm_revoke).post(users::revoke_sessions),
        )
        .route("/signing-keys", get(signing_keys::show))
        .route("/signing-keys/rotate", post(signing_keys::rotate))
        .route("/audit", get(audit::show))
        .route("/routes", get(routes::show))
}

pub async fn not_found() -> PageError {
    PageError::NotFound("page")
}

/// A filter field of a GET form: trimmed, None when empty, refused (400)
/// when it is not text the API would take.
pub fn filter_text(field: &'static str, v: &str) -> Result<Option<String>, PageError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    keygate_core::model::validate_text(field, v)?;
    Ok(Some(v.to_owned()))
}
