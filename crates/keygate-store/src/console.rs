//! `ConsoleStore`: the dashboard's sessions, found by their token's hash.

use async_trait::async_trait;
use keygate_core::Error;
use keygate_core::keys::pepper::KeyHash;
use keygate_core::model::AuditEntry;
use keygate_core::store::{ConsoleSessionRecord, ConsoleStore};

use crate::rows::{col, hash, key_id};
use crate::{SqlStore, audit, db};

#[async_trait]
impl ConsoleStore for SqlStore {
    async fn insert_console_session(
        &self,
        session: &ConsoleSessionRecord,
        audit: &AuditEntry,
    ) -> Result<(), Error> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO console_sessions \
             (token_hash, key_id, secret_hash, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(session.token_hash.to_vec())
        .bind(session.key_id.as_str())
        .bind(session.secret_hash.to_vec())
        .bind(session.created_at)
        .bind(session.last_seen_at)
        .bind(session.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        audit::insert(&mut tx, audit).await?;
        tx.commit().await.map_err(db)
    }

    async fn get_console_session(
        &self,
        token_hash: &KeyHash,
    ) -> Result<Option<ConsoleSessionRecord>, Error> {
        let row = sqlx::query(
            "SELECT token_hash, key_id, secret_hash, created_at, last_seen_at, expires_at \
             FROM console_sessions WHERE token_hash = $1",
        )
        .bind(token_hash.to_vec())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(|r| {
            Ok(ConsoleSessionRecord {
                token_hash: hash(&r, "token_hash")?,
                key_id: key_id(&r, "key_id")?,
                secret_hash: hash(&r, "secret_hash")?,
                created_at: col(&r, "created_at")?,
                last_seen_at: col(&r, "last_seen_at")?,
                expires_at: col(&r, "expires_at")?,
            })
        })
        .transpose()
    }

    async fn touch_console_session(&self, token_hash: &KeyHash, at: i64) -> Result<(), Error> {
        sqlx::query(
            "UPDATE console_sessions SET last_seen_at = $1 \
             WHERE token_hash = $2 AND last_seen_at < $1",
        )
        .bind(at)
        .bind(token_hash.to_vec())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn delete_console_session(
        &self,
        token_hash: &KeyHash,
        audit: Option<&AuditEntry>,
    ) -> Result<bool, Error> {
        let mut tx = self.begin_write().await?;
        let gone = sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
            .bind(token_hash.to_vec())
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected()
            > 0;
        if gone && let Some(entry) = audit {
            audit::insert(&mut tx, entry).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(gone)
    }

    async fn purge_console_sessions(&self, now: i64, idle_before: i64) -> Result<u64, Error> {
        let done = sqlx::query(
            "DELETE FROM console_sessions WHERE expires_at <= $1 OR last_seen_at <= $2",
        )
        .bind(now)
        .bind(idle_before)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }
}
