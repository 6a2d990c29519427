//! Assembling and running the server. `run(listener, app, shutdown)` takes
//! the socket and the shutdown signal from its caller, so a test binds port 0
//! and starts a whole server in a few lines.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use keygate_cluster::membership::InfoSource;
use keygate_core::audit::AuditLog;
use keygate_core::httpsig::{HmacService, NonceStore};
use keygate_core::jwt::TokenService;
use keygate_core::ratelimit::{GcraLimiter, RateLimiter};
use keygate_core::sessions::{
    AuditContext, BLOCKLIST_SYNC_INTERVAL, Blocklist, SessionRevocation, SessionService,
};
use keygate_core::{Clock, IssuedKey, KeyService, SystemClock, UserService};
use tokio::net::TcpListener;

use crate::cluster::{Cluster, ServiceCaches, SharedLayer, SqliteLock, freshness_for};
use crate::config::{Config, PepperSource, SecretSource};
use crate::gateway::Gateway;
use crate::http::{self, AppState};
use crate::listen::fdlimit::{self, Budget};
use crate::metrics::Metrics;
use crate::secrets::{check_fingerprint, load_master_key, load_pepper};
use crate::tls::Tls;

/// How often counted failures are written to the audit log.
const AUDIT_FLUSH_EVERY: Duration = Duration::from_secs(1);
const USAGE_FLUSH_EVERY: Duration = Duration::from_secs(10);
/// How often each node runs the signing-key schedule and rereads the keys
/// (another node may have rotated).
const SIGNING_KEYS_EVERY: Duration = Duration::from_secs(10);

/// A server ready to run.
pub struct App {
    pub state: AppState,
    /// The listeners' certificate, when TLS is configured; `reload` it on SIGHUP.
    pub tls: Option<Tls>,
    body_limit: usize,
    gateway_listener: Option<TcpListener>,
    /// Each listener's `[limits]`, fitted under the descriptor limit.
    budget: Budget,
    /// SQLite: held until the server stops.
    _sqlite_lock: Option<SqliteLock>,
}

