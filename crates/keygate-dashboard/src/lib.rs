//! keygate's admin dashboard: HTML pages rendered on the server (askama,
//! checked at compile time) over keygate-core's services, never over the
//! JSON API. The binary nests `router()` at [`BASE`] on the admin listener
//! only: a proxied upstream on the gateway's origin could otherwise send
//! same-origin requests that no Origin check can tell apart.
//!
//! Layout:
//! - `security`: the headers every answer carries and the Origin /
//!   `Sec-Fetch-Site` check every non-GET passes first.
//! - `session`: the `__Host-keygate-dash` cookie, the [`Session`] extractor
//!   (a handler that takes one cannot run signed out) and the per-session
//!   form token (`SessionForm`).
//! - `assets`: htmx, app.js and app.css embedded, served under hashed names.
//! - `render`: the shared layout, times, and turning a template into a page.
//! - `error`: [`PageError`], the one place errors become pages.
//! - `pages`: one module per page, each handler parse → one service call →
//!   render.
//! - `charts`: SVG charts drawn on the server; `usage`: the keys pages'
//!   verification counts (sparklines, the key's chart).
//!
//! Everything works with JavaScript off: forms post and answer a 303 or a
//! page; htmx and app.js only enhance.

#![forbid(unsafe_code)]

pub mod assets;
pub mod charts;
pub mod error;
pub mod pages;
pub mod render;
pub mod security;
pub mod session;
pub mod usage;

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use keygate_core::audit::AuditLog;
use keygate_core::console::ConsoleSessions;
use keygate_core::httpsig::HmacService;
use keygate_core::jwt::TokenService;
use keygate_core::sessions::SessionService;
use keygate_core::{KeyService, MillisClock, UserService};
use keygate_http::client_addr::TrustedProxies;

pub use error::PageError;
pub use session::{Session, SessionForm};

/// Where the binary mounts the dashboard; every link and redirect uses it.
pub const BASE: &str = "/dashboard";

/// One row of the read-only routes page, filled by the binary from the
/// gateway's own statistics.
#[derive(Debug, Clone, Default)]
pub struct RouteRow {
    pub name: String,
    pub path: String,
    pub upstream: String,
    /// Requests per second over the recent window.
    pub rate: f64,
    /// Share of 5xx answers over the same window, 0..=1.
    pub error_share: f64,
    /// 99th percentile latency, milliseconds; None without requests.
    pub p99_ms: Option<f64>,
}

/// The gateway's routes as the dashboard shows them. Defined here so the
/// dashboard does not depend on the gateway crate; the binary implements it.
pub trait RoutesView: Send + Sync {
    fn routes(&self) -> Vec<RouteRow>;
}

/// The services the dashboard calls. Cheap to clone.
#[derive(Clone)]
pub struct DashboardDeps {
    pub keys: Arc<KeyService>,
    pub users: Arc<UserService>,
    pub sessions: Arc<SessionService>,
    /// The signing keys (JWT), for their page.
    pub tokens: Arc<TokenService>,
    pub hmac: Arc<HmacService>,
    pub audit: Arc<AuditLog>,
    pub console: Arc<ConsoleSessions>,
    pub routes: Option<Arc<dyn RoutesView>>,
    pub clock: Arc<dyn MillisClock>,
    /// Who the client is behind trusted proxies, for the login throttle.
    pub trusted_proxies: Arc<TrustedProxies>,
}

/// The dashboard's state as handlers see it.
pub type Deps = Arc<DashboardDeps>;

/// Every dashboard route, relative to [`BASE`]. The security layers wrap
/// all of them, the static files included. Generic in the outer state so
/// the binary can `nest` it in its own router.
pub fn router<S: Clone + Send + Sync + 'static>(deps: DashboardDeps) -> Router<S> {
    let deps: Deps = Arc::new(deps);
    Router::new()
        .route("/", get(pages::overview::show))
        .route("/login", get(pages::login::show).post(pages::login::submit))
        .route("/logout", post(pages::login::logout))
        .merge(pages::keys::routes())
        .merge(pages::routes())
        .route("/static/{file}", get(assets::serve))
        .fallback(pages::not_found)
        .layer(middleware::from_fn(security::check_origin))
        .layer(middleware::from_fn(security::headers))
        .with_state(deps)
}
