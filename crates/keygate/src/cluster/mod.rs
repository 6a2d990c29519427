//! The many-nodes layer as the server wires it: the feed's changes applied
//! to this node's services (`ServiceCaches`), the watcher and membership
//! tasks, and what the HTTP API asks of them (`?wait=all`, `/v1/cluster`).
//!
//! On SQLite there is one node: no feed, no watcher, and `Freshness` is
//! always fresh. A second server on the same SQLite file refuses to start
//! (`SqliteLock`), since its caches would never hear of the first one's
//! revocations.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use keygate_cluster::membership::InfoSource;
use keygate_cluster::{Membership, Node, PgListen, Propagation};
use keygate_core::feed::{ApplyChange, Change, FeedStore};
use keygate_core::freshness::{BootClock, Freshness, FreshnessMode};
use keygate_core::httpsig::HmacService;
use keygate_core::jwt::TokenService;
use keygate_core::sessions::Blocklist;
use keygate_core::store::Store;
use keygate_core::{KeyService, MillisClock, UserService};
use keygate_store::SqlStore;

use crate::config::cluster::ClusterConfig;
use crate::metrics::Metrics;

mod shared;
mod wiring;
pub use shared::SharedLayer;
pub use wiring::Wiring;

/// The longest an on-demand confirmation may hold a request.
const CONFIRM_DEADLINE_MS: i64 = 500;

/// This node's caches, as the feed changes them.
pub struct ServiceCaches {
    pub keys: Arc<KeyService>,
    pub hmac: Arc<HmacService>,
    pub users: Arc<UserService>,
    pub blocklist: Arc<Blocklist>,
    pub tokens: Arc<TokenService>,
    pub clients: Arc<keygate_core::clients::ClientService>,
}

impl ServiceCaches {
    /// Signing keys are reread in the background: only an expired key is
    /// ever deleted, and an unknown `kid` forces a reread anyway, so the
    /// few milliseconds this takes never let a withdrawn key verify.
    fn reload_signing_keys(&self) {
        self.tokens.clear_cache();
        let tokens = self.tokens.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = tokens.reload().await {
                    tracing::warn!(error = %e, "could not reread the signing keys after a change");
                }
            });
        }
    }
}

impl ApplyChange for ServiceCaches {
    fn apply(&self, change: &Change) {
        match change {
            // The key cache's epoch moves with it, which also drops the
            // HMAC service's entries read before.
            Change::KeyChanged { hashes, .. } => self.keys.invalidate_hashes(hashes),
            // A new secret can only make a remembered NOT_FOUND wrong.
            Change::KeyCreated { hashes } => self.keys.forget_negative(hashes),
            Change::HmacChanged { key_id } => self.hmac.forget(key_id),
            Change::UserCutoff { user_id } => self.users.forget_cutoff(user_id),
            Change::JtiBlocked { jti, exp } => self.blocklist.remember(jti, *exp),
            Change::SigningKeysChanged => self.reload_signing_keys(),
            // Any identification may name the client through a pattern.
            Change::ClientChanged { .. } => self.clients.invalidate_all(),
            Change::Unreadable { kind } => {
                tracing::warn!(%kind, "a feed entry this version cannot read: dropping every cache");
                self.flush_all();
            }
        }
    }

    fn flush_all(&self) {
        self.keys.invalidate_all();
        self.users.forget_all_cutoffs();
        self.clients.invalidate_all();
        // The blocklist only grows from the feed; its own sync rereads the
        // table every second, so nothing blocked can be missed for long.
        self.reload_signing_keys();
    }
}

/// The running layer on PostgreSQL.
pub struct Cluster {
    pub node: Arc<Node>,
    pub membership: Arc<Membership>,
    pub config: ClusterConfig,
    /// The feed and membership tables.
    pub feed: Arc<dyn FeedStore>,
    listen: Arc<PgListen>,
    first: parking_lot::Mutex<Option<Box<dyn keygate_cluster::NoticeSource>>>,
}