/// Connects storage (running migrations), loads the pepper and builds the
/// services. A wrong or lost pepper would silently turn every key into
/// NOT_FOUND, so start-up refuses both: no pepper is generated for a
/// database that holds keys, and the pepper must match the fingerprint the
/// database recorded the first time it was used.
pub async fn build(config: &Config, clock: Arc<dyn Clock>) -> Result<App, String> {
    if config.pepper == PepperSource::Missing {
        load_pepper(&config.pepper, config.pepper_version)?;
    }
    if config.master_key == SecretSource::Missing {
        load_master_key(&config.master_key)?;
    }
    // Before the database is opened: a second server on the same SQLite
    // file stops here, with the reason.
    let sqlite_lock = crate::config::sqlite_path(&config.database_url)
        .map(|db| SqliteLock::take(&db))
        .transpose()?;
    let store = keygate_store::connect(
        &config.database_url,
        keygate_store::ConnectOptions::default(),
    )
    .await
    .map_err(|e| format!("cannot open the database: {e}"))?;
    // Nonces live in the database on either backend: every node, and this
    // one after a restart, refuses a nonce any of them has seen.
    let sql_store = store.clone();
    let freshness = freshness_for(&sql_store, &config.cluster);
    let live_nodes = Arc::new(AtomicU32::new(1));
    let shared = shared_layer(
        config,
        &freshness,
        live_nodes.clone(),
        Arc::new(store.clone()),
    )?;
    let nonces: Arc<dyn NonceStore> = match &shared {
        Some(s) => s.nonces.clone(),
        None => Arc::new(store.clone()),
    };
    let limiter: Arc<dyn RateLimiter> = match &shared {
        Some(s) => s.limiter.clone(),
        None => Arc::new(GcraLimiter::new()),
    };
    let store: Arc<dyn keygate_core::store::Store> = Arc::new(store);
    if let PepperSource::BesideDatabase(path) = &config.pepper
        && !path.exists()
        && store.count_keys().await.map_err(|e| e.to_string())? > 0
    {
        return Err(format!(
            "the database already holds keys but its pepper file {} is missing; a new pepper \
             would make every key unusable. Restore the file, or point KEYGATE_PEPPER_FILE at it",
            path.display()
        ));
    }
    let pepper = load_pepper(&config.pepper, config.pepper_version)?;
    check_fingerprint(
        store.as_ref(),
        &format!("pepper_fingerprint_v{}", pepper.version()),
        &pepper.fingerprint(),
        || {
            format!(
                "the configured pepper (version {}) is not the one this database was set up \
                 with, so no key would verify. Configure the original pepper \
                 (KEYGATE_PEPPER_FILE), or a new pepper_version for a new pepper",
                pepper.version()
            )
        },
    )
    .await?;
    if let SecretSource::BesideDatabase(path) = &config.master_key
        && !path.exists()
        && !store
            .list_signing_keys()
            .await
            .map_err(|e| e.to_string())?
            .is_empty()
    {
        return Err(format!(
            "the database holds signing keys but its master key file {} is missing; they \
             cannot be opened without it. Restore the file, or point KEYGATE_MASTER_KEY_FILE at it",
            path.display()
        ));
    }
    let master_key = Arc::new(load_master_key(&config.master_key)?);
    check_fingerprint(
        store.as_ref(),
        "master_key_fingerprint",
        master_key.fingerprint(),
        || {
            "the configured master key is not the one this database was set up with, so its \
             sealed signing keys cannot be opened. Configure the original master key \
             (KEYGATE_MASTER_KEY_FILE)"
                .to_owned()
        },
    )
    .await?;
    let tokens = TokenService::start(
        store.clone(),
        master_key.clone(),
        clock.clone(),
        config.jwt.clone(),
    )
    .await
    .map_err(|e| format!("cannot load the signing keys: {e}"))?;
    let mut users = UserService::new(store.clone(), clock.clone());
    if let Some(s) = &shared {
        users = users.with_throttle(s.throttle.clone());
    }
    users
        .warm_up()
        .await
        .map_err(|e| format!("cannot prepare password hashing: {e}"))?;
    let users = Arc::new(users);
    let pepper = Arc::new(pepper);
    let sessions = SessionService::new(
        store.clone(),
        pepper.clone(),
        clock.clone(),
        config.sessions,
    )
    .map_err(|e| e.to_string())?;
    let blocklist = Arc::new(Blocklist::new(store.clone(), clock.clone()));
    blocklist
        .sync()
        .await
        .map_err(|e| format!("cannot load the token blocklist: {e}"))?;
    tokens.set_revocation_check(Arc::new(
        SessionRevocation::new(blocklist.clone(), users.clone()).with_freshness(freshness.clone()),
    ));
    let audit = Arc::new(AuditLog::new(store.clone(), clock.clone(), config.audit));
    let keys = KeyService::new(store, pepper, clock, limiter.clone(), config.cache)
        .with_max_keys_per_tenant(config.max_keys_per_tenant)
        .with_freshness(freshness.clone());
    let tls = match &config.tls {
        Some(files) => Some(Tls::load(files).await?),
        None => None,
    };
    let keys = Arc::new(keys);
    let hmac = HmacService::new(
        keys.clone(),
        master_key.clone(),
        nonces,
        config.hmac,
        config.cache.ttl_ms,
    )
    .map_err(|e| e.to_string())?;
    let tokens = Arc::new(tokens);
    let hmac = Arc::new(hmac);
    let metrics = Metrics::new();
    let cluster = start_cluster(
        sql_store,
        ServiceCaches {
            keys: keys.clone(),
            hmac: hmac.clone(),
            users: users.clone(),
            blocklist: blocklist.clone(),
            tokens: tokens.clone(),
        },
        freshness,
        config,
        &metrics,
        (live_nodes, shared),
    )
    .await?;
    let gateway = config
        .gateway
        .clone()
        .map(|g| Gateway::with_limiter(g, config.config_path.clone(), limiter.clone()));
    let budget = fdlimit::fit(&config.limits, fdlimit::raise_nofile(), gateway.is_some());
    if let Some(g) = &gateway {
        g.upstreams
            .limit_requests(budget.gateway.upstream_max_requests);
    }
    Ok(App {
        state: AppState {
            tokens,
            cluster,
            users,
            sessions: Arc::new(sessions),
            blocklist,
            allowed_origins: Arc::new(config.allowed_origins.clone()),
            keys,
            metrics,
            hmac,
            audit,
            gateway,
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
        },
        tls,
        body_limit: config.body_limit,
        gateway_listener: None,
        budget,
        _sqlite_lock: sqlite_lock,
    })
}

