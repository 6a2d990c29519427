//! The node's side of the invalidation feed: apply every committed change in
//! `seq` order, find gaps, catch up from the table, and confirm freshness.
//!
//! `Node` holds the applied position under one async lock, so the watcher's
//! loop and an on-demand confirmation (`Freshness::ensure` past S) never
//! apply the same entries twice or out of order. The rules:
//! - a notified `seq <= applied` is old news; `applied + 1` with its entry
//!   is applied at once; anything else (a gap, or a payload that carried
//!   only the seq) reads the rows `(applied, seq]` first;
//! - a confirmation takes `t0` *before* reading the head, catches up to
//!   it, then records `confirmed(t0)`: every commit before `t0` has a seq
//!   at most that head, so nothing committed before `t0` is missing;
//! - rows missing below the head (pruned after 24 h while this node was
//!   away) flush every cache instead.
//!
//! The loop that feeds `Node` from PostgreSQL's LISTEN is in `run.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use keygate_core::MillisClock;
use keygate_core::error::Error;
use keygate_core::feed::{ApplyChange, FeedEntry, FeedStore};
use keygate_core::freshness::{Confirm, Freshness};

use crate::acks::AckBoard;

/// Rows read per catch-up query.
const PAGE: u32 = 500;
const ACK_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// Called with each applied entry's lag in seconds (the histogram
/// `keygate_invalidation_lag_seconds`).
pub type LagSink = Arc<dyn Fn(f64) + Send + Sync>;

pub struct Node {
    id: String,
    pub(crate) store: Arc<dyn FeedStore>,
    target: Arc<dyn ApplyChange>,
    pub(crate) freshness: Arc<Freshness>,
    /// The wall clock, for lag (entries carry the database's wall time).
    pub(crate) wall: Arc<dyn MillisClock>,
    applied: tokio::sync::Mutex<i64>,
    /// The same position, readable without waiting for the lock.
    applied_seen: AtomicI64,
    /// The highest seq a notification named (for the half-open check).
    notified: AtomicI64,
    pub(crate) acks: AckBoard,
    lag: Option<LagSink>,
}

impl Node {
    pub fn new(
        id: String,
        store: Arc<dyn FeedStore>,
        target: Arc<dyn ApplyChange>,
        freshness: Arc<Freshness>,
        wall: Arc<dyn MillisClock>,
    ) -> Self {
        Self {
            id,
            store,
            target,
            freshness,
            wall,
            applied: tokio::sync::Mutex::new(0),
            applied_seen: AtomicI64::new(0),
            notified: AtomicI64::new(0),
            acks: AckBoard::default(),
            lag: None,
        }
    }

