//! `ClientStore`: mTLS clients. Every mutating call writes its audit entry
//! and a `client.changed` feed entry in the same transaction.

use async_trait::async_trait;
use keygate_core::Error;
use keygate_core::clients::{CaName, ClientFilter, ClientId, ClientRecord, ClientStore, Matcher};
use keygate_core::feed::Change;
use keygate_core::model::{AuditEntry, PageRequest, RateLimitSpec, Scope, Tenant};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::rows::{self, SqlBuilder, col};
use crate::{SqlStore, audit, db, feed, revoke};

const COLUMNS: &str = "SELECT seq, id, name, owner, tenant, scopes, rate_limit_limit, \
     rate_limit_period, ca, kind, pattern, created_at, updated_at, revoked_at, version \
     FROM clients";

fn bad(column: &str, what: impl std::fmt::Display) -> Error {
    Error::Storage(format!(
        "unreadable stored value in column {column}: {what}"
    ))
}

fn limit_of(row: &AnyRow) -> Result<Option<RateLimitSpec>, Error> {
    let limit: Option<i64> = col(row, "rate_limit_limit")?;
    let period: Option<i64> = col(row, "rate_limit_period")?;
    match (limit, period) {
        (Some(l), Some(p)) => Ok(Some(RateLimitSpec {
            limit: u32::try_from(l).map_err(|e| bad("rate_limit_limit", e))?,
            period_seconds: u32::try_from(p).map_err(|e| bad("rate_limit_period", e))?,
        })),
        (None, None) => Ok(None),
        _ => Err(bad(
            "rate_limit_limit",
            "limit and period must both be set or both be null",
        )),
    }
}

fn client_row(row: &AnyRow) -> Result<(i64, ClientRecord), Error> {
    let id: String = col(row, "id")?;
    let tenant = col::<Option<String>>(row, "tenant")?
        .map(|t| Tenant::parse(&t).map_err(|e| bad("tenant", e)))
        .transpose()?;
    let scopes: String = col(row, "scopes")?;
    let scopes: Vec<Scope> = serde_json::from_str(&scopes).map_err(|e| bad("scopes", e))?;
    let ca: String = col(row, "ca")?;
    let kind: String = col(row, "kind")?;
    let pattern: String = col(row, "pattern")?;
    let ca = (!ca.is_empty()).then_some(ca.as_str());
    let matcher = Matcher::from_parts(ca, &kind, &pattern).map_err(|e| bad("pattern", e))?;
    let record = ClientRecord {
        id: ClientId::parse(&id).map_err(|e| bad("id", e))?,
        name: col(row, "name")?,
        owner: col(row, "owner")?,
        tenant,
        scopes,
        rate_limit: limit_of(row)?,
        matcher,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
        revoked_at: col(row, "revoked_at")?,
        version: col(row, "version")?,
    };
    Ok((col(row, "seq")?, record))
}

/// A live client already holds this matcher: the unique index said so.
fn taken(e: sqlx::Error) -> Error {
    if e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
    {
        Error::AlreadyExists("a live client with this certificate matcher")
    } else {
        db(e)
    }
}

fn limit_parts(c: &ClientRecord) -> (Option<i64>, Option<i64>) {
    c.rate_limit.map_or((None, None), |r| {
        (Some(i64::from(r.limit)), Some(i64::from(r.period_seconds)))
    })
}

fn ca_column(m: &Matcher) -> String {
    m.ca().map(|c| c.as_str().to_owned()).unwrap_or_default()
}

async fn client_in(conn: &mut AnyConnection, id: &ClientId) -> Result<Option<ClientRecord>, Error> {
    let mut q = SqlBuilder::new(COLUMNS);
    q.push(" WHERE id = ").bind(id.as_str().to_owned())?;
    let row = q.build().fetch_optional(conn).await.map_err(db)?;
    row.map(|r| client_row(&r).map(|(_, c)| c)).transpose()
}

async fn changed(store: &SqlStore, tx: &mut AnyConnection, id: &ClientId) -> Result<(), Error> {
    let change = Change::ClientChanged {
        client_id: id.clone(),
    };
    feed::append(tx, store.backend, change).await.map(|_| ())
}