/// On PostgreSQL: LISTEN to the feed and start at its head (the loop
/// starts in `run`). None on SQLite, a single node.
async fn start_cluster(
    store: keygate_store::SqlStore,
    caches: ServiceCaches,
    freshness: Arc<keygate_core::freshness::Freshness>,
    config: &Config,
    metrics: &Metrics,
    (live_nodes, shared): (Arc<AtomicU32>, Option<SharedLayer>),
) -> Result<Option<Arc<Cluster>>, String> {
    if freshness.bound_ms().is_none() {
        return Ok(None);
    }
    let redis_wired = shared.is_some();
    let shared = shared.map(Arc::new);
    let info: InfoSource = Arc::new(move || match &shared {
        Some(s) => s.info(),
        None => serde_json::json!({ "backend": "local" }),
    });
    let cluster = Cluster::start(
        store,
        caches,
        freshness,
        config.cluster.clone(),
        Arc::new(SystemClock),
        metrics,
        (live_nodes, info),
    )
    .await?;
    cluster.log_guarantees(redis_wired);
    Ok(Some(Arc::new(cluster)))
}

/// The shared Redis, on PostgreSQL when `[cluster] redis_url` is set;
/// SQLite is one node and has nothing to share.
fn shared_layer(
    config: &Config,
    freshness: &keygate_core::freshness::Freshness,
    live_nodes: Arc<AtomicU32>,
    sql_nonces: Arc<dyn NonceStore>,
) -> Result<Option<SharedLayer>, String> {
    let Some(redis) = &config.cluster.redis else {
        return Ok(None);
    };
    if freshness.bound_ms().is_none() {
        tracing::warn!("[cluster] redis_url is ignored on SQLite: a single node shares nothing");
        return Ok(None);
    }
    SharedLayer::connect(
        redis,
        config.cluster.on_limiter_unavailable,
        live_nodes,
        sql_nonces,
    )
    .map(Some)
}

impl App {
    /// Binds the gateway's listener when `[gateway] listen` is set, so the
    /// caller learns its address (port 0) before `run`.
    pub async fn bind_gateway(&mut self) -> Result<Option<SocketAddr>, String> {
        let Some(addr) = self.state.gateway.as_ref().and_then(|g| g.listen()) else {
            return Ok(None);
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr} for the gateway: {e}"))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        self.gateway_listener = Some(listener);
        Ok(Some(bound))
    }

    /// On an empty database, creates the root admin key (first start).
    pub async fn bootstrap_if_empty(&self) -> Result<Option<IssuedKey>, String> {
        let store = self.state.keys.store();
        if store.count_keys().await.map_err(|e| e.to_string())? > 0 {
            return Ok(None);
        }
        self.state
            .keys
            .bootstrap_root_key()
            .await
            .map(Some)
            .map_err(|e| e.to_string())
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
        budget,
        _sqlite_lock,
    } = app;
    let cluster_tasks = state
        .cluster
        .as_ref()
        .map(|c| c.spawn())
        .unwrap_or_default();
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
            state.clone(),
            gateway,
            tls.clone(),
            budget.gateway,
            stopped(stop_rx.clone()),
        ))),
        _ => None,
    };
    let (audit_stop, audit_stopped) = tokio::sync::oneshot::channel();
    let audit_task = tokio::spawn(flush_audit_until(state.audit.clone(), audit_stopped));
    let flusher = tokio::spawn(flush_usage_forever(state.keys.clone()));
    let key_schedule = tokio::spawn(maintain_signing_keys_forever(state.tokens.clone()));
    let blocklist_sync = tokio::spawn(sync_blocklist_forever(state.blocklist.clone()));
    let nonce_prune = tokio::spawn(prune_nonces_forever(state.hmac.clone()));
    let purge = tokio::spawn(purge_forever(
        state.sessions.clone(),
        state.blocklist.clone(),
        state.audit.clone(),
    ));
    let router = http::router(state.clone(), body_limit);
    let served = crate::tls::serve(listener, router, tls, budget.admin, stopped(stop_rx)).await;
    if let Some(task) = gateway_task {
        match task.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "the gateway listener failed"),
            Err(e) => tracing::warn!(error = %e, "the gateway task failed"),
            Ok(Ok(())) => {}
        }
    }
    flusher.abort();
    key_schedule.abort();
    blocklist_sync.abort();
    nonce_prune.abort();
    purge.abort();
    for task in cluster_tasks {
        task.abort();
    }
    if let Some(cluster) = &state.cluster {
        cluster.membership.leave().await;
    }
    if let Err(e) = state.keys.flush_usage().await {
        tracing::warn!(error = %e, "could not write last-used times at shutdown");
    }
    // Not aborted: a flush cut short would lose what it had taken.
    let _ = audit_stop.send(());
    let _ = audit_task.await;
    served
}

