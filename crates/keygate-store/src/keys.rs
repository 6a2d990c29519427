//! `KeyStore`: keys, their secrets, credits and last-use times. Every
//! mutating call writes its audit entry in the same transaction.

use async_trait::async_trait;
use keygate_core::keys::pepper::KeyHash;
use keygate_core::model::{
    AuditEntry, KeyCounts, KeyFilter, KeyRecord, PageRequest, SecretRecord, Tenant,
};
use keygate_core::store::{KeyCap, KeyStore, UpdateOutcome};
use keygate_core::{Error, KeyId};
use sqlx::AnyConnection;

use crate::rows::{self, SqlBuilder, col, key_columns};
use crate::{SqlStore, audit, db, feed, revoke};
use keygate_core::feed::Change;

const UPDATE: &str = "UPDATE api_keys SET name = $2, scopes = $3, metadata = $4, \
     expires_at = $5, rate_limit_limit = $6, rate_limit_period = $7, updated_at = $8, \
     version = $9 WHERE id = $1 AND version = $10";

const UPDATE_WITH_REMAINING: &str = "UPDATE api_keys SET name = $2, scopes = $3, \
     metadata = $4, expires_at = $5, rate_limit_limit = $6, rate_limit_period = $7, \
     updated_at = $8, version = $9, remaining = $11 WHERE id = $1 AND version = $10";

fn limit_parts(key: &KeyRecord) -> (Option<i64>, Option<i64>) {
    match key.rate_limit {
        Some(spec) => (
            Some(i64::from(spec.limit)),
            Some(i64::from(spec.period_seconds)),
        ),
        None => (None, None),
    }
}

fn check_owner(secret: &SecretRecord, id: &KeyId) -> Result<(), Error> {
    if &secret.key_id == id {
        Ok(())
    } else {
        Err(Error::Internal(format!(
            "secret of {} stored under key {id}",
            secret.key_id
        )))
    }
}

async fn insert_secret(conn: &mut AnyConnection, secret: &SecretRecord) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO key_secrets (hash, key_id, pepper_version, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(secret.hash.to_vec())
    .bind(secret.key_id.as_str())
    .bind(secret.pepper_version)
    .bind(secret.created_at)
    .bind(secret.expires_at)
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(())
}

async fn hashes_of(conn: &mut AnyConnection, id: &KeyId) -> Result<Vec<KeyHash>, Error> {
    let found =
        sqlx::query("SELECT hash FROM key_secrets WHERE key_id = $1 ORDER BY created_at, hash")
            .bind(id.as_str())
            .fetch_all(conn)
            .await
            .map_err(db)?;
    found.iter().map(|row| rows::hash(row, "hash")).collect()
}