#[async_trait]
impl ClientStore for SqlStore {
    async fn insert_client(&self, c: &ClientRecord, audit: &AuditEntry) -> Result<(), Error> {
        let scopes = rows::to_json("scopes", &c.scopes)?;
        let (limit, period) = limit_parts(c);
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO clients (id, name, owner, tenant, scopes, rate_limit_limit, \
             rate_limit_period, ca, kind, pattern, created_at, updated_at, revoked_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(c.id.as_str())
        .bind(c.name.as_str())
        .bind(c.owner.as_str())
        .bind(c.tenant.as_ref().map(|t| t.as_str()))
        .bind(scopes)
        .bind(limit)
        .bind(period)
        .bind(ca_column(&c.matcher))
        .bind(c.matcher.kind())
        .bind(c.matcher.value())
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(c.revoked_at)
        .bind(c.version)
        .execute(&mut *tx)
        .await
        .map_err(taken)?;
        audit::insert(&mut tx, audit).await?;
        changed(self, &mut tx, &c.id).await?;
        tx.commit().await.map_err(db)
    }

    async fn get_client(&self, id: &ClientId) -> Result<Option<ClientRecord>, Error> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        client_in(&mut conn, id).await
    }

    async fn list_clients(
        &self,
        filter: &ClientFilter,
        page: PageRequest,
    ) -> Result<Vec<(i64, ClientRecord)>, Error> {
        let mut q = SqlBuilder::new(COLUMNS);
        q.push(" WHERE 1 = 1");
        if let Some(tenant) = &filter.tenant {
            q.push(" AND tenant = ").bind(tenant.as_str().to_owned())?;
        }
        if let Some(owner) = &filter.owner {
            q.push(" AND owner = ").bind(owner.clone())?;
        }
        if let Some(ca) = &filter.ca {
            q.push(" AND ca = ").bind(ca.as_str().to_owned())?;
        }
        if !filter.include_revoked {
            q.push(" AND revoked_at IS NULL");
        }
        if let Some(after) = page.after {
            q.push(" AND seq > ").bind(after)?;
        }
        q.push(" ORDER BY seq ASC LIMIT ")
            .bind(i64::from(page.limit))?;
        let found = q.build().fetch_all(&self.pool).await.map_err(db)?;
        found.iter().map(client_row).collect()
    }

    async fn update_client(&self, c: &ClientRecord, audit: &AuditEntry) -> Result<bool, Error> {
        let scopes = rows::to_json("scopes", &c.scopes)?;
        let (limit, period) = limit_parts(c);
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE clients SET name = $2, owner = $3, scopes = $4, rate_limit_limit = $5, \
             rate_limit_period = $6, ca = $7, kind = $8, pattern = $9, updated_at = $10, \
             version = $11 WHERE id = $1 AND version = $12 AND revoked_at IS NULL",
        )
        .bind(c.id.as_str())
        .bind(c.name.as_str())
        .bind(c.owner.as_str())
        .bind(scopes)
        .bind(limit)
        .bind(period)
        .bind(ca_column(&c.matcher))
        .bind(c.matcher.kind())
        .bind(c.matcher.value())
        .bind(c.updated_at)
        .bind(c.version)
        .bind(c.version.saturating_sub(1))
        .execute(&mut *tx)
        .await
        .map_err(taken)?;
        if done.rows_affected() == 0 {
            // Dropping the transaction rolls it back.
            return Ok(false);
        }
        audit::insert(&mut tx, audit).await?;
        changed(self, &mut tx, &c.id).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn revoke_client(
        &self,
        id: &ClientId,
        at: i64,
        audit: &AuditEntry,
    ) -> Result<ClientRecord, Error> {
        let mut tx = self.begin_write().await?;
        revoke::mark_revoked(&mut tx, &revoke::CLIENTS, id.as_str(), at).await?;
        let record = client_in(&mut tx, id)
            .await?
            .ok_or(Error::NotFound("client"))?;
        audit::insert(&mut tx, audit).await?;
        // Also on a repeated revoke: `?wait=all` waits for a seq either way.
        changed(self, &mut tx, id).await?;
        tx.commit().await.map_err(db)?;
        Ok(record)
    }

    async fn find_clients(
        &self,
        ca: Option<&CaName>,
        kind: &str,
        values: &[String],
    ) -> Result<Vec<ClientRecord>, Error> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = SqlBuilder::new(COLUMNS);
        q.push(" WHERE ca = ")
            .bind(ca.map(|c| c.as_str().to_owned()).unwrap_or_default())?
            .push(" AND kind = ")
            .bind(kind.to_owned())?
            .push(" AND pattern IN (");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.bind(v.clone())?;
        }
        q.push(") ORDER BY seq");
        let found = q.build().fetch_all(&self.pool).await.map_err(db)?;
        found
            .iter()
            .map(|r| client_row(r).map(|(_, c)| c))
            .collect()
    }
}
