//! The acknowledgements heard from other nodes: each node NOTIFYs
//! `keygate_ack` when it applies feed entries, the watcher's listener
//! records them here, and `?wait=all` (in `wait.rs`) waits on them.

use std::collections::HashMap;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// The highest seq each node has acknowledged, as heard on this node.
#[derive(Default)]
pub struct AckBoard {
    acked: Mutex<HashMap<String, i64>>,
    changed: Notify,
}

impl AckBoard {
    pub fn record(&self, node_id: &str, seq: i64) {
        {
            let mut acked = self.acked.lock();
            let at = acked.entry(node_id.to_owned()).or_insert(0);
            *at = (*at).max(seq);
        }
        self.changed.notify_waiters();
    }

    pub fn get(&self, node_id: &str) -> i64 {
        self.acked.lock().get(node_id).copied().unwrap_or(0)
    }

    /// Forgets nodes that left.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.acked.lock().retain(|id, _| keep(id));
    }

    /// Resolves at the next `record`; create it before reading, so a
    /// record between the read and the wait still wakes the waiter.
    pub fn changed(&self) -> Notified<'_> {
        self.changed.notified()
    }
}
