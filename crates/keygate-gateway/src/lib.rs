//! The gateway: an authenticating reverse proxy on its own listener, and the
//! forward-auth endpoint that nginx, Traefik and Envoy call. Both read the
//! same route table, which a reload swaps whole.
//!
//! It is built from `GatewayDeps` (the services it calls), never from the
//! admin API's state; the admin API holds it, not the other way round.
//!
//! - `config`: the `[gateway]` section and its validation.
//! - `routes`, `path`: matching a request to a route.
//! - `admission`: the phases every entry point runs, each callable alone:
//!   route (`request`), authenticate (`auth`, `jwt`, `hmac`), limit
//!   (`limit`), mint (`internal_token`); `identity` and `refusal` are
//!   what they answer; `audit` counts refusals into the audit log.
//! - `proxy`: pingora's phases (request filter, upstream request, send,
//!   response filter, log), failing with a `failure::ProxyError` that
//!   says whose fault it was; `outcome` is what the log phase records.
//! - `upstream`, `upgrade`: upstream connections, kept open and reused,
//!   and WebSocket tunnels.
//! - `conn`, `listener`: the client connection and the accept loop.
//! - `metrics`: its Prometheus families, registered in the binary's registry.
//! - `stats`: each route's last minute (rate, 5xx share, p99) for the dashboard.
//! - `client_cert`: the client certificate a trusted proxy passes in a
//!   header (nginx, Envoy's XFCC, Traefik), for forward-auth.
//! - `mtls`: the client-certificate modes (`mtls`, `mtls_and_jwt`);
//!   `grants`: scopes, roles and tenants asked of an identity.
//! - `recipients`: upstream keys fetched from a JWKS URL, for encrypted
//!   internal tokens.
//! - `forward_auth`: the decision `/v1/forward-auth` answers for nginx,
//!   Traefik and Envoy (the HTTP adapter is the admin API's).

pub mod admission;
pub mod audit;
pub mod auth;
pub mod client_cert;
pub mod config;
pub mod conn;
pub mod deps;
pub mod failure;
pub mod forward_auth;
mod grants;
pub mod hmac;
pub mod identity;
pub mod internal_token;
mod jwt;
pub mod limit;
pub mod listener;
pub mod metrics;
mod mtls;
pub mod outcome;
pub mod path;
pub mod proxy;
mod recipients;
pub mod refusal;
pub mod request;
pub mod routes;
pub mod stats;
pub mod upgrade;
pub mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use keygate_core::ratelimit::{GcraLimiter, RateLimiter};
use parking_lot::RwLock;

use config::GatewayConfig;
pub use deps::GatewayDeps;
use internal_token::InternalTokens;
use routes::RouteTable;
use upstream::Upstreams;

pub struct Gateway {
    /// Swapped whole on reload; a request holds the `Arc` it started with.
    table: RwLock<Arc<RouteTable>>,
    listen: Option<SocketAddr>,
    workers: usize,
    config_path: Option<PathBuf>,
    pub(crate) upstreams: Arc<Upstreams>,
    /// Route limits, apart from the keys' own limiter: the same key may have
    /// its own limit and a route's. In process, or shared across nodes.
    pub(crate) limiter: Arc<dyn RateLimiter>,
    pub(crate) internal: InternalTokens,
    pub(crate) deps: GatewayDeps,
    /// Each route's last minute, kept across reloads.
    pub(crate) stats: stats::GatewayStats,
}

impl Gateway {
    /// `config_path` is the file a reload reads again. Route limits are
    /// counted in this process.
    pub fn new(
        config: GatewayConfig,
        config_path: Option<PathBuf>,
        deps: GatewayDeps,
    ) -> Arc<Self> {
        Self::with_limiter(config, config_path, deps, Arc::new(GcraLimiter::new()))
    }

    /// As `new`, with route limits counted by `limiter` (a shared one when
    /// several nodes serve the same routes).
    pub fn with_limiter(
        config: GatewayConfig,
        config_path: Option<PathBuf>,
        deps: GatewayDeps,
        limiter: Arc<dyn RateLimiter>,
    ) -> Arc<Self> {
        let mut routes = config.routes;
        recipients::adopt(&mut routes, &[]);
        Arc::new(Self {
            table: RwLock::new(Arc::new(RouteTable::new(routes))),
            listen: config.listen,
            workers: config.workers,
            config_path,
            upstreams: Upstreams::new(),
            limiter,
            internal: InternalTokens::default(),
            deps,
            stats: stats::GatewayStats::default(),
        })
    }

    pub fn deps(&self) -> &GatewayDeps {
        &self.deps
    }

    pub fn listen(&self) -> Option<SocketAddr> {
        self.listen
    }

    /// `[gateway] workers` as set (0: one per core).
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The table in force now.
    pub fn table(&self) -> Arc<RouteTable> {
        self.table.read().clone()
    }

    /// The routes in force, most specific first, each with its last
    /// minute (None: it has served nothing since the process started).
    pub fn route_stats(&self) -> Vec<(Arc<config::Route>, Option<stats::RouteWindow>)> {
        self.table()
            .routes()
            .iter()
            .map(|r| (r.clone(), self.stats.window(&r.name)))
            .collect()
    }

    /// Swaps in new routes; requests already running keep the old table. The
    /// listener cannot move or change its threads without a restart, so a
    /// new `listen` or `workers` is ignored.
    pub fn replace(&self, config: GatewayConfig) {
        let mut routes = config.routes;
        recipients::adopt(&mut routes, self.table().routes());
        let table = Arc::new(RouteTable::new(routes));
        *self.table.write() = table;
        self.internal.clear();
    }

    /// Fetches the upstream keys routes name by `jwks_url` and have not
    /// fetched yet (at start, so the first requests need not wait for the
    /// background refresh). Never fails: a route whose key cannot be
    /// fetched answers 503 `upstream_key_unavailable` until it is, and the
    /// fetch's failure is logged.
    pub async fn fetch_upstream_keys(&self) {
        recipients::fetch_missing(self.table().routes()).await;
    }

    /// Reads the configuration file again (SIGHUP). A bad file is reported
    /// and the routes in force stay.
    pub fn reload(&self) -> Result<usize, Vec<String>> {
        let Some(path) = &self.config_path else {
            return Err(vec!["no configuration file to reload".into()]);
        };
        match config::load_file(path) {
            Ok(Some(config)) => {
                let n = config.routes.len();
                self.replace(config);
                tracing::info!(routes = n, "gateway routes reloaded");
                Ok(n)
            }
            Ok(None) => {
                let e = vec![format!(
                    "{} no longer has a [gateway] section; keeping the routes in force",
                    path.display()
                )];
                tracing::warn!(errors = ?e, "gateway reload refused");
                Err(e)
            }
            Err(errors) => {
                tracing::warn!(
                    ?errors,
                    "gateway reload refused; keeping the routes in force"
                );
                Err(errors)
            }
        }
    }
}

impl Gateway {
    /// Caps the upstream requests in flight at once, over every upstream
    /// (the binary fits it under the process's descriptor limit).
    pub fn limit_upstream_requests(&self, max: usize) {
        self.upstreams.limit_requests(max);
    }
}

/// Serves the gateway until `shutdown` resolves, over TLS when `tls` is
/// set (loaded, and reloaded on SIGHUP, by the binary).
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    tls: Option<Arc<dyn keygate_http::listen::TlsSource>>,
    limits: keygate_http::listen::Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener::serve(listener, gateway, tls, limits, shutdown).await
}
