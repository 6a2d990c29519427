//! `?wait=all`: after a write, wait until every live node has applied the
//! feed up to the head read after the commit, or until S has passed.
//!
//! A node's progress is known two ways: its acknowledgements (a NOTIFY on
//! `keygate_ack` each time it applies entries, gathered in `acks.rs` by
//! the watcher's listener) and its heartbeat row's `applied_seq`. Either one
//! reaching the head counts. A node that has not by S is listed as
//! unconfirmed; by the serving rule it no longer answers from its caches.

use std::time::Duration;

use keygate_core::error::Error;
use serde::Serialize;

use crate::watch::Node;

/// How often the heartbeat rows are read again while waiting.
const REREAD_EVERY: Duration = Duration::from_millis(100);

/// The answer's `propagation` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Propagation {
    /// The feed's head read after the write: the change is at or below it.
    pub seq: i64,
    pub live_nodes: usize,
    pub acked: usize,
    /// Live nodes that had not applied `seq` by the deadline.
    pub unconfirmed: Vec<String>,
    /// S: a node listed above stops using its caches by then.
    pub bound_ms: i64,
}

impl Node {
    /// Waits until every node whose heartbeat is younger than
    /// `live_timeout_ms` has applied the current head, or `bound_ms`.
    pub async fn wait_all(
        &self,
        live_timeout_ms: i64,
        bound_ms: i64,
    ) -> Result<Propagation, Error> {
        let head = self.store.feed_head().await?;
        let started = tokio::time::Instant::now();
        let deadline = started + Duration::from_millis(u64::try_from(bound_ms).unwrap_or(0));
        loop {
            // Registered before reading, so an ack between the read and
            // the wait still wakes it.
            let changed = self.acks.changed();
            let (live, pending) = self.pending(head, live_timeout_ms).await?;
            let now = tokio::time::Instant::now();
            if pending.is_empty() || now >= deadline {
                return Ok(Propagation {
                    seq: head,
                    live_nodes: live,
                    acked: live - pending.len(),
                    unconfirmed: pending,
                    bound_ms,
                });
            }
            let wake = (now + REREAD_EVERY).min(deadline);
            let _ = tokio::time::timeout_at(wake, changed).await;
        }
    }

    /// The live nodes, and those among them that have not reached `head`.
    async fn pending(
        &self,
        head: i64,
        live_timeout_ms: i64,
    ) -> Result<(usize, Vec<String>), Error> {
        let now_ms = self.wall.now_millis();
        let rows = self.store.nodes().await?;
        let mut live = 0;
        let mut pending = Vec::new();
        let mut self_listed = false;
        for row in rows {
            if now_ms - row.last_seen_ms > live_timeout_ms {
                continue;
            }
            live += 1;
            let reached = if row.node_id == self.id() {
                self_listed = true;
                self.applied()
            } else {
                row.applied_seq.max(self.acks.get(&row.node_id))
            };
            if reached < head {
                pending.push(row.node_id);
            }
        }
        // Before its first heartbeat this node is live all the same.
        if !self_listed {
            live += 1;
            if self.applied() < head {
                pending.push(self.id().to_owned());
            }
        }
        Ok((live, pending))
    }
}
