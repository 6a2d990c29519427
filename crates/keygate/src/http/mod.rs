//! The admin HTTP API: one file per resource, thin handlers, and the
//! middleware every request passes (request id, credentials-in-URL refusal,
//! metrics and logging).

pub mod audit;
pub mod clients;
pub mod cluster;
pub mod extract;
pub mod forward_auth;
pub mod health;
pub mod key_usage;
pub mod keys;
pub mod oauth;
pub mod openapi;
mod session_tokens;
pub mod sessions;
pub mod signing;
pub mod signing_keys;
pub mod users;
pub mod views;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use keygate_core::KeyService;
use keygate_core::UserService;
use keygate_core::audit::{AuditLog, Failure};
use keygate_core::httpsig::HmacService;

use crate::metrics::{Metrics, RequestLabels};
use keygate_http::framing::refuse_transfer_codings;
use keygate_http::{ApiError, ErrorCause};
use keygate_http::{RequestId, request_id};

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub keys: Arc<KeyService>,
    pub tokens: Arc<keygate_core::jwt::TokenService>,
    pub users: Arc<UserService>,
    pub sessions: Arc<keygate_core::sessions::SessionService>,
    pub blocklist: Arc<keygate_core::sessions::Blocklist>,
    /// Origins allowed to refresh with the session cookie.
    pub allowed_origins: Arc<Vec<String>>,
    pub metrics: Arc<Metrics>,
    /// HMAC request signatures: signing secrets and `verify_request`.
    pub hmac: Arc<HmacService>,
    /// mTLS clients: the registry and identification of client certificates.
    pub clients: Arc<keygate_core::clients::ClientService>,
    /// The rate limiter keys and clients spend their own limits in (the
    /// one the gateway uses), for a client's grant at `/oauth2/token`.
    pub limiter: Arc<dyn keygate_core::ratelimit::RateLimiter>,
    /// Failed authentications are tallied in memory and written in the
    /// background, so a flood of bad keys costs a few rows, not a row each.
    pub audit: Arc<AuditLog>,
    /// The routes, when a `[gateway]` section is configured (forward-auth
    /// reads them on this listener).
    pub gateway: Option<Arc<crate::gateway::Gateway>>,
    /// Proxies whose `X-Forwarded-For` names the client (both listeners).
    pub trusted_proxies: Arc<keygate_http::client_addr::TrustedProxies>,
    /// The many-nodes layer, on PostgreSQL; None on SQLite (one node).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Storage as a whole, for readiness (`ping`) and the backend's name
    /// only: each service holds just the store traits it uses.
    pub storage: Arc<dyn keygate_core::store::Store>,
    /// The admin dashboard's services when `[dashboard] enabled`: served
    /// at /dashboard on this (admin) listener only.
    /// Behind one `Arc`: axum clones the state several times a request,
    /// and a dozen reference counts more measured +2,000 instructions on
    /// every request (callgrind, /healthz).
    pub dashboard: Option<Arc<keygate_dashboard::DashboardDeps>>,
    /// `[[jwt.audiences]]` whose access tokens are encrypted, and to what.
    pub audience_encryption: Arc<crate::config::audiences::AudienceEncryption>,
}

impl AppState {
    pub fn audit_auth_failure(&self, failure: Failure<'_>) {
        if !self.audit.record_failure(failure) {
            self.metrics.audit_dropped.inc();
        }
    }
}

