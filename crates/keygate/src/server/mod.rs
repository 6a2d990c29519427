//! Assembling and running the server. `run(listener, app, shutdown)` takes
//! the socket and the shutdown signal from its caller, so a test binds port 0
//! and starts a whole server in a few lines.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use keygate_core::audit::AuditLog;
use keygate_core::clients::ClientService;
use keygate_core::httpsig::HmacService;
use keygate_core::jwt::TokenService;
use keygate_core::keys::pepper::Pepper;
use keygate_core::ratelimit::RateLimiter;
use keygate_core::sealed::MasterKey;
use keygate_core::sessions::{Blocklist, SessionRevocation, SessionService};
use keygate_core::store::Store;
use keygate_core::{IssuedKey, KeyService, MillisClock, UserService};
use keygate_store::SqlStore;
use tokio::net::TcpListener;

use crate::cluster::{ServiceCaches, SqliteLock, Wiring};
use crate::config::{Config, PepperSource, SecretSource};
use crate::gateway::deps::RefusalAudit;
use crate::gateway::{Gateway, GatewayDeps};
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::secrets::{load_master_key, load_pepper, open_master_key, open_pepper};
use crate::tls::Tls;
use keygate_http::client_addr::TrustedProxies;
use keygate_http::listen::fdlimit::{self, Budget};

mod background;
mod dashboard;
mod dashboard_routes;
mod error;
mod ext_authz;
use background::Background;
pub use error::{EXIT_CODES_HELP, StartError, exit};

/// A server ready to run.
pub struct App {
    pub state: AppState,
    /// The listeners' certificate, when TLS is configured; `reload` it on SIGHUP.
    pub tls: Option<Tls>,
    body_limit: usize,
    gateway_listener: Option<TcpListener>,
    /// `[ext_authz]`, and its listener once bound.
    ext_authz: Option<ext_authz::ExtAuthz>,
    /// Each listener's `[limits]`, fitted under the descriptor limit.
    budget: Budget,
    /// How the background task writes and purges verification counts.
    key_usage: crate::config::KeyUsageConfig,
    /// SQLite: held until the server stops.
    _sqlite_lock: Option<SqliteLock>,
}

/// The services `AppState` is made of.
struct Services {
    tokens: Arc<TokenService>,
    users: Arc<UserService>,
    sessions: SessionService,
    blocklist: Arc<Blocklist>,
    audit: Arc<AuditLog>,
    keys: Arc<KeyService>,
    hmac: Arc<HmacService>,
    clients: Arc<ClientService>,
    limiter: Arc<dyn RateLimiter>,
}

/// Connects storage (running migrations), loads the pepper and builds the
/// services. A wrong or lost pepper would silently turn every key into
/// NOT_FOUND, so start-up refuses both: no pepper is generated for a
/// database that holds keys, and the pepper must match the fingerprint the
/// database recorded the first time it was used.
pub async fn build(config: &Config, clock: Arc<dyn MillisClock>) -> Result<App, StartError> {
    let (sqlite_lock, sql_store) = open_storage(config).await?;
    let wiring = Wiring::prepare(&sql_store, &config.cluster)
        .map_err(|e| StartError::Config(crate::config::ConfigError::Invalid(e)))?;
    let limiter = wiring.limiter();
    let store: Arc<dyn Store> = Arc::new(sql_store);
    let secrets = open_secrets(config, store.as_ref()).await?;
    let gateway_clock = clock.clone();
    let services = services(
        config,
        store.clone(),
        clock,
        secrets,
        &wiring,
        limiter.clone(),
    )
    .await?;
    let metrics = Metrics::new();
    let tls = load_tls(config)
        .await?
        .map(|t| t.counting_refusals_in(metrics.tls_client_certificate_refusals.clone()));
    let cluster = wiring
        .start(services.caches(), &config.cluster, &metrics)
        .await
        .map_err(StartError::Unavailable)?;
    let deps = gateway_deps(config, &services, &metrics, gateway_clock);
    let (gateway, budget) = gateway(config, deps.clone(), limiter);
    if let Some(gateway) = &gateway {
        // Before serving: a route whose upstream key cannot be fetched
        // answers 503 until it is, and keygate starts anyway.
        gateway.fetch_upstream_keys().await;
    }
    fetch_audience_keys(&config.audience_encryption).await;
    let state = services.into_state(
        config,
        metrics,
        cluster,
        gateway,
        deps.trusted_proxies,
        store,
    );
    Ok(App {
        state,
        tls,
        body_limit: config.body_limit,
        gateway_listener: None,
        ext_authz: config.ext_authz.map(ext_authz::ExtAuthz::new),
        budget,
        key_usage: config.key_usage,
        _sqlite_lock: sqlite_lock,
    })
}

