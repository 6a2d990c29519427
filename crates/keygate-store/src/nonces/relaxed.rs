//! SQLite's nonce write: one write transaction at `synchronous = NORMAL`
//! for a batch of nonces (recorded as sets: `set`), on a pooled connection
//! that never goes back to the pool relaxed.

use keygate_core::Error;
use keygate_core::httpsig::replay::{NonceUse, NonceVerdict};
use sqlx::Connection;
use sqlx::any::Any;
use sqlx::pool::PoolConnection;

use super::record_in;
use super::set::record_set;
use crate::db;

/// SQLite's durability for the nonce write, and the pool's for the rest
/// (`SQLITE_PRAGMAS`).
const RELAXED: &str = "PRAGMA synchronous = NORMAL";
const DURABLE: &str = "PRAGMA synchronous = FULL";

/// Records `ns` in their order in one write transaction on `conn`; their
/// verdicts once it committed, or the error of whatever failed (then
/// nothing of the batch is kept).
pub(super) async fn record_batch(
    conn: PoolConnection<Any>,
    ns: &[NonceUse<'_>],
) -> Result<Vec<NonceVerdict>, Error> {
    let mut relaxed = Relaxed(Some(conn));
    let recorded = relaxed.record(ns).await;
    relaxed.restore().await;
    recorded
}

/// A pooled SQLite connection set to `synchronous = NORMAL` for the nonce
/// write. It goes back to the pool only once set back to FULL; dropped
/// before that (a failed reset, a panic) it is closed instead, so no other
/// write ever runs at the weaker setting.
struct Relaxed(Option<PoolConnection<Any>>);

impl Relaxed {
    async fn record(&mut self, ns: &[NonceUse<'_>]) -> Result<Vec<NonceVerdict>, Error> {
        let Some(conn) = self.0.as_mut() else {
            return Err(Error::Internal("the nonce connection is gone".into()));
        };
        sqlx::raw_sql(RELAXED)
            .execute(&mut **conn)
            .await
            .map_err(db)?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let verdicts = match ns {
            // Alone, the transaction is the savepoint: what is not Fresh
            // is rolled back by dropping it, as before batching.
            [n] => {
                let verdict = record_in(&mut tx, n).await?;
                if verdict != NonceVerdict::Fresh {
                    return Ok(vec![verdict]);
                }
                vec![verdict]
            }
            _ => record_set(&mut tx, ns).await?,
        };
        tx.commit().await.map_err(db)?;
        Ok(verdicts)
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
