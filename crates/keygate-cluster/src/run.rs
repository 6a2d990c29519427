//! The watcher's loop: LISTEN, then start at (or catch up to) the head;
//! apply notifications as they come; every 250 ms read the head, catch up
//! and confirm; rebuild the listener with back-off when it fails or goes
//! quiet while the head moves.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use keygate_core::error::Error;
use keygate_store::{FeedListener, Notice, SqlStore};

use crate::watch::{HalfOpen, Node};

/// How often the head is polled: the catch-up bound after a lost
/// notification, and how often freshness is confirmed while idle.
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// A poll that takes longer is abandoned (the database may be black-holed;
/// the pool would wait 10 s for a connection) and tried at the next tick.
/// Catching up is cancel-safe: each entry is applied whole, in order.
const POLL_TIMEOUT: Duration = Duration::from_secs(1);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A stream of notices: PostgreSQL's LISTEN, or a channel in tests.
/// `Ok(None)`: notices may have been lost (catch up); `Err`: rebuild.
#[async_trait]
pub trait NoticeSource: Send {
    async fn next(&mut self) -> Result<Option<Notice>, Error>;
}

/// Builds a listener that is LISTENing when it is returned.
#[async_trait]
pub trait Listen: Send + Sync {
    async fn listen(&self) -> Result<Box<dyn NoticeSource>, Error>;
}

#[async_trait]
impl NoticeSource for FeedListener {
    async fn next(&mut self) -> Result<Option<Notice>, Error> {
        FeedListener::next(self).await
    }
}

/// PostgreSQL's LISTEN through the store.
pub struct PgListen(pub SqlStore);

#[async_trait]
impl Listen for PgListen {
    async fn listen(&self) -> Result<Box<dyn NoticeSource>, Error> {
        match self.0.feed_listener().await? {
            Some(l) => Ok(Box::new(l)),
            None => Err(Error::Internal(
                "the invalidation feed needs PostgreSQL".into(),
            )),
        }
    }
}

/// Why the inner loop stopped.
enum Exit {
    Broken,
    HalfOpen,
}

impl Node {
    /// LISTENs, then starts at the head (nothing is cached yet); hand the
    /// listener to `watch`. Fails when the database cannot be reached.
    pub async fn start(&self, listen: &dyn Listen) -> Result<Box<dyn NoticeSource>, Error> {
        self.connect(listen, false).await
    }

    /// Runs until dropped, from the listener `start` returned (or, with
    /// None, starting now). After a rebuild it catches up from where it was.
    pub async fn watch(
        self: Arc<Self>,
        listen: Arc<dyn Listen>,
        mut first: Option<Box<dyn NoticeSource>>,
    ) {
        let mut started = first.is_some();
        let mut backoff = BACKOFF_FIRST;
        loop {
            let source = match first.take() {
                Some(source) => Ok(source),
                None => self.connect(listen.as_ref(), started).await,
            };
            match source {
                Ok(source) => {
                    started = true;
                    backoff = BACKOFF_FIRST;
                    if let Exit::HalfOpen = self.serve(source).await {
                        tracing::warn!(
                            "the feed listener went quiet while the head moved; reconnecting"
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen to the invalidation feed; will retry");
                }
            }
            // Between listeners, polling still confirms whenever the
            // database answers, so requests need not confirm on demand.
            self.poll_for(backoff, started).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn poll_once(&self) -> Result<(i64, bool), Error> {
        tokio::time::timeout(POLL_TIMEOUT, self.sync_to_head())
            .await
            .map_err(|_| Error::Storage("the feed poll timed out".into()))?
    }

    async fn poll_for(&self, wait: Duration, started: bool) {
        let until = tokio::time::Instant::now() + wait;
        loop {
            if started && let Err(e) = self.poll_once().await {
                tracing::debug!(error = %e, "feed catch-up failed");
            }
            let next = tokio::time::Instant::now() + POLL_EVERY;
            if next >= until {
                tokio::time::sleep_until(until).await;
                return;
            }
            tokio::time::sleep_until(next).await;
        }
    }

    async fn connect(
        &self,
        listen: &dyn Listen,
        started: bool,
    ) -> Result<Box<dyn NoticeSource>, Error> {
        let source = listen.listen().await?;
        if started {
            self.sync_to_head().await?;
        } else {
            self.start_at_head().await?;
        }
        Ok(source)
    }

    async fn serve(&self, mut source: Box<dyn NoticeSource>) -> Exit {
        let mut poll = tokio::time::interval(POLL_EVERY);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut half_open = HalfOpen::default();
        loop {
            tokio::select! {
                notice = source.next() => match notice {
                    Ok(Some(notice)) => self.on_notice(notice).await,
                    Ok(None) => {
                        // The session dropped and came back: anything may be missing.
                        if let Err(e) = self.sync_to_head().await {
                            tracing::warn!(error = %e, "feed catch-up after a reconnect failed");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the feed listener failed; rebuilding it");
                        return Exit::Broken;
                    }
                },
                _ = poll.tick() => match self.poll_once().await {
                    Ok((head, read_rows)) => {
                        if half_open.after_poll(head, read_rows, self.max_notified()) {
                            return Exit::HalfOpen;
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "feed poll failed"),
                },
            }
        }
    }

    async fn on_notice(&self, notice: Notice) {
        match notice {
            Notice::Invalidation { seq, entry } => {
                if let Err(e) = self.offer(seq, entry).await {
                    tracing::warn!(error = %e, seq, "could not apply a feed entry; the next poll retries");
                }
            }
            Notice::Ack { node_id, seq } => self.acks.record(&node_id, seq),
        }
    }
}
