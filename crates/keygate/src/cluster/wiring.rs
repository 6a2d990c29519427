//! How `server::build` wires the many-nodes layer: what the services need
//! from it before they exist (the freshness gate, the shared limiter,
//! nonces and login throttle), and starting the watcher once they do.

use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use keygate_cluster::membership::InfoSource;
use keygate_core::SystemClock;
use keygate_core::freshness::Freshness;
use keygate_core::home::AtHome;
use keygate_core::httpsig::NonceStore;
use keygate_core::ratelimit::{GcraLimiter, RateLimiter};
use keygate_core::users::throttle::Throttle;
use keygate_store::{Backend, SqlStore};

use super::{Cluster, ServiceCaches, SharedLayer, freshness_for};
use crate::config::cluster::ClusterConfig;
use crate::metrics::Metrics;

/// The layer between connecting the database and starting the watcher.
pub struct Wiring {
    store: SqlStore,
    pub freshness: Arc<Freshness>,
    /// Counted by membership; the Redis fallbacks share limits by it.
    live_nodes: Arc<AtomicU32>,
    shared: Option<SharedLayer>,
}

impl Wiring {
    /// Connects Redis when configured (without waiting for it).
    pub fn prepare(store: &SqlStore, config: &ClusterConfig) -> Result<Self, String> {
        let freshness = freshness_for(store, config);
        let live_nodes = Arc::new(AtomicU32::new(1));
        let shared = shared_layer(
            config,
            &freshness,
            live_nodes.clone(),
            Arc::new(store.clone()),
        )?;
        Ok(Self {
            store: store.clone(),
            freshness,
            live_nodes,
            shared,
        })
    }

    /// Nonces live in the database on either backend when there is no
    /// Redis: every node, and this one after a restart, refuses a nonce
    /// any of them has seen.
    /// Either is I/O: a gateway worker runs its calls at home; but SQLite's
    /// record only queues for its writer, which lives at home already.
    pub fn nonces(&self) -> Arc<dyn NonceStore> {
        let nonces: Arc<dyn NonceStore> = match &self.shared {
            Some(s) => s.nonces.clone(),
            None if self.store.backend_kind() == Backend::Sqlite => {
                return Arc::new(self.store.clone());
            }
            None => Arc::new(self.store.clone()),
        };
        Arc::new(AtHome(nonces))
    }

    /// Call once: without Redis each call is a new, empty local limiter.
    /// Redis's is I/O, run at home from a gateway worker; the local one
    /// is not, and is called where it is.
    pub fn limiter(&self) -> Arc<dyn RateLimiter> {
        match &self.shared {
            Some(s) => Arc::new(AtHome(s.limiter.clone() as Arc<dyn RateLimiter>)),
            None => Arc::new(GcraLimiter::new()),
        }
    }

    /// The shared login throttle; None keeps the service's local one.
    pub fn throttle(&self) -> Option<Arc<dyn Throttle>> {
        let s = self.shared.as_ref()?;
        Some(s.throttle.clone())
    }

    /// On PostgreSQL: LISTEN to the feed and start at its head (the loop
    /// starts in `server::run`). None on SQLite, a single node.
    pub async fn start(
        self,
        caches: ServiceCaches,
        config: &ClusterConfig,
        metrics: &Metrics,
    ) -> Result<Option<Arc<Cluster>>, String> {
        if self.freshness.bound_ms().is_none() {
            return Ok(None);
        }
        let redis_wired = self.shared.is_some();
        let shared = self.shared.map(Arc::new);
        let info: InfoSource = Arc::new(move || match &shared {
            Some(s) => s.info(),
            None => serde_json::json!({ "backend": "local" }),
        });
        let cluster = Cluster::start(
            self.store,
            caches,
            self.freshness,
            config.clone(),
            Arc::new(SystemClock),
            metrics,
            (self.live_nodes, info),
        )
        .await?;
        cluster.log_guarantees(redis_wired);
        Ok(Some(Arc::new(cluster)))
    }
}

/// The shared Redis, on PostgreSQL when `[cluster] redis_url` is set;
/// SQLite is one node and has nothing to share.
fn shared_layer(
    config: &ClusterConfig,
    freshness: &Freshness,
    live_nodes: Arc<AtomicU32>,
    sql_nonces: Arc<dyn NonceStore>,
) -> Result<Option<SharedLayer>, String> {
    let Some(redis) = &config.redis else {
        return Ok(None);
    };
    if freshness.bound_ms().is_none() {
        tracing::warn!("[cluster] redis_url is ignored on SQLite: a single node shares nothing");
        return Ok(None);
    }
    SharedLayer::connect(redis, config.on_limiter_unavailable, live_nodes, sql_nonces).map(Some)
}
