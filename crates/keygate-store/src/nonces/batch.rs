//! Group commit for SQLite's nonces: concurrent records queue, and one
//! writer task records whatever is queued when it is free as one batch
//! (`log`: verdicts in memory, one append).

use std::sync::{Arc, Mutex, PoisonError};

use keygate_core::Error;
use keygate_core::httpsig::replay::{NonceUse, NonceVerdict};
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::log::Log;

/// Most nonces in one append: a bound on how long the write lock is held
/// and on what one failure takes down with it.
pub(super) const BATCH: usize = 256;
/// Most records waiting for the writer; more wait to queue.
const QUEUE: usize = 4 * BATCH;

/// The way to the store's nonce writer, started on first use (and again if
/// its runtime went away). Queueing and awaiting the verdict need no
/// runtime of the writer's, so a gateway worker records from its own
/// thread: no task at home per record.
#[derive(Default)]
pub(crate) struct NonceQueue {
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    pub(super) log: Arc<Log>,
}

impl std::fmt::Debug for NonceQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceQueue(..)")
    }
}

/// A `NonceUse` that outlives its request's borrow while it waits.
struct Owned {
    key_id: String,
    nonce: String,
    expires_at_ms: i64,
    created_ms: i64,
    now_ms: i64,
    per_key_limit: u32,
}

impl Owned {
    fn of(n: &NonceUse<'_>) -> Self {
        Self {
            key_id: n.key_id.to_owned(),
            nonce: n.nonce.to_owned(),
            expires_at_ms: n.expires_at_ms,
            created_ms: n.created_ms,
            now_ms: n.now_ms,
            per_key_limit: n.per_key_limit,
        }
    }

    fn as_use(&self) -> NonceUse<'_> {
        NonceUse {
            key_id: &self.key_id,
            nonce: &self.nonce,
            expires_at_ms: self.expires_at_ms,
            created_ms: self.created_ms,
            now_ms: self.now_ms,
            per_key_limit: self.per_key_limit,
        }
    }
}

/// One queued record and where its verdict goes.
pub(super) struct Job {
    n: Owned,
    reply: oneshot::Sender<Result<NonceVerdict, Error>>,
}

impl Job {
    pub(super) fn new(n: &NonceUse<'_>) -> (Self, oneshot::Receiver<Result<NonceVerdict, Error>>) {
        let (reply, answer) = oneshot::channel();
        let n = Owned::of(n);
        (Self { n, reply }, answer)
    }
}

fn writer_gone() -> Error {
    Error::Storage("the nonce writer stopped before answering".into())
}

impl NonceQueue {
    /// Queues `n` and waits for its batch to commit.
    pub(super) async fn record(
        &self,
        pool: &AnyPool,
        n: &NonceUse<'_>,
    ) -> Result<NonceVerdict, Error> {
        let (job, answer) = Job::new(n);
        let writer = self.writer(pool);
        writer.send(job).await.map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    /// Records `n` as a batch of its own, past the queue.
    pub(super) async fn record_alone(
        &self,
        pool: &AnyPool,
        n: &NonceUse<'_>,
    ) -> Result<NonceVerdict, Error> {
        let (job, answer) = Job::new(n);
        serve(pool, &self.log, vec![job]).await;
        answer.await.map_err(|_| writer_gone())?
    }

    /// Forgets, in memory, what expired by `now_ms`.
    pub(super) fn prune(&self, now_ms: i64) {
        self.log.prune(now_ms);
    }

    fn writer(&self, pool: &AnyPool) -> mpsc::Sender<Job> {
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        match &*writer {
            Some(tx) if !tx.is_closed() => tx.clone(),
            _ => {
                let (tx, rx) = mpsc::channel(QUEUE);
                // At home: a caller on a gateway worker queues from there,
                // but the writer outlives any one worker.
                drop(keygate_core::home::spawn(write_loop(
                    pool.clone(),
                    self.log.clone(),
                    rx,
                )));
                *writer = Some(tx.clone());
                tx
            }
        }
    }
}

/// Takes whatever is queued (at least one, at most `BATCH`) as soon as the
/// last batch is answered: no timer, so an idle store adds no wait. Ends
/// with the last `SqlStore` clone.
async fn write_loop(pool: AnyPool, log: Arc<Log>, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut jobs, BATCH).await > 0 {
        serve(&pool, &log, std::mem::take(&mut jobs)).await;
    }
}

/// Records one batch and answers each caller, all only after the append.
pub(super) async fn serve(pool: &AnyPool, log: &Log, mut jobs: Vec<Job>) {
    // A caller that went away waits for nothing; its request was not
    // served, so its nonce need not be spent.
    jobs.retain(|j| !j.reply.is_closed());
    if jobs.is_empty() {
        return;
    }
    let ns: Vec<NonceUse<'_>> = jobs.iter().map(|j| j.n.as_use()).collect();
    let recorded = log.record(pool, &ns).await;
    drop(ns);
    match recorded {
        Ok(verdicts) => {
            for (job, verdict) in jobs.into_iter().zip(verdicts) {
                // The caller may have gone meanwhile: nobody to tell.
                let _gone = job.reply.send(verdict);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, batch = jobs.len(), "recording a batch of nonces failed");
            for job in jobs {
                let _gone = job.reply.send(Err(each(&e)));
            }
        }
    }
}

/// The batch's error for each of its callers (`Error` is not `Clone`).
fn each(e: &Error) -> Error {
    match e {
        Error::Storage(m) => Error::Storage(m.clone()),
        other => Error::Storage(other.to_string()),
    }
}
