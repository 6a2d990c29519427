//! Assembling and running the server. `run(listener, app, shutdown)` takes
//! the socket and the shutdown signal from its caller, so a test binds port 0
//! and starts a whole server in a few lines.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use keygate_core::httpsig::{HmacService, MemoryNonceStore};
use keygate_core::model::AuditEntry;
use keygate_core::ratelimit::GcraLimiter;
use keygate_core::{Clock, IssuedKey, KeyService};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::config::{Config, PepperSource};
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::secrets::{load_master_key, load_pepper};

const AUDIT_QUEUE: usize = 4096;
const USAGE_FLUSH_EVERY: Duration = Duration::from_secs(10);

/// A server ready to run.
pub struct App {
    pub state: AppState,
    body_limit: usize,
    audit_rx: mpsc::Receiver<AuditEntry>,
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
    if config.master_key == PepperSource::Missing {
        load_master_key(&config.master_key)?;
    }
    let store = keygate_store::connect(
        &config.database_url,
        keygate_store::ConnectOptions::default(),
    )
    .await
    .map_err(|e| format!("cannot open the database: {e}"))?;
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
    let name = format!("pepper_fingerprint_v{}", pepper.version());
    let recorded = store
        .setting_or_insert(&name, &pepper.fingerprint())
        .await
        .map_err(|e| format!("cannot read the database: {e}"))?;
    if recorded != pepper.fingerprint() {
        return Err(format!(
            "the configured pepper (version {}) is not the one this database was set up with, \
             so no key would verify. Configure the original pepper (KEYGATE_PEPPER_FILE), or a \
             new pepper_version for a new pepper",
            pepper.version()
        ));
    }
    let master_key = load_master_key(&config.master_key)?;
    let recorded = store
        .setting_or_insert("master_key_fingerprint", master_key.fingerprint())
        .await
        .map_err(|e| format!("cannot read the database: {e}"))?;
    if recorded != master_key.fingerprint() {
        return Err(
            "the configured master key is not the one this database was set up with, so its \
             sealed signing keys cannot be opened. Configure the original master key \
             (KEYGATE_MASTER_KEY_FILE)"
                .into(),
        );
    }
    let keys = KeyService::new(
        store,
        Arc::new(pepper),
        clock,
        Arc::new(GcraLimiter::new()),
        config.cache,
    );
    let keys = Arc::new(keys);
    let hmac = HmacService::new(
        keys.clone(),
        Arc::new(master_key),
        Arc::new(MemoryNonceStore::default()),
        config.hmac,
        config.cache.ttl_ms,
    )
    .map_err(|e| e.to_string())?;
    let (audit_tx, audit_rx) = mpsc::channel(AUDIT_QUEUE);
    Ok(App {
        state: AppState {
            keys,
            metrics: Metrics::new(),
            hmac: Arc::new(hmac),
            audit_tx,
        },
        body_limit: config.body_limit,
        audit_rx,
    })
}

impl App {
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
        body_limit,
        audit_rx,
    } = app;
    let audit_task = tokio::spawn(write_audit(state.clone(), audit_rx));
    let flusher = tokio::spawn(flush_usage_forever(state.keys.clone()));
    let router = http::router(state.clone(), body_limit);
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await;
    flusher.abort();
    if let Err(e) = state.keys.flush_usage().await {
        tracing::warn!(error = %e, "could not write last-used times at shutdown");
    }
    // Dropping the last sender ends the audit writer once the queue is empty.
    drop(state);
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

async fn write_audit(state: AppState, mut rx: mpsc::Receiver<AuditEntry>) {
    let store = state.keys.store().clone();
    drop(state);
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        if let Err(e) = store.append_audit(&batch).await {
            tracing::warn!(error = %e, entries = batch.len(), "could not write audit entries");
        }
        batch.clear();
    }
}
