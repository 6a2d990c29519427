//! Membership: each node upserts its row in `cluster_nodes` every second
//! (applied seq, confirmed age, limiter state), counts the live nodes (the
//! Redis limiter's fallback shares limits by that count), and prunes the
//! feed hourly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use keygate_core::error::Error;
use keygate_core::feed::{NodeBeat, NodeRow};
use serde_json::{Value, json};

use crate::watch::Node;

pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Feed rows older than this are deleted; a node away longer flushes its
/// caches when it comes back.
pub const FEED_RETENTION_MS: i64 = 24 * 3600 * 1000;
/// Rows of nodes silent this long are deleted.
const FORGET_AFTER_MS: i64 = 24 * 3600 * 1000;

/// What a node reports beyond the feed (the limiter's state).
pub type InfoSource = Arc<dyn Fn() -> Value + Send + Sync>;

pub struct Membership {
    node: Arc<Node>,
    started_ms: i64,
    live_timeout_ms: i64,
    live: Arc<AtomicU32>,
    info: Option<InfoSource>,
}

impl Membership {
    pub fn new(node: Arc<Node>, live_timeout_ms: i64) -> Self {
        let started_ms = node.wall.now_millis();
        Self {
            node,
            started_ms,
            live_timeout_ms,
            live: Arc::new(AtomicU32::new(1)),
            info: None,
        }
    }

    /// Counts live nodes into `live` (shared with the limiter's fallback).
    pub fn with_live_counter(mut self, live: Arc<AtomicU32>) -> Self {
        self.live = live;
        self
    }

    pub fn with_info(mut self, info: InfoSource) -> Self {
        self.info = Some(info);
        self
    }

    /// The number of live nodes (at least 1: this one), kept current by
    /// `beat`; hand it to whatever shares a limit between nodes.
    pub fn live_count(&self) -> Arc<AtomicU32> {
        self.live.clone()
    }

    pub fn live_timeout_ms(&self) -> i64 {
        self.live_timeout_ms
    }

    /// Whether a row's heartbeat is recent enough.
    pub fn is_live(&self, row: &NodeRow, now_ms: i64) -> bool {
        now_ms - row.last_seen_ms <= self.live_timeout_ms
    }

    /// One heartbeat: upsert this node's row, then recount the live ones.
    pub async fn beat(&self) -> Result<(), Error> {
        let now_ms = self.node.wall.now_millis();
        let extra = self.info.as_ref().map_or(Value::Null, |f| f());
        let beat = NodeBeat {
            node_id: self.node.id().to_owned(),
            started_ms: self.started_ms,
            now_ms,
            applied_seq: self.node.applied(),
            info: json!({
                "confirmed_age_ms": self.node.freshness().confirmed_age_ms(),
                "limiter": extra,
            }),
        };
        self.node.store.heartbeat(&beat).await?;
        let rows = self.node.store.nodes().await?;
        let live = rows.iter().filter(|r| self.is_live(r, now_ms)).count();
        let live = u32::try_from(live.max(1)).unwrap_or(u32::MAX);
        self.live.store(live, Ordering::Release);
        self.node
            .acks
            .retain(|id| rows.iter().any(|r| r.node_id == id));
        Ok(())
    }

    /// Deletes feed rows past retention and rows of long-gone nodes.
    pub async fn prune(&self) -> Result<u64, Error> {
        let now_ms = self.node.wall.now_millis();
        let pruned = self
            .node
            .store
            .feed_prune(now_ms - FEED_RETENTION_MS)
            .await?;
        for row in self.node.store.nodes().await? {
            if now_ms - row.last_seen_ms > FORGET_AFTER_MS {
                self.node.store.remove_node(&row.node_id).await?;
            }
        }
        Ok(pruned)
    }

    /// Heartbeats every second and prunes hourly, until dropped.
    pub async fn run(self: Arc<Self>) {
        let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing: u64 = 0;
        loop {
            tokio::select! {
                _ = beat.tick() => {
                    let outcome = tokio::time::timeout(HEARTBEAT_EVERY, self.beat()).await;
                    failing = log_beat(outcome, failing);
                }
                _ = prune.tick() => match self.prune().await {
                    Ok(n) if n > 0 => tracing::info!(rows = n, "pruned the invalidation feed"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not prune the invalidation feed; will retry"),
                },
            }
        }
    }

    /// Removes this node's row (clean shutdown), so `?wait=all` stops
    /// waiting for it at once.
    pub async fn leave(&self) {
        if let Err(e) = self.node.store.remove_node(self.node.id()).await {
            tracing::debug!(error = %e, "could not remove this node's row at shutdown");
        }
    }
}

/// Logs a heartbeat's outcome and returns the failure streak: the first
/// failure of a streak, then one a minute, and the recovery; a database
/// that is down for an hour should not write 3,600 warnings.
fn log_beat(outcome: Result<Result<(), Error>, tokio::time::error::Elapsed>, failing: u64) -> u64 {
    const WARN_EVERY: u64 = 60;
    let error = match outcome {
        Ok(Ok(())) => {
            if failing > 0 {
                tracing::info!(
                    failed_beats = failing,
                    "this node's heartbeat is written again"
                );
            }
            return 0;
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => "timed out".to_owned(),
    };
    if failing.is_multiple_of(WARN_EVERY) {
        tracing::warn!(%error, failed_beats = failing + 1, "could not write this node's heartbeat; will retry");
    }
    failing + 1
}
