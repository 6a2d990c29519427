//! `HmacSecretStore`: each API key's sealed request-signing secret. Writing
//! one locks the key row first, so it serializes with a revoke: a revoked
//! key never gets a new secret.

use async_trait::async_trait;
use keygate_core::model::AuditEntry;
use keygate_core::store::{HmacSecretRecord, HmacSecretStore};
use keygate_core::{Error, KeyId};

use crate::rows::{col, key_id};
use crate::{SqlStore, audit, db, feed};
use keygate_core::feed::Change;

#[async_trait]
impl HmacSecretStore for SqlStore {
    async fn put_hmac_secret(
        &self,
        secret: &HmacSecretRecord,
        audit: &AuditEntry,
    ) -> Result<(), Error> {
        let mut tx = self.begin_write().await?;
        let live = sqlx::query(
            "UPDATE api_keys SET updated_at = updated_at WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(secret.key_id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if live.rows_affected() == 0 {
            let exists = sqlx::query("SELECT id FROM api_keys WHERE id = $1")
                .bind(secret.key_id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            return Err(match exists {
                Some(_) => Error::Revoked,
                None => Error::NotFound("key"),
            });
        }
        sqlx::query(
            "INSERT INTO hmac_secrets (key_id, sealed, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key_id) DO UPDATE SET sealed = excluded.sealed, \
             created_at = excluded.created_at",
        )
        .bind(secret.key_id.as_str())
        .bind(secret.sealed.clone())
        .bind(secret.created_at)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        audit::insert(&mut tx, audit).await?;
        let changed = Change::HmacChanged {
            key_id: secret.key_id.clone(),
        };
        feed::append(&mut tx, self.backend, changed).await?;
        tx.commit().await.map_err(db)
    }

    async fn get_hmac_secret(&self, id: &KeyId) -> Result<Option<HmacSecretRecord>, Error> {
        let row =
            sqlx::query("SELECT key_id, sealed, created_at FROM hmac_secrets WHERE key_id = $1")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        row.map(|r| {
            Ok(HmacSecretRecord {
                key_id: key_id(&r, "key_id")?,
                sealed: col(&r, "sealed")?,
                created_at: col(&r, "created_at")?,
            })
        })
        .transpose()
    }
}
