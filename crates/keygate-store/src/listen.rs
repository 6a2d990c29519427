//! `FeedListener`: a PostgreSQL session LISTENing on the feed's channels,
//! read through a cancel-safe `next`.
//!
//! sqlx's `PgListener::try_recv` reconnects inside the call and only then
//! answers `Ok(None)` ("notifications may have been lost"). A caller that
//! races it against a timer in `select!` (the node's watcher polls the
//! head every 250 ms) can cancel it mid-reconnect, and the `Ok(None)` is
//! never seen. So the listener runs in a task of its own that forwards
//! what it hears, in order, through a channel; `next` only reads the
//! channel, which is cancel-safe. Dropping the `FeedListener` stops the task.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use keygate_core::Error;
use keygate_core::feed::{self, CHANNEL_ACK, CHANNEL_INVALIDATION, FeedEntry, Payload};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::db;

/// How long the listener waits to (re)connect before it fails. sqlx's own
/// `PgListener::connect` waits up to 30 s, also inside `try_recv`'s
/// reconnect; a short wait lets the node rebuild on its own schedule.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// The listener's session names itself, so operators (and the fault tests
/// that kill it) find it in `pg_stat_activity` whatever it last ran.
pub const LISTENER_APPLICATION_NAME: &str = "keygate-feed-listener";

/// Notices held for a slow reader; past that the task waits, and
/// PostgreSQL queues the rest.
const QUEUE: usize = 1024;

/// What a [`FeedListener`] hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A committed entry; `entry` is `None` when the payload carried only
    /// the seq (read the row).
    Invalidation { seq: i64, entry: Option<FeedEntry> },
    /// A node has applied the feed up to `seq`.
    Ack { node_id: String, seq: i64 },
}

type Heard = Result<Option<Notice>, Error>;

/// A dedicated PostgreSQL session LISTENing on the feed's channels.
pub struct FeedListener {
    heard: mpsc::Receiver<Heard>,
    pid: Arc<AtomicI32>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for FeedListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedListener")
            .field("pid", &self.pid.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Drop for FeedListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pid_of(inner: &mut PgListener) -> Result<i32, Error> {
    sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()")
        .fetch_one(inner)
        .await
        .map_err(db)
}

impl FeedListener {
    /// Connects and LISTENs on both channels before returning.
    pub(crate) async fn connect(url: &str) -> Result<Self, Error> {
        let opts: PgConnectOptions = url.parse().map_err(db)?;
        let opts = opts.application_name(LISTENER_APPLICATION_NAME);
        // A pool of one, used only for the listener's reconnects.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(opts);
        let mut inner = PgListener::connect_with(&pool).await.map_err(db)?;
        inner.ignore_pool_close_event(true);
        inner
            .listen_all([CHANNEL_INVALIDATION, CHANNEL_ACK])
            .await
            .map_err(db)?;
        let pid = Arc::new(AtomicI32::new(pid_of(&mut inner).await?));
        let (tx, heard) = mpsc::channel(QUEUE);
        let task = tokio::spawn(pump(inner, tx, Arc::clone(&pid)));
        Ok(Self { heard, pid, task })
    }

    /// The next notice; cancel-safe. `Ok(None)`: the session was lost and
    /// has been re-opened, LISTENing again, so notifications may be
    /// missing: catch up from the table. `Err`: the listener is finished:
    /// catch up and build a new one. Payloads that do not parse are
    /// skipped (a bad seq) or handed on without their entry (a bad body);
    /// the head poll covers both.
    pub async fn next(&mut self) -> Result<Option<Notice>, Error> {
        match self.heard.recv().await {
            Some(heard) => heard,
            None => Err(Error::Storage("the feed listener has stopped".into())),
        }
    }

    /// The listening session's backend process id (for fault tests that
    /// `pg_terminate_backend` it); updated before a loss is reported.
    pub async fn backend_pid(&mut self) -> Result<i32, Error> {
        Ok(self.pid.load(Ordering::Acquire))
    }
}

/// Forwards what the session hears until it fails or nobody reads.
async fn pump(mut inner: PgListener, tx: mpsc::Sender<Heard>, pid: Arc<AtomicI32>) {
    loop {
        let heard = match inner.try_recv().await {
            Ok(Some(n)) => match parse_notice(n.channel(), n.payload()) {
                Some(notice) => Ok(Some(notice)),
                None => continue,
            },
            // try_recv has reconnected and LISTENs again.
            Ok(None) => match pid_of(&mut inner).await {
                Ok(now) => {
                    pid.store(now, Ordering::Release);
                    Ok(None)
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(db(e)),
        };
        let last = heard.is_err();
        if tx.send(heard).await.is_err() || last {
            return;
        }
    }
}

fn parse_notice(channel: &str, payload: &str) -> Option<Notice> {
    match channel {
        CHANNEL_INVALIDATION => match Payload::parse(payload) {
            Ok(Payload::Entry(e)) => Some(Notice::Invalidation {
                seq: e.seq,
                entry: Some(e),
            }),
            Ok(Payload::SeqOnly(seq)) => Some(Notice::Invalidation { seq, entry: None }),
            Err(e) => {
                let seq = payload.split('|').next().and_then(|s| s.parse().ok());
                tracing::warn!(error = %e, has_seq = seq.is_some(), "unreadable feed notification");
                seq.map(|seq| Notice::Invalidation { seq, entry: None })
            }
        },
        CHANNEL_ACK => match feed::parse_ack(payload) {
            Ok((node_id, seq)) => Some(Notice::Ack { node_id, seq }),
            Err(e) => {
                tracing::warn!(error = %e, "unreadable ack notification");
                None
            }
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{Notice, parse_notice};

    #[test]
    fn notices_parse_and_bad_ones_are_skipped_or_reduced_to_their_seq() {
        assert_eq!(
            parse_notice("keygate_inval", "7"),
            Some(Notice::Invalidation {
                seq: 7,
                entry: None
            })
        );
        assert_eq!(
            parse_notice("keygate_inval", "8|1|no.such.kind||"),
            Some(Notice::Invalidation {
                seq: 8,
                entry: None
            })
        );
        assert_eq!(parse_notice("keygate_inval", "x|1|a|b|c"), None);
        assert_eq!(
            parse_notice("keygate_ack", "node|a|9"),
            Some(Notice::Ack {
                node_id: "node|a".into(),
                seq: 9
            })
        );
        assert_eq!(parse_notice("keygate_ack", "node"), None);
        assert_eq!(parse_notice("other", "1"), None);
    }
}
