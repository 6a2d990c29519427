//! `SessionStore`: refresh-token families, their tokens, and the `jti`
//! blocklist. A refresh and a revocation of one family are ordered by the
//! family's row lock on PostgreSQL and by the single writer on SQLite.

use async_trait::async_trait;
use keygate_core::Error;
use keygate_core::keys::pepper::KeyHash;
use keygate_core::model::{AuditEntry, Tenant};
use keygate_core::sessions::model::{
    BlockedJti, FamilyId, PresentedToken, PurgeCutoff, RefreshDecider, RefreshFamily, RefreshStep,
    RefreshTokenRecord,
};
use keygate_core::store::{REASON_SESSION_LIMIT, SessionAudit, SessionCap, SessionStore};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::rows::{self, col};
use crate::{Backend, SqlStore, audit, blocklist, db};

macro_rules! family_columns {
    () => {
        "f.id AS id, f.user_id AS user_id, f.tenant AS tenant, f.created_at_ms AS created_at_ms, \
         f.absolute_expires_at_ms AS absolute_expires_at_ms, \
         f.last_used_at_ms AS last_used_at_ms, f.revoked_at_ms AS revoked_at_ms, \
         f.revoked_reason AS revoked_reason"
    };
}

macro_rules! token_columns {
    () => {
        "t.hash AS t_hash, t.family_id AS t_family_id, t.generation AS t_generation, \
         t.pepper_version AS t_pepper_version, t.issued_at_ms AS t_issued_at_ms, \
         t.used_at_ms AS t_used_at_ms"
    };
}

const FAMILY_BY_ID: &str = concat!(
    "SELECT ",
    family_columns!(),
    " FROM refresh_families f WHERE f.id = $1"
);
const FAMILY_BY_ID_LOCKED: &str = concat!(
    "SELECT ",
    family_columns!(),
    " FROM refresh_families f WHERE f.id = $1 FOR UPDATE"
);
const TOKEN_BY_HASH: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM refresh_tokens t WHERE t.hash = $1"
);
const NEWEST_TOKEN: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM refresh_tokens t WHERE t.family_id = $1 ORDER BY t.generation DESC LIMIT 1"
);

/// The families a `PurgeCutoff` selects, with `$1`..`$3` its three times.
macro_rules! purgeable {
    () => {
        "(absolute_expires_at_ms < $1 OR last_used_at_ms < $2 OR revoked_at_ms < $3)"
    };
}

const PURGE_TOKENS: &str = concat!(
    "DELETE FROM refresh_tokens WHERE family_id IN (SELECT id FROM refresh_families WHERE ",
    purgeable!(),
    ")"
);
const PURGE_FAMILIES: &str = concat!(
    "DELETE FROM refresh_families WHERE ",
    purgeable!(),
    " AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = refresh_families.id)"
);

fn bad(column: &str, what: impl std::fmt::Display) -> Error {
    Error::Storage(format!(
        "unreadable stored value in column {column}: {what}"
    ))
}

fn family_record(row: &AnyRow) -> Result<RefreshFamily, Error> {
    let id: String = col(row, "id")?;
    let tenant = col::<Option<String>>(row, "tenant")?
        .map(|t| Tenant::parse(&t).map_err(|e| bad("tenant", e)))
        .transpose()?;
    Ok(RefreshFamily {
        id: FamilyId::parse(&id).map_err(|e| bad("id", e))?,
        user_id: col(row, "user_id")?,
        tenant,
        created_at_ms: col(row, "created_at_ms")?,
        absolute_expires_at_ms: col(row, "absolute_expires_at_ms")?,
        last_used_at_ms: col(row, "last_used_at_ms")?,
        revoked_at_ms: col(row, "revoked_at_ms")?,
        revoked_reason: col(row, "revoked_reason")?,
    })
}

fn token_record(row: &AnyRow) -> Result<RefreshTokenRecord, Error> {
    let family_id: String = col(row, "t_family_id")?;
    Ok(RefreshTokenRecord {
        hash: rows::hash(row, "t_hash")?,
        pepper_version: col(row, "t_pepper_version")?,
        family_id: FamilyId::parse(&family_id).map_err(|e| bad("family_id", e))?,
        generation: col(row, "t_generation")?,
        issued_at_ms: col(row, "t_issued_at_ms")?,
        used_at_ms: col(row, "t_used_at_ms")?,
    })
}

async fn family_in(
    conn: &mut AnyConnection,
    sql: &'static str,
    id: &str,
) -> Result<Option<RefreshFamily>, Error> {
    let row = sqlx::query(sql)
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(db)?;
    row.as_ref().map(family_record).transpose()
}

