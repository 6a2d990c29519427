//! One module per page. Handlers parse, call one service, render.

pub mod keys;
pub mod login;

use axum::response::{IntoResponse, Redirect, Response};

use crate::BASE;
use crate::error::PageError;
use crate::session::Session;

/// The dashboard's front page. Until the overview page exists, the keys.
pub async fn home(_session: Session) -> Response {
    Redirect::to(&format!("{BASE}/keys")).into_response()
}

pub async fn not_found() -> PageError {
    PageError::NotFound("page")
}