/// Reads one key inside the caller's transaction.
async fn key_in(conn: &mut AnyConnection, id: &KeyId) -> Result<Option<KeyRecord>, Error> {
    let row = sqlx::query(concat!(
        "SELECT ",
        key_columns!(),
        " FROM api_keys k WHERE k.id = $1"
    ))
    .bind(id.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    row.map(|r| rows::key_record(&r).map(|(_, k)| k))
        .transpose()
}

/// Writes one key row and its first secret, inside the caller's transaction.
async fn insert_key_row(
    conn: &mut AnyConnection,
    key: &KeyRecord,
    secret: &SecretRecord,
) -> Result<(), Error> {
    check_owner(secret, &key.id)?;
    let scopes = rows::to_json("scopes", &key.scopes)?;
    let metadata = rows::to_json("metadata", &key.metadata)?;
    let (limit, period) = limit_parts(key);
    sqlx::query(
        "INSERT INTO api_keys (id, name, owner, tenant, scopes, metadata, env, prefix, \
         created_at, updated_at, expires_at, revoked_at, last_used_at, rate_limit_limit, \
         rate_limit_period, remaining, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(key.id.as_str())
    .bind(key.name.as_str())
    .bind(key.owner.as_str())
    .bind(key.tenant.as_ref().map(|t| t.as_str()))
    .bind(scopes)
    .bind(metadata)
    .bind(key.env.as_str())
    .bind(key.prefix.as_str())
    .bind(key.created_at)
    .bind(key.updated_at)
    .bind(key.expires_at)
    .bind(key.revoked_at)
    .bind(key.last_used_at)
    .bind(limit)
    .bind(period)
    .bind(key.remaining)
    .bind(key.version)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    insert_secret(conn, secret).await
}

/// Keys of `tenant` (None: those without one) neither revoked nor expired
/// at `now`.
async fn live_keys(conn: &mut AnyConnection, tenant: Option<&str>, now: i64) -> Result<i64, Error> {
    let row = match tenant {
        Some(t) => {
            sqlx::query(concat!(
                "SELECT COUNT(*) AS n FROM api_keys WHERE tenant = $2 AND ",
                "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)"
            ))
            .bind(now)
            .bind(t)
            .fetch_one(&mut *conn)
            .await
        }
        None => {
            sqlx::query(concat!(
                "SELECT COUNT(*) AS n FROM api_keys WHERE tenant IS NULL AND ",
                "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)"
            ))
            .bind(now)
            .fetch_one(&mut *conn)
            .await
        }
    }
    .map_err(db)?;
    col(&row, "n")
}

/// The first write of a rotation: bumps the key row's `updated_at` and
/// prefix. Writing the row first locks it (PostgreSQL) or the database
/// (SQLite), so concurrent rotations of one key run one after another.
async fn claim_for_rotation(
    conn: &mut AnyConnection,
    id: &KeyId,
    at: i64,
    new_prefix: &str,
) -> Result<(), Error> {
    let bumped = sqlx::query(
        "UPDATE api_keys SET updated_at = CASE WHEN updated_at < $2 THEN $2 ELSE updated_at END, \
         prefix = $3 WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id.as_str())
    .bind(at)
    .bind(new_prefix)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if bumped.rows_affected() == 0 {
        // Either no such key or a revoked one: a revoked key never gets
        // a new secret, even when a revoke and a rotate race.
        return Err(match key_in(conn, id).await? {
            Some(_) => Error::Revoked,
            None => Error::NotFound("key"),
        });
    }
    Ok(())
}

/// Ends a key's current secrets: at once (`None`), or by `expire_at` at the
/// latest (an earlier expiry already set stays).
async fn retire_secrets(
    conn: &mut AnyConnection,
    id: &KeyId,
    expire_at: Option<i64>,
) -> Result<(), Error> {
    match expire_at {
        None => sqlx::query("DELETE FROM key_secrets WHERE key_id = $1").bind(id.as_str()),
        Some(at) => sqlx::query(
            "UPDATE key_secrets SET expires_at = \
             CASE WHEN expires_at IS NOT NULL AND expires_at < $2 THEN expires_at ELSE $2 END \
             WHERE key_id = $1",
        )
        .bind(id.as_str())
        .bind(at),
    }
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// 64 hashes of 65 characters fit a NOTIFY payload with room to spare.
const BULK_HASHES_PER_ENTRY: usize = 64;

impl SqlStore {
    /// Inserts many keys in one transaction, without audit entries: for
    /// benchmark fixtures and bulk imports, never for the API.
    pub async fn bulk_insert_keys(&self, keys: &[(KeyRecord, SecretRecord)]) -> Result<(), Error> {
        let mut tx = self.begin_write().await?;
        for (key, secret) in keys {
            insert_key_row(&mut tx, key, secret).await?;
        }
        // Chunks keep each entry's NOTIFY payload under the limit.
        for chunk in keys.chunks(BULK_HASHES_PER_ENTRY) {
            let hashes = chunk.iter().map(|(_, s)| s.hash).collect();
            feed::append(&mut tx, self.backend, Change::KeyCreated { hashes }).await?;
        }
        tx.commit().await.map_err(db)
    }
}

#[async_trait]
impl KeyStore for SqlStore {
    async fn insert_key(
        &self,
        key: &KeyRecord,
        secret: &SecretRecord,
        audit: &AuditEntry,
        cap: Option<KeyCap>,
    ) -> Result<(), Error> {
        let mut tx = self.begin_write().await?;
        if let Some(cap) = cap {
            let tenant = key.tenant.as_ref().map(|t| t.as_str());
            self.lock_quota(&mut tx, &format!("keys:{}", tenant.unwrap_or("")))
                .await?;
            let live = live_keys(&mut tx, tenant, cap.now).await?;
            if live >= i64::from(cap.max_live) {
                // Dropping the transaction rolls it back: nothing written.
                let whose = tenant.map_or("no tenant".to_owned(), |t| format!("tenant {t:?}"));
                return Err(Error::QuotaExceeded(format!(
                    "{live} live API keys already belong to {whose}, the limit of {} \
                     ([keys] max_per_tenant); revoke one first",
                    cap.max_live
                )));
            }
        }
        insert_key_row(&mut tx, key, secret).await?;
        audit::insert(&mut tx, audit).await?;
        let created = Change::KeyCreated {
            hashes: vec![secret.hash],
        };
        feed::append(&mut tx, self.backend, created).await?;
        tx.commit().await.map_err(db)
    }

    async fn get_key(&self, id: &KeyId) -> Result<Option<KeyRecord>, Error> {
        let row = sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys k WHERE k.id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(|r| rows::key_record(&r).map(|(_, k)| k))
            .transpose()
    }

    async fn find_by_hash(
        &self,
        hash: &KeyHash,
    ) -> Result<Option<(SecretRecord, KeyRecord)>, Error> {
        let row = sqlx::query(concat!(
            "SELECT s.hash AS s_hash, s.pepper_version AS s_pepper_version, \
             s.created_at AS s_created_at, s.expires_at AS s_expires_at, ",
            key_columns!(),
            " FROM key_secrets s JOIN api_keys k ON k.id = s.key_id WHERE s.hash = $1"
        ))
        .bind(hash.to_vec())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some(row) = row else { return Ok(None) };
        let secret = rows::secret_record(&row)?;
        let (_, key) = rows::key_record(&row)?;
        Ok(Some((secret, key)))
    }

    async fn list_keys(
        &self,
        filter: &KeyFilter,
        page: PageRequest,
    ) -> Result<Vec<(i64, KeyRecord)>, Error> {
        let mut q = SqlBuilder::new(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys k WHERE 1 = 1"
        ));
        crate::key_search::push_filter(&mut q, filter)?;
        if let Some(after) = page.after {
            q.push(" AND k.seq > ").bind(after)?;
        }
        q.push(" ORDER BY k.seq ASC LIMIT ")
            .bind(i64::from(page.limit))?;
        let found = q.build().fetch_all(&self.pool).await.map_err(db)?;
        found.iter().map(rows::key_record).collect()
    }

    async fn update_key(
        &self,
        key: &KeyRecord,
        set_remaining: bool,
        audit: &AuditEntry,
    ) -> Result<UpdateOutcome, Error> {
        let scopes = rows::to_json("scopes", &key.scopes)?;
        let metadata = rows::to_json("metadata", &key.metadata)?;
        let (limit, period) = limit_parts(key);
        let sql = if set_remaining {
            UPDATE_WITH_REMAINING
        } else {
            UPDATE
        };
        let mut tx = self.begin_write().await?;
        let mut q = sqlx::query(sql)
            .bind(key.id.as_str())
            .bind(key.name.as_str())
            .bind(scopes)
            .bind(metadata)
            .bind(key.expires_at)
            .bind(limit)
            .bind(period)
            .bind(key.updated_at)
            .bind(key.version)
            .bind(key.version.saturating_sub(1));
        if set_remaining {
            q = q.bind(key.remaining);
        }
        let done = q.execute(&mut *tx).await.map_err(db)?;
        if done.rows_affected() == 0 {
            // Dropping the transaction rolls it back.
            return Ok(UpdateOutcome::Stale);
        }
        let hashes = hashes_of(&mut tx, &key.id).await?;
        audit::insert(&mut tx, audit).await?;
        let changed = Change::KeyChanged {
            key_id: key.id.clone(),
            hashes: hashes.clone(),
        };
        feed::append(&mut tx, self.backend, changed).await?;
        tx.commit().await.map_err(db)?;
        Ok(UpdateOutcome::Updated(hashes))
    }

    async fn rotate_secret(
        &self,
        id: &KeyId,
        new_secret: &SecretRecord,
        new_prefix: &str,
        old_expire_at: Option<i64>,
        audit: &AuditEntry,
    ) -> Result<(KeyRecord, Vec<KeyHash>), Error> {
        check_owner(new_secret, id)?;
        let mut tx = self.begin_write().await?;
        claim_for_rotation(&mut tx, id, new_secret.created_at, new_prefix).await?;
        let old = hashes_of(&mut tx, id).await?;
        retire_secrets(&mut tx, id, old_expire_at).await?;
        insert_secret(&mut tx, new_secret).await?;
        let record = key_in(&mut tx, id).await?.ok_or(Error::NotFound("key"))?;
        audit::insert(&mut tx, audit).await?;
        // Two entries: the old secrets changed (expiry or gone), and a new
        // one exists that a negative cache may still refuse.
        let changed = Change::KeyChanged {
            key_id: id.clone(),
            hashes: old.clone(),
        };
        feed::append(&mut tx, self.backend, changed).await?;
        let created = Change::KeyCreated {
            hashes: vec![new_secret.hash],
        };
        feed::append(&mut tx, self.backend, created).await?;
        tx.commit().await.map_err(db)?;
        Ok((record, old))
    }

    async fn revoke_key(
        &self,
        id: &KeyId,
        at: i64,
        audit: &AuditEntry,
    ) -> Result<(KeyRecord, Vec<KeyHash>), Error> {
        let mut tx = self.begin_write().await?;
        revoke::mark_revoked(&mut tx, &revoke::KEYS, id.as_str(), at).await?;
        let record = key_in(&mut tx, id).await?.ok_or(Error::NotFound("key"))?;
        let hashes = hashes_of(&mut tx, id).await?;
        audit::insert(&mut tx, audit).await?;
        // Also on a repeated revoke: `?wait=all` waits for a seq either way.
        let changed = Change::KeyChanged {
            key_id: id.clone(),
            hashes: hashes.clone(),
        };
        feed::append(&mut tx, self.backend, changed).await?;
        tx.commit().await.map_err(db)?;
        Ok((record, hashes))
    }

    async fn secret_hashes(&self, id: &KeyId) -> Result<Vec<KeyHash>, Error> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        hashes_of(&mut conn, id).await
    }

    async fn take_credit(&self, id: &KeyId) -> Result<Option<i64>, Error> {
        let row = sqlx::query(
            "UPDATE api_keys SET remaining = remaining - 1 \
             WHERE id = $1 AND remaining > 0 RETURNING remaining",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(|r| col::<i64>(&r, "remaining")).transpose()
    }

    async fn touch_last_used(&self, batch: &[(KeyId, i64)]) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        // One row update per key, in id order so concurrent batches on
        // PostgreSQL lock rows in the same order and cannot deadlock.
        let mut latest: Vec<(&KeyId, i64)> = batch.iter().map(|(id, at)| (id, *at)).collect();
        latest.sort_unstable_by(|a, b| a.0.cmp(b.0).then(b.1.cmp(&a.1)));
        latest.dedup_by(|later, first| later.0 == first.0);
        let mut tx = self.begin_write().await?;
        for (id, at) in latest {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = \
                 CASE WHEN last_used_at IS NULL OR last_used_at < $2 THEN $2 ELSE last_used_at END \
                 WHERE id = $1",
            )
            .bind(id.as_str())
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn count_keys(&self) -> Result<u64, Error> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM api_keys")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        let n: i64 = col(&row, "n")?;
        u64::try_from(n).map_err(|e| Error::Storage(format!("negative key count: {e}")))
    }

    async fn count_keys_by_status(
        &self,
        tenant: Option<&Tenant>,
        now: i64,
        expiring_before: i64,
    ) -> Result<KeyCounts, Error> {
        self.counts_by_status(tenant, now, expiring_before).await
    }
}