    pub fn with_lag_sink(mut self, sink: LagSink) -> Self {
        self.lag = Some(sink);
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn freshness(&self) -> &Arc<Freshness> {
        &self.freshness
    }

    /// The last seq this node applied.
    pub fn applied(&self) -> i64 {
        self.applied_seen.load(Ordering::Acquire)
    }

    pub(crate) fn max_notified(&self) -> i64 {
        self.notified.load(Ordering::Acquire)
    }

    /// First start: nothing cached yet, so the node starts at the head
    /// (call after the listener LISTENs, so nothing falls between).
    pub async fn start_at_head(&self) -> Result<(), Error> {
        let t0 = self.freshness.now();
        let head = self.store.feed_head().await?;
        let mut applied = self.applied.lock().await;
        if *applied < head {
            *applied = head;
            self.applied_seen.store(head, Ordering::Release);
        }
        drop(applied);
        self.freshness.confirmed(t0);
        Ok(())
    }

    /// A notification: `entry` is None when only the seq came.
    pub async fn offer(&self, seq: i64, entry: Option<FeedEntry>) -> Result<(), Error> {
        self.notified.fetch_max(seq, Ordering::AcqRel);
        let mut applied = self.applied.lock().await;
        let before = *applied;
        match entry {
            _ if seq <= *applied => return Ok(()),
            Some(entry) if seq == *applied + 1 => self.apply(&mut applied, &entry),
            _ => self.catch_up(&mut applied, seq).await?,
        }
        let now = *applied;
        drop(applied);
        self.acknowledge(before, now).await;
        Ok(())
    }

    /// Reads the head and applies everything up to it; then everything
    /// committed before the read is known to be applied. Returns the head
    /// and whether entries had to be read from the table.
    pub async fn sync_to_head(&self) -> Result<(i64, bool), Error> {
        let t0 = self.freshness.now();
        let head = self.store.feed_head().await?;
        let mut applied = self.applied.lock().await;
        let before = *applied;
        if head > *applied {
            self.catch_up(&mut applied, head).await?;
        }
        let now = *applied;
        drop(applied);
        self.freshness.confirmed(t0);
        self.acknowledge(before, now).await;
        Ok((head, now > before))
    }

    async fn catch_up(&self, applied: &mut i64, upto: i64) -> Result<(), Error> {
        while *applied < upto {
            let page = self.store.feed_entries(*applied, PAGE).await?;
            let Some(first) = page.first() else {
                // Rows up to `upto` are gone (pruned): what they said is lost.
                self.flush(applied, upto);
                return Ok(());
            };
            if first.seq > *applied + 1 {
                self.flush(applied, first.seq - 1);
            }
            for entry in &page {
                if entry.seq == *applied + 1 {
                    self.apply(applied, entry);
                }
            }
            if page.len() < PAGE as usize && *applied < upto {
                self.flush(applied, upto);
            }
        }
        Ok(())
    }

    fn flush(&self, applied: &mut i64, to: i64) {
        tracing::warn!(
            applied = *applied,
            to,
            "feed entries are missing (pruned while this node was behind): dropping every cache"
        );
        self.target.flush_all();
        *applied = to;
        self.applied_seen.store(to, Ordering::Release);
    }

    fn apply(&self, applied: &mut i64, entry: &FeedEntry) {
        self.target.apply(&entry.change);
        *applied = entry.seq;
        self.applied_seen.store(entry.seq, Ordering::Release);
        if let Some(sink) = &self.lag {
            let lag_ms = self.wall.now_millis() - entry.at_ms;
            #[allow(clippy::cast_precision_loss)]
            sink(lag_ms.max(0) as f64 / 1000.0);
        }
    }

    /// Tells `?wait=all` callers on every node how far this one got.
    async fn acknowledge(&self, before: i64, now: i64) {
        if now <= before {
            return;
        }
        self.acks.record(&self.id, now);
        // Best effort and bounded: the heartbeat carries the same position.
        let sent = tokio::time::timeout(ACK_TIMEOUT, self.store.notify_ack(&self.id, now)).await;
        if !matches!(sent, Ok(Ok(()))) {
            tracing::debug!("could not send the feed acknowledgement");
        }
    }
}

#[async_trait]
impl Confirm for Node {
    async fn confirm(&self) -> Result<(), Error> {
        self.sync_to_head().await.map(|_| ())
    }
}

/// Detects a listener that stopped delivering without saying so: a poll
/// that found the head ahead of what was applied suspects it; if by the
/// next poll no notification named that seq, the listener is recycled.
#[derive(Debug, Default)]
pub struct HalfOpen {
    suspect: Option<i64>,
}

impl HalfOpen {
    /// After a poll: `head` as read, `read_rows` whether the poll had to
    /// read entries no notification brought, `notified` the highest seq
    /// notified so far. `true`: recycle the listener.
    pub fn after_poll(&mut self, head: i64, read_rows: bool, notified: i64) -> bool {
        if let Some(seq) = self.suspect.take()
            && notified < seq
        {
            return true;
        }
        if read_rows && notified < head {
            self.suspect = Some(head);
        }
        false
    }
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
