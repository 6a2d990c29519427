//! The audit log: appended in the same transaction as the change it records,
//! tallies of failures added to by key, pruned by age, listed newest first
//! with keyset pagination on `seq`.

use async_trait::async_trait;
use keygate_core::Error;
use keygate_core::model::{AuditEntry, AuditFilter, AuditRow, AuditTally, PageRequest};
use keygate_core::store::AuditStore;
use sqlx::AnyConnection;

use crate::rows::{self, AUDIT_COLUMNS, SqlBuilder};
use crate::{SqlStore, db};

/// Writes one entry on `conn`, normally inside the caller's transaction.
pub(crate) async fn insert(conn: &mut AnyConnection, entry: &AuditEntry) -> Result<(), Error> {
    let detail = rows::to_json("audit detail", &entry.detail)?;
    sqlx::query(
        "INSERT INTO audit_log (id, at, action, actor, target, tenant, request_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(entry.id.as_str())
    .bind(entry.at)
    .bind(entry.action.as_str())
    .bind(entry.actor.as_str())
    .bind(entry.target.as_deref())
    .bind(entry.tenant.as_deref())
    .bind(entry.request_id.as_deref())
    .bind(detail)
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Adds one tally to the row with its key, or inserts it. CASE rather than
/// MIN/GREATEST, which the two backends spell differently.
async fn add_tally(conn: &mut AnyConnection, tally: &AuditTally) -> Result<(), Error> {
    let entry = &tally.row.entry;
    let detail = rows::to_json("audit detail", &entry.detail)?;
    sqlx::query(
        "INSERT INTO audit_log (id, at, action, actor, target, tenant, request_id, detail, \
         occurrences, last_at, tally_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (tally_key) DO UPDATE SET \
         occurrences = audit_log.occurrences + excluded.occurrences, \
         at = CASE WHEN excluded.at < audit_log.at THEN excluded.at ELSE audit_log.at END, \
         last_at = CASE WHEN excluded.last_at > audit_log.last_at \
             THEN excluded.last_at ELSE audit_log.last_at END",
    )
    .bind(entry.id.as_str())
    .bind(entry.at)
    .bind(entry.action.as_str())
    .bind(entry.actor.as_str())
    .bind(entry.target.as_deref())
    .bind(entry.tenant.as_deref())
    .bind(entry.request_id.as_deref())
    .bind(detail)
    .bind(tally.row.count)
    .bind(tally.row.last_at)
    .bind(tally.key.as_str())
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(())
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn append_audit(&self, entries: &[AuditEntry]) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for entry in entries {
            insert(&mut tx, entry).await?;
        }
        tx.commit().await.map_err(db)
    }

    async fn add_audit_tallies(&self, tallies: &[AuditTally]) -> Result<(), Error> {
        if tallies.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for tally in tallies {
            add_tally(&mut tx, tally).await?;
        }
        tx.commit().await.map_err(db)
    }

    async fn prune_audit(&self, before: i64, limit: u32) -> Result<u64, Error> {
        // A subquery with LIMIT: SQLite builds lack DELETE ... LIMIT.
        let done = sqlx::query(
            "DELETE FROM audit_log WHERE seq IN \
             (SELECT seq FROM audit_log WHERE at < $1 ORDER BY seq LIMIT $2)",
        )
        .bind(before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    /// Newest first. `since` and `until` are both inclusive.
    async fn list_audit(
        &self,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Vec<AuditRow>, Error> {
        let mut q = SqlBuilder::new("SELECT ");
        q.push(AUDIT_COLUMNS).push(" FROM audit_log WHERE 1 = 1");
        if let Some(tenant) = &filter.tenant {
            q.push(" AND tenant = ").bind(tenant.as_str().to_owned())?;
        }
        if let Some(action) = &filter.action {
            q.push(" AND action = ").bind(action.clone())?;
        }
        if let Some(actor) = &filter.actor {
            q.push(" AND actor = ").bind(actor.clone())?;
        }
        if let Some(target) = &filter.target {
            q.push(" AND target = ").bind(target.clone())?;
        }
        if let Some(since) = filter.since {
            q.push(" AND at >= ").bind(since)?;
        }
        if let Some(until) = filter.until {
            q.push(" AND at <= ").bind(until)?;
        }
        if let Some(after) = page.after {
            q.push(" AND seq < ").bind(after)?;
        }
        q.push(" ORDER BY seq DESC LIMIT ")
            .bind(i64::from(page.limit))?;
        let found = q.build().fetch_all(&self.pool).await.map_err(db)?;
        found.iter().map(rows::audit_row).collect()
    }
}
