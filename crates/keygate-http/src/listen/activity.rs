//! A connection's requests in flight: the connection is idle once none is,
//! and a request body being read keeps it busy.

use std::sync::Arc;

use tokio::sync::watch;

/// Requests in flight on one connection, and how many it has seen.
#[derive(Clone, Copy, Default)]
pub struct Activity {
    pub active: usize,
    pub seen: u64,
}

/// One request in flight; the connection is idle once none is.
pub struct Busy(Arc<watch::Sender<Activity>>);

impl Busy {
    pub fn enter(activity: &Arc<watch::Sender<Activity>>) -> Self {
        activity.send_modify(|a| {
            a.active += 1;
            a.seen += 1;
        });
        Self(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0
            .send_modify(|a| a.active = a.active.saturating_sub(1));
    }
}
