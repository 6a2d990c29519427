//! `NonceStore` over the database: signed-request nonces in `hmac_nonces`
//! (a unique key per key and nonce, with an expiry), the per-key quota in
//! `hmac_nonce_counts`. One SQL path for both backends; on SQLite too, so a
//! restart forgets nothing.
//!
//! Recording is one write transaction: insert the nonce (a live duplicate
//! inserts nothing: a replay; an expired one not yet pruned is taken over),
//! sum the key's live count buckets, and bump one. Of two nodes racing on
//! one nonce the unique key lets exactly one insert. The quota is read
//! before the bump without a lock, so concurrent requests of one key can
//! pass it by as many as run at once: a bound on growth, not an exact cap.
//!
//! Durability: a committed write per signed request would wait for the
//! disk (an fsync on SQLite with `synchronous = FULL`, a WAL flush on
//! PostgreSQL): some 4 ms each on this VM, and SQLite writes one at a time.
//! A nonce need not outlive the machine: it must outlive keygate's process
//! and the database server's restart, which it does without the wait. So
//! the nonce write alone commits without waiting for the disk: SQLite runs
//! it at `synchronous = NORMAL` (WAL: durable across a process crash), and
//! PostgreSQL with `synchronous_commit = off` (durable across a clean
//! restart; a database server crash may lose its last ~0.6 s of commits).
//! The cost: after an operating-system crash or power loss, requests
//! recorded in the last moments before it could be replayed within their
//! window. Measured in `benches/nonces.rs`.

use async_trait::async_trait;
use keygate_core::Error;
use keygate_core::httpsig::NonceStore;
use keygate_core::httpsig::replay::{NonceUse, NonceVerdict, quota_bucket, quota_retry_after_ms};

use sqlx::any::Any;
use sqlx::pool::PoolConnection;
use sqlx::{Connection, Transaction};

use crate::rows::col;
use crate::{Backend, SqlStore, db};

/// SQLite's durability for the nonce write, and the pool's for the rest
/// (`SQLITE_PRAGMAS`).
const RELAXED: &str = "PRAGMA synchronous = NORMAL";
const DURABLE: &str = "PRAGMA synchronous = FULL";

/// Count rows per key and bucket: concurrent requests of one key update
/// different rows (picked by the nonce) rather than queueing on one.
const SLOTS: u32 = 4;

fn slot_of(nonce: &str) -> i64 {
    let h = nonce
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    i64::from(h % SLOTS)
}

/// Inserts the nonce, checks the quota and counts the nonce, in `tx`;
/// commits only a fresh nonce.
async fn record_in(mut tx: Transaction<'_, Any>, n: &NonceUse<'_>) -> Result<NonceVerdict, Error> {
    let inserted = sqlx::query(
        "INSERT INTO hmac_nonces (key_id, nonce, expires_at_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (key_id, nonce) DO UPDATE SET expires_at_ms = excluded.expires_at_ms \
         WHERE hmac_nonces.expires_at_ms <= $4",
    )
    .bind(n.key_id)
    .bind(n.nonce)
    .bind(n.expires_at_ms)
    .bind(n.now_ms)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if inserted.rows_affected() == 0 {
        // Dropping the transaction rolls it back.
        return Ok(NonceVerdict::Replayed);
    }
    let live_from = quota_bucket(n.now_ms);
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(used), 0) AS BIGINT) AS used, MIN(bucket) AS first \
         FROM hmac_nonce_counts WHERE key_id = $1 AND bucket >= $2",
    )
    .bind(n.key_id)
    .bind(live_from)
    .fetch_one(&mut *tx)
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
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(NonceVerdict::Fresh)
}

/// A pooled SQLite connection set to `synchronous = NORMAL` for the nonce
/// write. It goes back to the pool only once set back to FULL; dropped
/// before that (a cancelled request, a failed reset) it is closed instead,
/// so no other write ever runs at the weaker setting.
struct Relaxed(Option<PoolConnection<Any>>);

impl Relaxed {
    async fn record(&mut self, n: &NonceUse<'_>) -> Result<NonceVerdict, Error> {
        let Some(conn) = self.0.as_mut() else {
            return Err(Error::Internal("the nonce connection is gone".into()));
        };
        sqlx::raw_sql(RELAXED)
            .execute(&mut **conn)
            .await
            .map_err(db)?;
        let tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        record_in(tx, n).await
    }

    async fn restore(mut self) {
        if let Some(conn) = self.0.as_mut() {
            match sqlx::raw_sql(DURABLE).execute(&mut **conn).await {
                // Dropping the pooled connection returns it to the pool.
                Ok(_) => drop(self.0.take()),
                Err(e) => tracing::warn!(error = %e, "closing a nonce connection left relaxed"),
            }
        }
    }
}

impl Drop for Relaxed {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(conn.detach());
        }
    }
}

#[async_trait]
impl NonceStore for SqlStore {
    async fn record(&self, n: &NonceUse<'_>) -> Result<NonceVerdict, Error> {
        match self.backend {
            Backend::Postgres => {
                // One round trip for both: the simple-query protocol runs
                // the two statements in order.
                let tx = self
                    .pool
                    .begin_with("BEGIN; SET LOCAL synchronous_commit = off")
                    .await
                    .map_err(db)?;
                record_in(tx, n).await
            }
            Backend::Sqlite => {
                let conn = self.pool.acquire().await.map_err(db)?;
                let mut relaxed = Relaxed(Some(conn));
                let recorded = relaxed.record(n).await;
                relaxed.restore().await;
                recorded
            }
        }
    }

    async fn prune(&self, now_ms: i64) -> Result<u64, Error> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{ConnectOptions, connect};

    #[tokio::test]
    async fn nonce_writes_leave_every_connection_durable() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("n.db").display());
        let store = connect(&url, ConnectOptions::default()).await.unwrap();
        // Fresh, replayed (rolled back) and over quota (rolled back).
        let mut seen = Vec::new();
        for i in 0..8 {
            let nonce = format!("n{}", i % 6);
            let n = NonceUse {
                key_id: "key_a",
                nonce: &nonce,
                expires_at_ms: 2_000,
                created_ms: 1_000,
                now_ms: 1_000,
                per_key_limit: 5,
            };
            seen.push(store.record(&n).await.unwrap());
        }
        assert_eq!(seen[..5], [NonceVerdict::Fresh; 5]);
        assert!(matches!(seen[5], NonceVerdict::OverQuota { .. }));
        assert_eq!(seen[6..], [NonceVerdict::Replayed; 2]);
        let rows = sqlx::query("SELECT COUNT(*) AS n FROM hmac_nonces")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(col::<i64>(&rows, "n").unwrap(), 5);
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(store.pool.acquire().await.unwrap());
        }
        for conn in &mut held {
            let row = sqlx::query("PRAGMA synchronous")
                .fetch_one(&mut **conn)
                .await
                .unwrap();
            assert_eq!(col::<i64>(&row, "synchronous").unwrap(), 2, "FULL");
        }
        drop(held);
        store.close().await;
    }
}