/// What the gateway is built from: the services it shares with the admin
/// API, and the settings it reads.
fn gateway_deps(
    config: &Config,
    services: &Services,
    metrics: &Metrics,
    clock: Arc<dyn MillisClock>,
) -> GatewayDeps {
    GatewayDeps {
        keys: services.keys.clone(),
        tokens: services.tokens.clone(),
        hmac: services.hmac.clone(),
        clients: services.clients.clone(),
        clock,
        metrics: metrics.gateway.clone(),
        trusted_proxies: Arc::new(config.trusted_proxies.clone()),
        client_cert_header: config.forward_auth.clone(),
        // The admin API's log and drop counter: one flush writes both's
        // tallies, one metric counts both's drops.
        audit: RefusalAudit {
            log: services.audit.clone(),
            dropped: metrics.audit_dropped.clone(),
        },
    }
}

/// The listeners' TLS, when configured: certificate, key and the client
/// certificates' CAs and CRLs.
async fn load_tls(config: &Config) -> Result<Option<Tls>, StartError> {
    match &config.tls {
        Some(files) => Tls::load(files)
            .await
            .map(Some)
            .map_err(|e| StartError::Tls(e.to_string())),
        None => Ok(None),
    }
}

async fn open_secrets(
    config: &Config,
    store: &dyn Store,
) -> Result<(Pepper, Arc<MasterKey>), StartError> {
    let pepper = open_pepper(config, store)
        .await
        .map_err(StartError::Secret)?;
    let master_key = open_master_key(config, store)
        .await
        .map_err(StartError::Secret)?;
    Ok((pepper, master_key))
}

impl Services {
    /// The admin API's state: these services and what the node adds.
    fn into_state(
        self,
        config: &Config,
        metrics: Arc<Metrics>,
        cluster: Option<Arc<crate::cluster::Cluster>>,
        gateway: Option<Arc<Gateway>>,
        trusted_proxies: Arc<TrustedProxies>,
        storage: Arc<dyn Store>,
    ) -> AppState {
        let mut state = AppState {
            dashboard: None,
            tokens: self.tokens,
            cluster,
            users: self.users,
            sessions: Arc::new(self.sessions),
            blocklist: self.blocklist,
            allowed_origins: Arc::new(config.allowed_origins.clone()),
            keys: self.keys,
            metrics,
            hmac: self.hmac,
            clients: self.clients,
            limiter: self.limiter,
            audit: self.audit,
            gateway,
            trusted_proxies,
            storage: storage.clone(),
            audience_encryption: Arc::new(config.audience_encryption.clone()),
        };
        state.dashboard = dashboard::deps(config, &state, storage).map(Arc::new);
        state
    }
}

/// Refuses a missing pepper or master key before the database is opened,
/// and a second server on the same SQLite file, with the reason; then
/// connects (running migrations).
async fn open_storage(config: &Config) -> Result<(Option<SqliteLock>, SqlStore), StartError> {
    if config.pepper == PepperSource::Missing {
        load_pepper(&config.pepper, config.pepper_version).map_err(StartError::Secret)?;
    }
    if config.master_key == SecretSource::Missing {
        load_master_key(&config.master_key).map_err(StartError::Secret)?;
    }
    let database_url = config.database_url.expose_str();
    let sqlite_lock = crate::config::sqlite_path(database_url)
        .map(|db| SqliteLock::take(&db))
        .transpose()
        .map_err(StartError::Unavailable)?;
    let store =
        keygate_store::connect(database_url, keygate_store::ConnectOptions::default()).await?;
    Ok((sqlite_lock, store))
}

/// Starts the refresher of each `[[jwt.audiences]]` key given by
/// `jwks_url`, and waits for their first fetches: an audience whose key
/// cannot be fetched is refused at the token endpoint (503) until it is,
/// and keygate starts anyway.
async fn fetch_audience_keys(encryption: &crate::config::audiences::AudienceEncryption) {
    let mut fetches = tokio::task::JoinSet::new();
    for remote in encryption.all().filter_map(|e| e.remote()) {
        // Ends once the configuration (and so every clone) is dropped.
        drop(remote.spawn_refresher());
        let remote = remote.clone();
        fetches.spawn(async move {
            let _ = remote.refresh().await;
        });
    }
    while fetches.join_next().await.is_some() {}
}

