//! `NonceStore` over the database: signed-request nonces in `hmac_nonces`,
//! with their expiry, on SQLite too, so a restart forgets nothing.
//!
//! PostgreSQL, which several nodes share: recording a nonce inserts it (a
//! live duplicate inserts nothing: a replay; an expired one not yet pruned
//! is taken over), sums the key's live count buckets, and bumps one, in one
//! transaction per record. Of two nodes racing on one nonce the unique key
//! lets exactly one insert. The quota is read before the bump without a
//! lock, so concurrent requests of one key can pass it by as many as run
//! at once: a bound on growth, not an exact cap.
//!
//! SQLite, one node: the live nonces are kept in memory and the table is
//! an append-only log that makes them outlive the process (`log`).
//! Records queue (`batch`): one writer task takes whatever is queued when
//! it is free (up to `BATCH`, no timer: an idle store adds no wait),
//! decides the verdicts in batch order (a duplicate within a batch is a
//! replay of the first; the quota counted exactly) and appends the fresh
//! nonces in ONE statement. Every caller hears its verdict only once the
//! append committed; if it fails, nothing of the batch is kept and every
//! caller in it gets the error.
//!
//! Durability: a committed write per signed request would wait for the
//! disk (an fsync on SQLite with `synchronous = FULL`, a WAL flush on
//! PostgreSQL): some 4 ms each on this VM. A nonce need not outlive the
//! machine: it must outlive keygate's process and the database server's
//! restart, which it does without the wait. So the nonce write alone
//! commits without waiting for the disk: SQLite runs it at `synchronous =
//! NORMAL` (WAL: durable across a process crash) on a connection of its
//! own, never returned to the pool, and PostgreSQL with
//! `synchronous_commit = off` (durable across a clean restart; a database
//! server crash may lose its last ~0.6 s of commits). The cost: after an
//! operating-system crash or power loss, requests recorded in the last
//! moments before it could be replayed within their window. Measured in
//! `benches/nonces.rs`.

mod batch;
mod log;
#[cfg(test)]
mod tests;

pub(crate) use batch::NonceQueue;

use async_trait::async_trait;
use keygate_core::Error;
use keygate_core::httpsig::NonceStore;
use keygate_core::httpsig::replay::{NonceUse, NonceVerdict, quota_bucket, quota_retry_after_ms};
use sqlx::AnyConnection;

use crate::rows::col;
use crate::{Backend, SqlStore, db};

/// Count rows per key and bucket: concurrent requests of one key update
/// different rows (picked by the nonce) rather than queueing on one.
const SLOTS: u32 = 4;

fn slot_of(nonce: &str) -> i64 {
    let h = nonce
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    i64::from(h % SLOTS)
}

/// PostgreSQL's record: inserts the nonce, checks the quota and counts the
/// nonce, in the transaction open on `conn`. Only a Fresh verdict leaves
/// anything to keep: the caller rolls back the rest.
async fn record_in(conn: &mut AnyConnection, n: &NonceUse<'_>) -> Result<NonceVerdict, Error> {
    let inserted = sqlx::query(
        "INSERT INTO hmac_nonces (key_id, nonce, expires_at_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (key_id, nonce) DO UPDATE SET expires_at_ms = excluded.expires_at_ms \
         WHERE hmac_nonces.expires_at_ms <= $4",
    )
    .bind(n.key_id)
    .bind(n.nonce)
    .bind(n.expires_at_ms)
    .bind(n.now_ms)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if inserted.rows_affected() == 0 {
        return Ok(NonceVerdict::Replayed);
    }
    let live_from = quota_bucket(n.now_ms);
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(used), 0) AS BIGINT) AS used, MIN(bucket) AS first \
         FROM hmac_nonce_counts WHERE key_id = $1 AND bucket >= $2",
    )
    .bind(n.key_id)
    .bind(live_from)
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    let used: i64 = col(&row, "used")?;
    if used >= i64::from(n.per_key_limit) {
        let first: Option<i64> = col(&row, "first")?;
        return Ok(NonceVerdict::OverQuota {
            retry_after_ms: quota_retry_after_ms(first.unwrap_or(live_from), n.now_ms),
        });
    }
    sqlx::query(
        "INSERT INTO hmac_nonce_counts (key_id, bucket, slot, used) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (key_id, bucket, slot) DO UPDATE SET used = hmac_nonce_counts.used + 1",
    )
    .bind(n.key_id)
    .bind(quota_bucket(n.expires_at_ms))
    .bind(slot_of(n.nonce))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(NonceVerdict::Fresh)
}

impl SqlStore {
    /// Records one nonce in a write of its own, past the queue: the path
    /// before group commit (and PostgreSQL's), kept callable so
    /// `benches/nonces.rs` can compare the two in one run.
    pub async fn record_nonce_alone(&self, n: &NonceUse<'_>) -> Result<NonceVerdict, Error> {
        match self.backend {
            Backend::Postgres => {
                // One round trip for both: the simple-query protocol runs
                // the two statements in order.
                let mut tx = self
                    .pool
                    .begin_with("BEGIN; SET LOCAL synchronous_commit = off")
                    .await
                    .map_err(db)?;
                let verdict = record_in(&mut tx, n).await?;
                // Dropping the transaction rolls back what is not Fresh.
                if verdict == NonceVerdict::Fresh {
                    tx.commit().await.map_err(db)?;
                }
                Ok(verdict)
            }
            Backend::Sqlite => self.nonces.record_alone(&self.pool, n).await,
        }
    }
}

#[async_trait]
impl NonceStore for SqlStore {
    async fn record(&self, n: &NonceUse<'_>) -> Result<NonceVerdict, Error> {
        match self.backend {
            Backend::Postgres => self.record_nonce_alone(n).await,
            Backend::Sqlite => self.nonces.record(&self.pool, n).await,
        }
    }

    async fn prune(&self, now_ms: i64) -> Result<u64, Error> {
        if self.backend == Backend::Sqlite {
            self.nonces.prune(now_ms);
        }
        let mut tx = self.begin_write().await?;
        let gone = sqlx::query("DELETE FROM hmac_nonces WHERE expires_at_ms <= $1")
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("DELETE FROM hmac_nonce_counts WHERE bucket < $1")
            .bind(quota_bucket(now_ms))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(gone.rows_affected())
    }
}
