//! The keys list's filters as SQL (search, status, expiry) and the
//! per-status counts. The search is a substring match, so no B-tree index
//! can serve it: it runs over the rows the other filters and the keyset
//! cursor leave, in sequence order, and stops at the page's end.

use keygate_core::Error;
use keygate_core::keys::search::like_contains;
use keygate_core::model::{KeyCounts, KeyFilter, KeyStatus, Tenant};

use crate::rows::{SqlBuilder, col};
use crate::{SqlStore, db};

/// Appends `filter`'s conditions (after a `WHERE`) to `q`.
pub(crate) fn push_filter(q: &mut SqlBuilder, filter: &KeyFilter) -> Result<(), Error> {
    if let Some(tenant) = &filter.tenant {
        q.push(" AND k.tenant = ")
            .bind(tenant.as_str().to_owned())?;
    }
    if let Some(owner) = &filter.owner {
        q.push(" AND k.owner = ").bind(owner.clone())?;
    }
    match filter.status {
        None if !filter.include_revoked => {
            q.push(" AND k.revoked_at IS NULL");
        }
        None => {}
        Some(KeyStatus::Revoked) => {
            q.push(" AND k.revoked_at IS NOT NULL");
        }
        Some(KeyStatus::Active) => {
            q.push(" AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ")
                .bind(filter.now)?
                .push(")");
        }
        Some(KeyStatus::Expired) => {
            q.push(" AND k.revoked_at IS NULL AND k.expires_at <= ")
                .bind(filter.now)?;
        }
    }
    if let Some(before) = filter.expires_before {
        q.push(" AND k.expires_at < ").bind(before)?;
    }
    if let Some(text) = &filter.search {
        let pattern = like_contains(text);
        q.push(" AND (LOWER(k.name) LIKE ")
            .bind(pattern.clone())?
            .push(" ESCAPE '\\' OR LOWER(k.prefix) LIKE ")
            .bind(pattern.clone())?
            .push(" ESCAPE '\\' OR LOWER(k.id) LIKE ")
            .bind(pattern.clone())?
            .push(" ESCAPE '\\' OR LOWER(k.owner) LIKE ")
            .bind(pattern)?
            .push(" ESCAPE '\\')");
    }
    Ok(())
}

/// Every key's state in one pass; `$1` is now, `$2` the expiring bound.
macro_rules! counts_sql {
    () => {
        "SELECT \
         COUNT(CASE WHEN revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1) \
           THEN 1 END) AS active, \
         COUNT(CASE WHEN revoked_at IS NOT NULL THEN 1 END) AS revoked, \
         COUNT(CASE WHEN revoked_at IS NULL AND expires_at <= $1 THEN 1 END) AS expired, \
         COUNT(CASE WHEN revoked_at IS NULL AND expires_at > $1 AND expires_at < $2 \
           THEN 1 END) AS expiring \
         FROM api_keys"
    };
}
const COUNTS: &str = counts_sql!();
/// One tenant's (served by the `(tenant, seq)` index).
const COUNTS_OF_TENANT: &str = concat!(counts_sql!(), " WHERE tenant = $3");

impl SqlStore {
    pub(crate) async fn counts_by_status(
        &self,
        tenant: Option<&Tenant>,
        now: i64,
        expiring_before: i64,
    ) -> Result<KeyCounts, Error> {
        let row = match tenant {
            None => sqlx::query(COUNTS).bind(now).bind(expiring_before),
            Some(t) => sqlx::query(COUNTS_OF_TENANT)
                .bind(now)
                .bind(expiring_before)
                .bind(t.as_str()),
        }
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        let n = |name: &str| -> Result<u64, Error> {
            let v: i64 = col(&row, name)?;
            u64::try_from(v).map_err(|e| Error::Storage(format!("negative count: {e}")))
        };
        Ok(KeyCounts {
            active: n("active")?,
            revoked: n("revoked")?,
            expired: n("expired")?,
            expiring: n("expiring")?,
        })
    }
}