/// The gateway, when configured, and each listener's limits fitted under
/// the descriptor limit (the gateway's upstream pool among them).
fn gateway(
    config: &Config,
    deps: GatewayDeps,
    limiter: Arc<dyn RateLimiter>,
) -> (Option<Arc<Gateway>>, Budget) {
    let gateway = config
        .gateway
        .clone()
        .map(|g| Gateway::with_limiter(g, config.config_path.clone(), deps, limiter));
    let budget = fdlimit::fit(&config.limits, fdlimit::raise_nofile(), gateway.is_some());
    if let Some(g) = &gateway {
        g.limit_upstream_requests(budget.gateway.upstream_max_requests);
    }
    (gateway, budget)
}

/// Loads the signing keys and the token blocklist, and builds the services
/// on them; the cache-holding ones consult `wiring`'s freshness gate.
async fn services(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn MillisClock>,
    (pepper, master_key): (Pepper, Arc<MasterKey>),
    wiring: &Wiring,
    limiter: Arc<dyn RateLimiter>,
) -> Result<Services, StartError> {
    let tokens = TokenService::start(
        store.clone(),
        master_key.clone(),
        clock.clone(),
        config.jwt.clone(),
    )
    .await
    .map_err(|e| StartError::from_core("cannot load the signing keys", e))?;
    let users = users(store.clone(), clock.clone(), wiring).await?;
    let pepper = Arc::new(pepper);
    let sessions = SessionService::new(
        store.clone(),
        store.clone(),
        pepper.clone(),
        clock.clone(),
        config.sessions,
    )
    .map_err(|e| StartError::from_core("[sessions]", e))?;
    let blocklist = blocklist(store.clone(), clock.clone()).await?;
    tokens.set_revocation_check(Arc::new(
        SessionRevocation::new(blocklist.clone(), users.clone())
            .with_freshness(wiring.freshness.clone()),
    ));
    let audit = Arc::new(AuditLog::new(store.clone(), clock.clone(), config.audit));
    let keys = keys(config, &store, pepper, &clock, wiring, &limiter);
    let hmac = HmacService::new(
        keys.clone(),
        store.clone(),
        master_key,
        wiring.nonces(),
        config.hmac,
        config.cache.ttl_ms,
    )
    .map_err(|e| StartError::from_core("hmac", e))?;
    Ok(Services {
        clients: clients(config, store.clone(), clock.clone(), wiring)?,
        tokens: Arc::new(tokens),
        users,
        sessions,
        blocklist,
        audit,
        keys,
        hmac: Arc::new(hmac),
        limiter,
    })
}

/// The key service, spending keys' rate limits in `limiter`.
fn keys(
    config: &Config,
    store: &Arc<dyn Store>,
    pepper: Arc<Pepper>,
    clock: &Arc<dyn MillisClock>,
    wiring: &Wiring,
    limiter: &Arc<dyn RateLimiter>,
) -> Arc<KeyService> {
    let keys = KeyService::new(
        store.clone(),
        pepper,
        clock.clone(),
        limiter.clone(),
        config.cache,
    )
    .with_max_keys_per_tenant(config.max_keys_per_tenant)
    .with_usage_store(store.clone())
    .with_freshness(wiring.freshness.clone());
    Arc::new(keys)
}

/// The mTLS client registry, on the `[mtls]` CAs read now: a CA or CRL
/// file that cannot be used stops the start.
fn clients(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn MillisClock>,
    wiring: &Wiring,
) -> Result<Arc<ClientService>, StartError> {
    let cas = config
        .mtls
        .load()
        .map_err(|e| StartError::Config(crate::config::ConfigError::Invalid(e.to_string())))?;
    let clients = ClientService::new(store, cas, clock).with_freshness(wiring.freshness.clone());
    Ok(Arc::new(clients))
}

/// The revoked-token list, loaded before the first request is served.
async fn blocklist(
    store: Arc<dyn Store>,
    clock: Arc<dyn MillisClock>,
) -> Result<Arc<Blocklist>, StartError> {
    let blocklist = Arc::new(Blocklist::new(store, clock));
    blocklist
        .sync()
        .await
        .map_err(|e| StartError::from_core("cannot load the token blocklist", e))?;
    Ok(blocklist)
}