pub fn router(state: AppState, body_limit: usize) -> Router {
    let mut api = Router::new();
    if let Some(deps) = state.dashboard.as_deref().cloned() {
        // `nest` serves `/dashboard` itself, not `/dashboard/`: send that home.
        api = api
            .nest(keygate_dashboard::BASE, keygate_dashboard::router(deps))
            .route(
                "/dashboard/",
                get(|| async { axum::response::Redirect::permanent(keygate_dashboard::BASE) }),
            );
    }
    api.route("/v1/keys", post(keys::create).get(keys::list))
        .route("/v1/keys/verify", post(keys::verify))
        .route("/v1/keys/usage", get(key_usage::list))
        .route("/v1/keys/{id}/usage", get(key_usage::show))
        .route("/v1/keys/{id}", get(keys::show).patch(keys::update))
        .route("/v1/keys/{id}/rotate", post(keys::rotate))
        .route("/v1/keys/{id}/revoke", post(keys::revoke))
        .merge(clients::routes())
        .route("/v1/users", post(users::create).get(users::list))
        .route("/v1/users/{id}", get(users::show).patch(users::update))
        .route(
            "/v1/users/{id}/revoke-sessions",
            post(users::revoke_sessions),
        )
        .route("/v1/keys/{id}/signing-secret", post(signing::create))
        .route("/v1/audit", get(audit::list))
        .route("/v1/cluster", get(cluster::show))
        .route("/v1/auth/login", post(sessions::login))
        .route("/v1/auth/refresh", post(sessions::refresh))
        .route("/v1/auth/logout", post(sessions::logout))
        .route("/oauth2/token", post(oauth::token::token))
        .route("/oauth2/revoke", post(oauth::revoke::revoke))
        .route("/oauth2/introspect", post(oauth::introspect::introspect))
        .route("/v1/signing-keys", get(signing_keys::list))
        .route("/v1/signing-keys/rotate", post(signing_keys::rotate))
        .route("/.well-known/jwks.json", get(signing_keys::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            get(signing_keys::metadata),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::serve))
        .route(forward_auth::PATH, any(forward_auth::handle))
        .route("/v1/forward-auth/", any(forward_auth::handle))
        .route("/v1/forward-auth/{*original}", any(forward_auth::handle))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(refuse_credentials_in_url))
        // The admin listener decodes no transfer coding but `chunked` either.
        .layer(middleware::from_fn(refuse_transfer_codings))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
}

/// Query parameters that look like credentials. A key in a URL ends up in
/// proxy logs and browser history, so such requests are refused outright.
const CREDENTIAL_PARAMS: [&str; 5] = ["api_key", "apikey", "key", "token", "access_token"];

async fn refuse_credentials_in_url(req: Request, next: Next) -> Response {
    // Envoy puts the original request's query on forward-auth's URL; it is
    // the client's URL, not a credential sent to keygate, and is not logged.
    if req.uri().path().starts_with(forward_auth::PATH) {
        return next.run(req).await;
    }
    if let Some(query) = req.uri().query() {
        let names: Vec<String> = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .map(|pairs| pairs.into_iter().map(|(k, _)| k).collect())
            .unwrap_or_else(|_| {
                query
                    .split('&')
                    .map(|p| p.split('=').next().unwrap_or("").to_owned())
                    .collect()
            });
        if let Some(name) = names
            .iter()
            .find(|n| CREDENTIAL_PARAMS.contains(&n.to_ascii_lowercase().as_str()))
        {
            return ApiError::bad_request(
                "credential_in_url",
                format!(
                    "the query parameter `{name}` looks like a credential; URLs end up in logs, \
                     so send keys in a header instead: `Authorization: Bearer <key>` or `X-API-Key`"
                ),
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// Counts every request and logs it, with the route template (never the
/// query string, which could hold a secret) and, for 5xx, the hidden cause.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = crate::metrics::method_label(req.method());
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let res = next.run(req).await;
    let status = res.status().as_u16();
    let micros = started.elapsed().as_micros();
    let labels = RequestLabels {
        route,
        method,
        status,
    };
    state.metrics.requests.get_or_create(&labels).inc();
    let route = &labels.route;
    if let Some(ErrorCause(cause)) = res.extensions().get::<ErrorCause>() {
        tracing::error!(%route, %method, status, %request_id, %cause, "request failed");
    } else {
        tracing::debug!(%route, %method, status, %request_id, micros, "request");
    }
    res
}