/// The freshness gate for this backend: bounded by S on PostgreSQL.
pub fn freshness_for(store: &SqlStore, config: &ClusterConfig) -> Arc<Freshness> {
    if store.backend() != "postgres" {
        return Arc::new(Freshness::always());
    }
    Arc::new(Freshness::new(
        FreshnessMode::Bounded {
            bound_ms: config.confirm_within_ms,
            stale: config.stale_policy,
            deadline_ms: CONFIRM_DEADLINE_MS.min(config.confirm_within_ms),
        },
        Arc::new(BootClock),
    ))
}

impl Cluster {
    /// LISTENs, then takes the head as the starting point (nothing is
    /// cached yet) and confirms; the loop starts with `spawn`.
    pub async fn start(
        store: SqlStore,
        caches: ServiceCaches,
        freshness: Arc<Freshness>,
        config: ClusterConfig,
        wall: Arc<dyn MillisClock>,
        metrics: &Metrics,
        membership: (Arc<AtomicU32>, InfoSource),
    ) -> Result<Self, String> {
        let lag = metrics.invalidation_lag.clone();
        let feed: Arc<dyn FeedStore> = Arc::new(store.clone());
        let node = Node::new(
            config.node_id.clone(),
            feed.clone(),
            Arc::new(caches),
            freshness.clone(),
            wall,
        )
        .with_lag_sink(Arc::new(move |secs| lag.observe(secs)));
        let node = Arc::new(node);
        freshness.install(node.clone());
        let listen = Arc::new(PgListen(store));
        let first = node
            .start(listen.as_ref())
            .await
            .map_err(|e| format!("cannot listen to the invalidation feed: {e}"))?;
        let (live, info) = membership;
        let membership = Arc::new(
            Membership::new(node.clone(), config.live_timeout_ms())
                .with_live_counter(live)
                .with_info(info),
        );
        Ok(Self {
            node,
            membership,
            config,
            feed,
            listen,
            first: parking_lot::Mutex::new(Some(first)),
        })
    }

    /// Starts the watcher and the heartbeats; abort the handles to stop.
    pub fn spawn(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let first = self.first.lock().take();
        vec![
            tokio::spawn(self.node.clone().watch(self.listen.clone(), first)),
            tokio::spawn(self.membership.clone().run()),
        ]
    }

    /// `?wait=all`: until every live node applied the head, or S.
    pub async fn wait_all(&self) -> Result<Propagation, keygate_core::Error> {
        self.node
            .wait_all(self.config.live_timeout_ms(), self.config.confirm_within_ms)
            .await
    }

    /// Says at start what this deployment does not share between nodes.
    pub fn log_guarantees(&self, redis_wired: bool) {
        tracing::info!(
            node_id = %self.config.node_id,
            confirm_within_ms = self.config.confirm_within_ms,
            "many-nodes mode: revocations reach every node through the PostgreSQL feed; a node \
             that cannot confirm within S answers 503"
        );
        if redis_wired {
            tracing::info!(
                on_limiter_unavailable = self.config.on_limiter_unavailable.as_str(),
                "rate limits, signature nonces and login throttles are shared through Redis"
            );
        } else {
            tracing::warn!(
                "no [cluster] redis_url: rate limits apply per node (N nodes admit up to N times \
                 a limit) and login throttles count per node; HMAC nonces stay shared in \
                 PostgreSQL, revocations reach every node through the feed"
            );
        }
    }
}

/// An exclusive lock on `<db>.lock`, held while the server runs: a second
/// server on the same SQLite file would serve from caches the first one's
/// writes never reach.
pub struct SqliteLock {
    _file: std::fs::File,
}

impl SqliteLock {
    pub fn take(db: &Path) -> Result<Self, String> {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        let path = std::path::PathBuf::from(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
        lock_exclusive(&file).map_err(|()| {
            format!(
                "another keygate server is running on the SQLite database {}: SQLite is \
                 single-node (each node's caches would miss the other's revocations). Stop it, \
                 or run many nodes on PostgreSQL",
                db.display()
            )
        })?;
        Ok(Self { _file: file })
    }
}

#[cfg(unix)]
fn lock_exclusive(file: &std::fs::File) -> Result<(), ()> {
    use rustix::fs::{FlockOperation, flock};
    flock(file, FlockOperation::NonBlockingLockExclusive).map_err(|_| ())
}

#[cfg(not(unix))]
fn lock_exclusive(_file: &std::fs::File) -> Result<(), ()> {
    Ok(())
}
