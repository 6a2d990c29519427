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
//! Cost: a committed write per signed request (one fsync on SQLite with
//! `synchronous = FULL`, one WAL flush on PostgreSQL); measured in
//! `benches/nonces.rs`.

use async_trait::async_trait;
use keygate_core::Error;
use keygate_core::httpsig::NonceStore;
use keygate_core::httpsig::replay::{NonceUse, NonceVerdict, quota_bucket, quota_retry_after_ms};

use crate::rows::col;
use crate::{SqlStore, db};

/// Count rows per key and bucket: concurrent requests of one key update
/// different rows (picked by the nonce) rather than queueing on one.
const SLOTS: u32 = 4;

fn slot_of(nonce: &str) -> i64 {
    let h = nonce
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    i64::from(h % SLOTS)
}

#[async_trait]
impl NonceStore for SqlStore {
    async fn record(&self, n: &NonceUse<'_>) -> Result<NonceVerdict, Error> {
        let mut tx = self.begin_write().await?;
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
