//! The `jti` blocklist's SQL, for `SessionStore`. Inserts are idempotent;
//! readers follow the sequence number, plus a look-back by insertion time
//! for rows that committed out of sequence order.

use keygate_core::Error;
use keygate_core::model::AuditEntry;
use keygate_core::sessions::model::BlockedJti;

use crate::rows::col;
use crate::{SqlStore, audit, db, feed};
use keygate_core::feed::Change;

pub(crate) async fn insert(
    store: &SqlStore,
    entry: &BlockedJti,
    audit: &AuditEntry,
) -> Result<bool, Error> {
    let mut tx = store.begin_write().await?;
    let done = sqlx::query(
        "INSERT INTO revoked_jtis (jti, expires_at, added_at_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (jti) DO NOTHING",
    )
    .bind(entry.jti.as_str())
    .bind(entry.expires_at)
    .bind(entry.added_at_ms)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    audit::insert(&mut tx, audit).await?;
    let blocked = Change::JtiBlocked {
        jti: entry.jti.clone(),
        exp: entry.expires_at,
    };
    feed::append(&mut tx, store.backend, blocked).await?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

pub(crate) async fn since(
    store: &SqlStore,
    after_seq: i64,
    added_since_ms: i64,
    live_after: i64,
    limit: u32,
) -> Result<Vec<BlockedJti>, Error> {
    let found = sqlx::query(
        "SELECT seq, jti, expires_at, added_at_ms FROM revoked_jtis \
         WHERE (seq > $1 OR added_at_ms >= $2) AND expires_at > $3 \
         ORDER BY seq LIMIT $4",
    )
    .bind(after_seq)
    .bind(added_since_ms)
    .bind(live_after)
    .bind(i64::from(limit))
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    found
        .iter()
        .map(|row| {
            Ok(BlockedJti {
                seq: col(row, "seq")?,
                jti: col(row, "jti")?,
                expires_at: col(row, "expires_at")?,
                added_at_ms: col(row, "added_at_ms")?,
            })
        })
        .collect()
}

pub(crate) async fn purge(
    store: &SqlStore,
    expired_before: i64,
    audit: &AuditEntry,
) -> Result<u64, Error> {
    let mut tx = store.begin_write().await?;
    let done = sqlx::query("DELETE FROM revoked_jtis WHERE expires_at < $1")
        .bind(expired_before)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    // An hourly sweep that found nothing leaves no trace.
    if done.rows_affected() > 0 {
        audit::insert(&mut tx, audit).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(done.rows_affected())
}