/// Warmed up here, so the first login with an unknown username is not
/// slower than the rest.
async fn users(
    store: Arc<dyn Store>,
    clock: Arc<dyn MillisClock>,
    wiring: &Wiring,
) -> Result<Arc<UserService>, StartError> {
    let mut users = UserService::new(store, clock);
    if let Some(throttle) = wiring.throttle() {
        users = users.with_throttle(throttle);
    }
    users
        .warm_up()
        .await
        .map_err(|e| StartError::from_core("cannot prepare password hashing", e))?;
    Ok(Arc::new(users))
}

impl Services {
    /// What the feed's changes invalidate on this node.
    fn caches(&self) -> ServiceCaches {
        ServiceCaches {
            keys: self.keys.clone(),
            hmac: self.hmac.clone(),
            users: self.users.clone(),
            blocklist: self.blocklist.clone(),
            tokens: self.tokens.clone(),
            clients: self.clients.clone(),
        }
    }
}

impl App {
    /// Binds the gateway's listener when `[gateway] listen` is set, so the
    /// caller learns its address (port 0) before `run`.
    pub async fn bind_gateway(&mut self) -> Result<Option<SocketAddr>, StartError> {
        let Some(addr) = self.state.gateway.as_ref().and_then(|g| g.listen()) else {
            return Ok(None);
        };
        let listen_error = |source| StartError::Listen {
            addr: format!("{addr} for the gateway"),
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(listen_error)?;
        let bound = listener.local_addr().map_err(listen_error)?;
        self.gateway_listener = Some(listener);
        Ok(Some(bound))
    }

    /// Binds Envoy's gRPC listener when `[ext_authz] listen` is set, so the
    /// caller learns its address (port 0) before `run`.
    pub async fn bind_ext_authz(&mut self) -> Result<Option<SocketAddr>, StartError> {
        match &mut self.ext_authz {
            Some(e) => e.bind().await.map(Some),
            None => Ok(None),
        }
    }

    /// On an empty database, creates the root admin key (first start).
    pub async fn bootstrap_if_empty(&self) -> Result<Option<IssuedKey>, StartError> {
        let store = self.state.keys.store();
        let count = store.count_keys().await;
        if count.map_err(|e| StartError::from_core("cannot count keys", e))? > 0 {
            return Ok(None);
        }
        self.state
            .keys
            .bootstrap_root_key()
            .await
            .map(Some)
            .map_err(|e| StartError::from_core("cannot create the root key", e))
    }
}

/// Waits for a listener's task to finish draining.
async fn join(name: &str, task: Option<tokio::task::JoinHandle<std::io::Result<()>>>) {
    let Some(task) = task else { return };
    match task.await {
        Ok(Err(e)) => tracing::warn!(listener = name, error = %e, "a listener failed"),
        Err(e) => tracing::warn!(listener = name, error = %e, "a listener's task failed"),
        Ok(Ok(())) => {}
    }
}

/// Serves until `shutdown` resolves, then finishes in-flight requests and
/// writes what is queued (last-used times, audit entries).
pub async fn run(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let App {
        state,
        tls,
        body_limit,
        gateway_listener,
        ext_authz,
        budget,
        key_usage,
        _sqlite_lock,
    } = app;
    let background = Background::spawn(&state, key_usage);
    // One shutdown signal for both listeners.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let gateway_task = match (gateway_listener, state.gateway.clone()) {
        (Some(listener), Some(gateway)) => Some(tokio::spawn(crate::gateway::serve(
            listener,
            gateway,
            tls.as_ref()
                .map(|t| Arc::new(t.for_gateway()) as Arc<dyn keygate_http::listen::TlsSource>),
            budget.gateway,
            stopped(stop_rx.clone()),
        ))),
        _ => None,
    };
    // A small listener: the admin listener's limits suit it.
    let ext_authz_task = ext_authz.and_then(|e| {
        e.spawn(
            &state,
            tls.as_ref(),
            budget.admin.clone(),
            stopped(stop_rx.clone()),
        )
    });
    let router = http::router(state.clone(), body_limit);
    let served = crate::tls::serve(listener, router, tls, budget.admin, stopped(stop_rx)).await;
    join("gateway", gateway_task).await;
    join("ext_authz", ext_authz_task).await;
    background.finish(&state).await;
    served
}