async fn flush_usage_forever(keys: Arc<KeyService>) {
    let mut tick = tokio::time::interval(USAGE_FLUSH_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = keys.flush_usage().await {
            tracing::warn!(error = %e, "could not write last-used times; will retry");
        }
    }
}

async fn maintain_signing_keys_forever(tokens: Arc<TokenService>) {
    let mut tick = tokio::time::interval(SIGNING_KEYS_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = tokens.maintain().await {
            tracing::warn!(error = %e, "could not run the signing-key schedule; will retry");
        }
    }
}

/// Also what drops expired entries from memory, so it runs on one node too.
async fn sync_blocklist_forever(blocklist: Arc<Blocklist>) {
    let mut tick = tokio::time::interval(BLOCKLIST_SYNC_INTERVAL);
    loop {
        tick.tick().await;
        if let Err(e) = blocklist.sync().await {
            tracing::warn!(error = %e, "could not sync the token blocklist; will retry");
        }
    }
}

/// Expired nonces are pruned this often: the table holds at most this
/// much dead weight beyond the live window.
const NONCE_PRUNE_EVERY: Duration = Duration::from_secs(60);

async fn prune_nonces_forever(hmac: Arc<HmacService>) {
    let mut tick = tokio::time::interval(NONCE_PRUNE_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = hmac.prune_nonces().await {
            tracing::warn!(error = %e, "could not prune expired signature nonces; will retry");
        }
    }
}

const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Expired sessions and blocklist entries, and audit rows past the
/// retention period (pruned at start too: a node may not run an hour).
async fn purge_forever(
    sessions: Arc<SessionService>,
    blocklist: Arc<Blocklist>,
    audit: Arc<AuditLog>,
) {
    let mut tick = tokio::time::interval(PURGE_EVERY);
    let mut first = true;
    loop {
        tick.tick().await;
        if let Err(e) = audit.prune().await {
            tracing::warn!(error = %e, "could not prune the audit log; will retry");
        }
        // Nothing has expired at start.
        if std::mem::take(&mut first) {
            continue;
        }
        let ctx = AuditContext::system();
        if let Err(e) = sessions.purge_expired(&ctx).await {
            tracing::warn!(error = %e, "could not purge expired sessions; will retry");
        }
        if let Err(e) = blocklist.purge(&ctx).await {
            tracing::warn!(error = %e, "could not purge the token blocklist; will retry");
        }
    }
}

/// Writes counted failures every second, and once more when `stop` fires
/// (after the listeners have finished their requests).
async fn flush_audit_until(audit: Arc<AuditLog>, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(AUDIT_FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = &mut stop => true,
        };
        match audit.flush().await {
            Err(e) if stopping => tracing::error!(
                error = %e,
                lost = audit.waiting(),
                "could not write the failed authentications counted since the last flush"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                waiting = audit.waiting(),
                "could not write counted failures to the audit log; will retry"
            ),
            Ok(_) => {}
        }
        if stopping {
            return;
        }
    }
}
