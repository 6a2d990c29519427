//! `SigningKeyStore`: JWT signing keys, their private parts sealed by the
//! caller. The generation column is unique, so of two nodes adding a
//! successor at once only one succeeds.

use async_trait::async_trait;
use keygate_core::Error;
use keygate_core::jwt::{SigningAlg, SigningKeyRecord};
use keygate_core::model::AuditEntry;
use keygate_core::store::SigningKeyStore;

use crate::rows::col;
use crate::{SqlStore, audit, db, feed};
use keygate_core::feed::Change;

#[async_trait]
impl SigningKeyStore for SqlStore {
    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>, Error> {
        let found = sqlx::query(
            "SELECT kid, generation, alg, public_jwk, sealed_private, created_at, activate_at \
             FROM signing_keys ORDER BY generation",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        found
            .iter()
            .map(|row| {
                Ok(SigningKeyRecord {
                    kid: col(row, "kid")?,
                    generation: col(row, "generation")?,
                    alg: SigningAlg::parse(&col::<String>(row, "alg")?)
                        .map_err(|e| Error::Internal(format!("signing_keys.alg: {e}")))?,
                    public_jwk: col(row, "public_jwk")?,
                    sealed_private: col(row, "sealed_private")?,
                    created_at: col(row, "created_at")?,
                    activate_at: col(row, "activate_at")?,
                })
            })
            .collect()
    }

    async fn insert_signing_key(
        &self,
        key: &SigningKeyRecord,
        entry: &AuditEntry,
    ) -> Result<bool, Error> {
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO signing_keys \
             (kid, generation, alg, public_jwk, sealed_private, created_at, activate_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(key.kid.as_str())
        .bind(key.generation)
        .bind(key.alg.as_str())
        .bind(key.public_jwk.as_str())
        .bind(key.sealed_private.clone())
        .bind(key.created_at)
        .bind(key.activate_at)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await.map_err(db)?;
            return Ok(false);
        }
        audit::insert(&mut tx, entry).await?;
        feed::append(&mut tx, self.backend, Change::SigningKeysChanged).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn delete_signing_keys(&self, kids: &[String]) -> Result<(), Error> {
        let mut tx = self.begin_write().await?;
        let mut deleted = 0;
        for kid in kids {
            deleted += sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
                .bind(kid.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
        }
        if deleted > 0 {
            feed::append(&mut tx, self.backend, Change::SigningKeysChanged).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }
}
