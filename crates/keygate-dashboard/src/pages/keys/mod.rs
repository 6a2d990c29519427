//! The keys pages: the list (filters, cursor paging, bulk revoke), create
//! with the secret shown once, and one key's page (edit, rotate with grace,
//! revoke, HMAC signing secret, its audit events).

pub mod actions;
pub mod create;
pub mod detail;
pub mod form;
pub mod list;

use axum::Router;
use axum::routing::{get, post};
use keygate_core::KeyId;
use keygate_core::model::KeyRecord;

use crate::Deps;
use crate::error::PageError;
use crate::render::{When, when};

pub fn routes() -> Router<Deps> {
    Router::new()
        .route("/keys", get(list::show).post(create::submit))
        .route("/keys/new", get(create::show))
        .route("/keys/revoke-selected", post(list::confirm_bulk))
        .route("/keys/revoke-selected/confirm", post(list::revoke_bulk))
        .route("/keys/{id}", get(detail::show).post(detail::edit))
        .route("/keys/{id}/rotate", post(actions::rotate))
        .route(
            "/keys/{id}/revoke",
            get(actions::confirm_revoke).post(actions::revoke),
        )
        .route("/keys/{id}/signing-secret", post(actions::signing_secret))
}

/// Keys expiring within this many seconds are flagged "expiring".
pub const EXPIRING_SOON_SECS: i64 = 7 * 86_400;

/// A key's state in words (never colour alone) and its CSS class.
pub fn status(key: &KeyRecord, now: i64) -> (&'static str, &'static str) {
    match (key.revoked_at, key.expires_at) {
        (Some(_), _) => ("Revoked", "revoked"),
        (None, Some(at)) if at <= now => ("Expired", "expired"),
        (None, Some(at)) if at - now <= EXPIRING_SOON_SECS => ("Expiring", "expiring"),
        _ => ("Active", "active"),
    }
}

/// A key as a table row or a detail page shows it.
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub owner: String,
    pub tenant: String,
    pub scopes: String,
    pub env: &'static str,
    pub status: &'static str,
    pub status_class: &'static str,
    pub created: When,
    pub expires: Option<When>,
    pub last_used: Option<When>,
    pub revoked: Option<When>,
    pub live: bool,
    /// Filled by the usage hook (a sparkline for the table); empty shows "—".
    pub usage: String,
}

impl KeyView {
    pub fn new(key: &KeyRecord, now: i64) -> Self {
        let (status, status_class) = status(key, now);
        Self {
            id: key.id.to_string(),
            name: key.name.clone(),
            prefix: key.prefix.clone(),
            owner: key.owner.clone(),
            tenant: key
                .tenant
                .as_ref()
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default(),
            scopes: key
                .scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            env: key.env.as_str(),
            status,
            status_class,
            created: when(key.created_at, now),
            expires: key.expires_at.map(|at| when(at, now)),
            last_used: key.last_used_at.map(|at| when(at, now)),
            revoked: key.revoked_at.map(|at| when(at, now)),
            live: status_class == "active" || status_class == "expiring",
            usage: String::new(),
        }
    }
}

/// The `{id}` of a keys URL, 404 when it is not a key id.
pub fn key_id(raw: &str) -> Result<KeyId, PageError> {
    KeyId::parse(raw).map_err(|_| PageError::NotFound("key"))
}

pub fn now(deps: &Deps) -> i64 {
    deps.clock.now_secs()
}