async fn token_by_hash(
    conn: &mut AnyConnection,
    hash: &KeyHash,
) -> Result<Option<RefreshTokenRecord>, Error> {
    let row = sqlx::query(TOKEN_BY_HASH)
        .bind(hash.to_vec())
        .fetch_optional(conn)
        .await
        .map_err(db)?;
    row.as_ref().map(token_record).transpose()
}

async fn newest_token(
    conn: &mut AnyConnection,
    family: &FamilyId,
) -> Result<Option<RefreshTokenRecord>, Error> {
    let row = sqlx::query(NEWEST_TOKEN)
        .bind(family.as_str())
        .fetch_optional(conn)
        .await
        .map_err(db)?;
    row.as_ref().map(token_record).transpose()
}

async fn insert_token(conn: &mut AnyConnection, t: &RefreshTokenRecord) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens \
         (hash, family_id, generation, pepper_version, issued_at_ms, used_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(t.hash.to_vec())
    .bind(t.family_id.as_str())
    .bind(t.generation)
    .bind(t.pepper_version)
    .bind(t.issued_at_ms)
    .bind(t.used_at_ms)
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Revokes one family row; the first revocation's time and reason stay.
async fn revoke_row(
    conn: &mut AnyConnection,
    id: &FamilyId,
    at_ms: i64,
    reason: &str,
) -> Result<u64, Error> {
    let done = sqlx::query(
        "UPDATE refresh_families SET \
         revoked_reason = CASE WHEN revoked_at_ms IS NULL THEN $3 ELSE revoked_reason END, \
         revoked_at_ms = COALESCE(revoked_at_ms, $2) WHERE id = $1",
    )
    .bind(id.as_str())
    .bind(at_ms)
    .bind(reason)
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(done.rows_affected())
}

/// Ends the user's oldest live families so that one more fits under the
/// cap; answers their ids. The caller holds the user's quota lock.
async fn end_oldest_past_cap(
    conn: &mut AnyConnection,
    user_id: &str,
    cap: SessionCap,
) -> Result<Vec<FamilyId>, Error> {
    let live = sqlx::query(
        "SELECT id FROM refresh_families WHERE user_id = $1 AND revoked_at_ms IS NULL \
         AND absolute_expires_at_ms > $2 AND last_used_at_ms > $3 ORDER BY seq ASC",
    )
    .bind(user_id)
    .bind(cap.now_ms)
    .bind(cap.idle_since_ms)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let cap_len = usize::try_from(cap.max_live).unwrap_or(usize::MAX);
    let excess = (live.len() + 1).saturating_sub(cap_len);
    let mut ended = Vec::with_capacity(excess);
    for row in live.iter().take(excess) {
        let id: String = col(row, "id")?;
        let id = FamilyId::parse(&id).map_err(|e| bad("id", e))?;
        revoke_row(conn, &id, cap.now_ms, REASON_SESSION_LIMIT).await?;
        ended.push(id);
    }
    Ok(ended)
}

/// Reads what a refresh decides on, with the token's family locked: the
/// family, the presented token (read again under the lock, so a rotation
/// that committed while we waited shows as used) and the family's newest
/// token. `None` when a purge removed the token or its family meanwhile:
/// then the token is as unknown as if we had come a moment later.
async fn read_presented(
    conn: &mut AnyConnection,
    lock_family_sql: &'static str,
    hash: &KeyHash,
) -> Result<Option<PresentedToken>, Error> {
    let Some(found) = token_by_hash(conn, hash).await? else {
        return Ok(None);
    };
    let Some(family) = family_in(conn, lock_family_sql, found.family_id.as_str()).await? else {
        return Ok(None);
    };
    let Some(token) = token_by_hash(conn, hash).await? else {
        return Ok(None);
    };
    let newest = newest_token(conn, &found.family_id)
        .await?
        .ok_or_else(|| missing_family(&found.family_id))?;
    Ok(Some(PresentedToken {
        family,
        token,
        newest,
    }))
}

fn missing_family(id: &FamilyId) -> Error {
    Error::Storage(format!("refresh family {id} is missing"))
}

/// The writes of [`RefreshStep::Rotate`], inside the caller's transaction:
/// mark the presented token used, insert its successor, bump the family.
async fn rotate_in(
    conn: &mut AnyConnection,
    seen: &PresentedToken,
    at_ms: i64,
    successor: &RefreshTokenRecord,
    audit: &AuditEntry,
) -> Result<(), Error> {
    if successor.family_id != seen.family.id || successor.generation != seen.token.generation + 1 {
        return Err(Error::Internal(
            "a successor must be the next generation of the same family".into(),
        ));
    }
    // The compare-and-set that makes a token single-use, even if a caller
    // skipped the family lock.
    let used = sqlx::query(
        "UPDATE refresh_tokens SET used_at_ms = $2 WHERE hash = $1 AND used_at_ms IS NULL",
    )
    .bind(seen.token.hash.to_vec())
    .bind(at_ms)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if used.rows_affected() != 1 {
        return Err(Error::Conflict);
    }
    insert_token(conn, successor).await?;
    let bumped = sqlx::query(
        "UPDATE refresh_families SET last_used_at_ms = \
         CASE WHEN last_used_at_ms < $2 THEN $2 ELSE last_used_at_ms END \
         WHERE id = $1 AND revoked_at_ms IS NULL",
    )
    .bind(seen.family.id.as_str())
    .bind(at_ms)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if bumped.rows_affected() != 1 {
        return Err(Error::Conflict);
    }
    audit::insert(conn, audit).await
}

/// The writes of [`RefreshStep::RevokeFamily`], inside the caller's
/// transaction; answers the family as stored after them.
async fn revoke_in(
    conn: &mut AnyConnection,
    id: &FamilyId,
    at_ms: i64,
    reason: &str,
    audit: &AuditEntry,
) -> Result<RefreshFamily, Error> {
    revoke_row(conn, id, at_ms, reason).await?;
    audit::insert(conn, audit).await?;
    family_in(conn, FAMILY_BY_ID, id.as_str())
        .await?
        .ok_or_else(|| missing_family(id))
}

impl SqlStore {
    fn lock_family_sql(&self) -> &'static str {
        match self.backend {
            // SQLite has no row locks; BEGIN IMMEDIATE already made this
            // transaction the only writer.
            Backend::Sqlite => FAMILY_BY_ID,
            Backend::Postgres => FAMILY_BY_ID_LOCKED,
        }
    }
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn insert_family(
        &self,
        family: &RefreshFamily,
        first: &RefreshTokenRecord,
        cap: SessionCap,
        audit: &SessionAudit<'_>,
    ) -> Result<Vec<FamilyId>, Error> {
        if first.family_id != family.id {
            return Err(Error::Internal(format!(
                "token of {} stored under family {}",
                first.family_id, family.id
            )));
        }
        let mut tx = self.begin_write().await?;
        self.lock_quota(&mut tx, &format!("sessions:{}", family.user_id))
            .await?;
        let ended = end_oldest_past_cap(&mut tx, &family.user_id, cap).await?;
        sqlx::query(
            "INSERT INTO refresh_families (id, user_id, tenant, created_at_ms, \
             absolute_expires_at_ms, last_used_at_ms, revoked_at_ms, revoked_reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(family.id.as_str())
        .bind(family.user_id.as_str())
        .bind(family.tenant.as_ref().map(|t| t.as_str()))
        .bind(family.created_at_ms)
        .bind(family.absolute_expires_at_ms)
        .bind(family.last_used_at_ms)
        .bind(family.revoked_at_ms)
        .bind(family.revoked_reason.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        insert_token(&mut tx, first).await?;
        audit::insert(&mut tx, &audit(&ended)?).await?;
        tx.commit().await.map_err(db)?;
        Ok(ended)
    }

    async fn get_family(&self, id: &FamilyId) -> Result<Option<RefreshFamily>, Error> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        family_in(&mut conn, FAMILY_BY_ID, id.as_str()).await
    }

    async fn families_of_user(
        &self,
        user_id: &str,
        limit: u32,
    ) -> Result<Vec<RefreshFamily>, Error> {
        let found = sqlx::query(concat!(
            "SELECT ",
            family_columns!(),
            " FROM refresh_families f WHERE f.user_id = $1 ORDER BY f.seq DESC LIMIT $2"
        ))
        .bind(user_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        found.iter().map(family_record).collect()
    }

    async fn find_refresh_token(
        &self,
        hash: &KeyHash,
    ) -> Result<Option<(RefreshTokenRecord, RefreshFamily)>, Error> {
        let row = sqlx::query(concat!(
            "SELECT ",
            token_columns!(),
            ", ",
            family_columns!(),
            " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
             WHERE t.hash = $1"
        ))
        .bind(hash.to_vec())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some((token_record(&row)?, family_record(&row)?)))
    }

    async fn use_refresh_token(
        &self,
        hash: &KeyHash,
        decide: &RefreshDecider<'_>,
    ) -> Result<Option<(PresentedToken, RefreshFamily)>, Error> {
        // An unknown token is answered without a write transaction, so a
        // client spraying random tokens cannot queue behind SQLite's single
        // writer. A hash absent now cannot appear later: a token's holder
        // only learns it after the transaction that stored it committed.
        let known = sqlx::query("SELECT 1 AS one FROM refresh_tokens WHERE hash = $1")
            .bind(hash.to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        if known.is_none() {
            return Ok(None);
        }
        // One transaction from the locked read to the commit: the decision
        // is taken on what the lock protects, and its writes land together.
        let mut tx = self.begin_write().await?;
        let Some(seen) = read_presented(&mut tx, self.lock_family_sql(), hash).await? else {
            return Ok(None);
        };
        let after = match decide(&seen)? {
            RefreshStep::Nothing => {
                // Nothing was written; release SQLite's write lock now
                // rather than when the connection is next used.
                tx.rollback().await.map_err(db)?;
                let family = seen.family.clone();
                return Ok(Some((seen, family)));
            }
            RefreshStep::Rotate {
                at_ms,
                successor,
                audit,
            } => {
                rotate_in(&mut tx, &seen, at_ms, &successor, &audit).await?;
                let mut after = seen.family.clone();
                after.last_used_at_ms = after.last_used_at_ms.max(at_ms);
                after
            }
            RefreshStep::RevokeFamily {
                at_ms,
                reason,
                audit,
            } => revoke_in(&mut tx, &seen.family.id, at_ms, &reason, &audit).await?,
        };
        tx.commit().await.map_err(db)?;
        Ok(Some((seen, after)))
    }

    async fn revoke_family(
        &self,
        id: &FamilyId,
        at_ms: i64,
        reason: &str,
        audit: &AuditEntry,
    ) -> Result<RefreshFamily, Error> {
        let mut tx = self.begin_write().await?;
        // The UPDATE takes the row lock a refresh takes with FOR UPDATE, so
        // a refresh either committed before this or sees the revocation.
        if revoke_row(&mut tx, id, at_ms, reason).await? == 0 {
            return Err(Error::NotFound("session"));
        }
        let family = family_in(&mut tx, FAMILY_BY_ID, id.as_str())
            .await?
            .ok_or(Error::NotFound("session"))?;
        audit::insert(&mut tx, audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(family)
    }

    async fn revoke_user_families(
        &self,
        user_id: &str,
        at_ms: i64,
        reason: &str,
        audit: &AuditEntry,
    ) -> Result<u64, Error> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // Lock in id order, so two of these for one user cannot deadlock.
            sqlx::query(
                "SELECT id FROM refresh_families WHERE user_id = $1 AND revoked_at_ms IS NULL \
                 ORDER BY id FOR UPDATE",
            )
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        }
        let done = sqlx::query(
            "UPDATE refresh_families SET revoked_at_ms = $2, revoked_reason = $3 \
             WHERE user_id = $1 AND revoked_at_ms IS NULL",
        )
        .bind(user_id)
        .bind(at_ms)
        .bind(reason)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        audit::insert(&mut tx, audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn purge_families(&self, cutoff: PurgeCutoff, audit: &AuditEntry) -> Result<u64, Error> {
        let bind3 = |sql: &'static str| {
            sqlx::query(sql)
                .bind(cutoff.absolute_expired_before_ms)
                .bind(cutoff.last_used_before_ms)
                .bind(cutoff.revoked_before_ms)
        };
        let mut tx = self.begin_write().await?;
        let tokens = bind3(PURGE_TOKENS).execute(&mut *tx).await.map_err(db)?;
        // Only families left without tokens go, so a family that became
        // purgeable between the two statements can never break the foreign key.
        let done = bind3(PURGE_FAMILIES).execute(&mut *tx).await.map_err(db)?;
        // An hourly sweep that found nothing leaves no trace.
        if tokens.rows_affected() + done.rows_affected() > 0 {
            audit::insert(&mut tx, audit).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn block_jti(&self, entry: &BlockedJti, audit: &AuditEntry) -> Result<bool, Error> {
        blocklist::insert(self, entry, audit).await
    }

    async fn blocked_jtis(
        &self,
        after_seq: i64,
        added_since_ms: i64,
        live_after: i64,
        limit: u32,
    ) -> Result<Vec<BlockedJti>, Error> {
        blocklist::since(self, after_seq, added_since_ms, live_after, limit).await
    }

    async fn purge_blocked_jtis(
        &self,
        expired_before: i64,
        audit: &AuditEntry,
    ) -> Result<u64, Error> {
        blocklist::purge(self, expired_before, audit).await
    }
}
