//! `UsageStore`: verification counts per key, hour and outcome. A flush is
//! one transaction of upserts that add to the stored counts, in key order
//! so concurrent flushes from many nodes lock rows in the same order.

use async_trait::async_trait;
use keygate_core::model::Tenant;
use keygate_core::store::{UsageCount, UsageStore};
use keygate_core::{Error, KeyId, VerifyCode};

use crate::rows::{SqlBuilder, col, key_id};
use crate::{SqlStore, db};

fn to_i64(count: u64) -> Result<i64, Error> {
    i64::try_from(count).map_err(|_| Error::Internal("usage count out of range".into()))
}

fn usage_row(row: &sqlx::any::AnyRow) -> Result<UsageCount, Error> {
    let code: String = col(row, "code")?;
    let code = VerifyCode::parse(&code).ok_or_else(|| {
        Error::Storage(format!("unknown verification code {code:?} in key_usage"))
    })?;
    let count: i64 = col(row, "count")?;
    Ok(UsageCount {
        key_id: key_id(row, "key_id")?,
        hour: col(row, "hour")?,
        code,
        count: u64::try_from(count).unwrap_or(0),
    })
}

#[async_trait]
impl UsageStore for SqlStore {
    async fn add_usage(&self, rows: &[UsageCount]) -> Result<(), Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut sorted: Vec<&UsageCount> = rows.iter().collect();
        sorted
            .sort_unstable_by(|a, b| (&a.key_id, a.hour, a.code).cmp(&(&b.key_id, b.hour, b.code)));
        let mut tx = self.begin_write().await?;
        for r in sorted {
            sqlx::query(
                "INSERT INTO key_usage (key_id, hour, code, count) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (key_id, hour, code) DO UPDATE SET count = key_usage.count + excluded.count",
            )
            .bind(r.key_id.as_str())
            .bind(r.hour)
            .bind(r.code.as_str())
            .bind(to_i64(r.count)?)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn usage(
        &self,
        keys: &[KeyId],
        since: i64,
        until: i64,
    ) -> Result<Vec<UsageCount>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut q =
            SqlBuilder::new("SELECT key_id, hour, code, count FROM key_usage WHERE hour >= ");
        q.bind(since)?
            .push(" AND hour < ")
            .bind(until)?
            .push(" AND key_id IN (");
        for (i, id) in keys.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.bind(id.as_str().to_owned())?;
        }
        q.push(") ORDER BY key_id, hour, code");
        let found = q.build().fetch_all(&self.pool).await.map_err(db)?;
        found.iter().map(usage_row).collect()
    }

    async fn usage_totals(
        &self,
        tenant: Option<&Tenant>,
        since: i64,
        until: i64,
    ) -> Result<Vec<(i64, VerifyCode, u64)>, Error> {
        // CAST: PostgreSQL's SUM of a BIGINT is NUMERIC otherwise.
        let mut q = SqlBuilder::new(
            "SELECT u.hour AS hour, u.code AS code, CAST(SUM(u.count) AS BIGINT) AS count \
             FROM key_usage u",
        );
        if tenant.is_some() {
            q.push(" JOIN api_keys k ON k.id = u.key_id");
        }
        q.push(" WHERE u.hour >= ")
            .bind(since)?
            .push(" AND u.hour < ")
            .bind(until)?;
        if let Some(t) = tenant {
            q.push(" AND k.tenant = ").bind(t.as_str().to_owned())?;
        }
        q.push(" GROUP BY u.hour, u.code ORDER BY u.hour, u.code");
        let found = q.build().fetch_all(&self.pool).await.map_err(db)?;
        found
            .iter()
            .map(|row| {
                let code: String = col(row, "code")?;
                let code = VerifyCode::parse(&code).ok_or_else(|| {
                    Error::Storage(format!("unknown verification code {code:?} in key_usage"))
                })?;
                let count: i64 = col(row, "count")?;
                Ok((col(row, "hour")?, code, u64::try_from(count).unwrap_or(0)))
            })
            .collect()
    }

    async fn purge_usage(&self, before: i64) -> Result<u64, Error> {
        let done = sqlx::query("DELETE FROM key_usage WHERE hour < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }
}
