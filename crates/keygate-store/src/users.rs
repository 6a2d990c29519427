//! `UserStore`: users and their argon2id password hashes. Every mutating
//! call writes its audit entry in the same transaction. The hash is only
//! read by `find_user_by_username`, the login path.

use async_trait::async_trait;
use keygate_core::Error;
use keygate_core::model::{AuditEntry, PageRequest, Tenant};
use keygate_core::store::UserStore;
use keygate_core::users::{Claims, PhcHash, Role, UserFilter, UserId, UserRecord, Username};
use sqlx::any::AnyRow;

use crate::rows::{self, SqlBuilder, col};
use crate::{SqlStore, audit, db, feed};
use keygate_core::feed::Change;

const USER_COLUMNS: &str = "seq, id, username, roles, tenant, claims, disabled, \
     sessions_cutoff_ms, created_at, updated_at, version";

fn bad(column: &str, what: impl std::fmt::Display) -> Error {
    Error::Storage(format!(
        "unreadable stored value in column {column}: {what}"
    ))
}

fn json<T: serde::de::DeserializeOwned>(row: &AnyRow, name: &str) -> Result<T, Error> {
    let text: String = col(row, name)?;
    serde_json::from_str(&text).map_err(|e| bad(name, e))
}

fn user_record(row: &AnyRow) -> Result<(i64, UserRecord), Error> {
    let id: String = col(row, "id")?;
    let tenant = col::<Option<String>>(row, "tenant")?
        .map(|t| Tenant::parse(&t).map_err(|e| bad("tenant", e)))
        .transpose()?;
    let disabled = match col::<i64>(row, "disabled")? {
        0 => false,
        1 => true,
        other => return Err(bad("disabled", other)),
    };
    let record = UserRecord {
        id: UserId::parse(&id).map_err(|e| bad("id", e))?,
        username: col(row, "username")?,
        roles: json::<Vec<Role>>(row, "roles")?,
        tenant,
        claims: json::<Claims>(row, "claims")?,
        disabled,
        sessions_cutoff_ms: col(row, "sessions_cutoff_ms")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
        version: col(row, "version")?,
    };
    Ok((col(row, "seq")?, record))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

#[async_trait]
impl UserStore for SqlStore {
    async fn insert_user(
        &self,
        user: &UserRecord,
        password: &PhcHash,
        audit: &AuditEntry,
    ) -> Result<(), Error> {
        let username = Username::parse(&user.username)?;
        let roles = rows::to_json("roles", &user.roles)?;
        let claims = rows::to_json("claims", &user.claims)?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO users (id, username, username_norm, password_hash, roles, tenant, \
             claims, disabled, sessions_cutoff_ms, created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(user.id.as_str())
        .bind(username.as_str())
        .bind(username.normalized())
        .bind(password.as_str())
        .bind(roles)
        .bind(user.tenant.as_ref().map(|t| t.as_str()))
        .bind(claims)
        .bind(i64::from(user.disabled))
        .bind(user.sessions_cutoff_ms)
        .bind(user.created_at)
        .bind(user.updated_at)
        .bind(user.version)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            // The id is 95 random bits: a collision is the username.
            if is_unique_violation(&e) {
                Error::AlreadyExists("a user with this username")
            } else {
                db(e)
            }
        })?;
        audit::insert(&mut tx, audit).await?;
        // A cut-off cache may hold "no such user" for this id.
        let changed = Change::UserCutoff {
            user_id: user.id.clone(),
        };
        feed::append(&mut tx, self.backend, changed).await?;
        tx.commit().await.map_err(db)
    }

    async fn get_user(&self, id: &UserId) -> Result<Option<UserRecord>, Error> {
        let mut q = SqlBuilder::new("SELECT ");
        q.push(USER_COLUMNS).push(" FROM users WHERE id = ");
        q.bind(id.as_str().to_owned())?;
        let row = q.build().fetch_optional(&self.pool).await.map_err(db)?;
        row.map(|r| user_record(&r).map(|(_, u)| u)).transpose()
    }

    async fn find_user_by_username(
        &self,
        normalized: &str,
    ) -> Result<Option<(UserRecord, PhcHash)>, Error> {
        let mut q = SqlBuilder::new("SELECT ");
        q.push(USER_COLUMNS)
            .push(", password_hash FROM users WHERE username_norm = ");
        q.bind(normalized.to_owned())?;
        let Some(row) = q.build().fetch_optional(&self.pool).await.map_err(db)? else {
            return Ok(None);
        };
        let (_, user) = user_record(&row)?;
        let hash = PhcHash::from_stored(col(&row, "password_hash")?);
        Ok(Some((user, hash)))
    }

    async fn list_users(
        &self,
        filter: &UserFilter,
        page: PageRequest,
    ) -> Result<Vec<(i64, UserRecord)>, Error> {
        let mut q = SqlBuilder::new("SELECT ");
        q.push(USER_COLUMNS).push(" FROM users WHERE 1 = 1");
        if let Some(tenant) = &filter.tenant {
            q.push(" AND tenant = ").bind(tenant.as_str().to_owned())?;
        }
        if let Some(after) = page.after {
            q.push(" AND seq > ").bind(after)?;
        }
        q.push(" ORDER BY seq ASC LIMIT ")
            .bind(i64::from(page.limit))?;
        let found = q.build().fetch_all(&self.pool).await.map_err(db)?;
        found.iter().map(user_record).collect()
    }

    async fn update_user(
        &self,
        user: &UserRecord,
        password: Option<&PhcHash>,
        audit: &AuditEntry,
    ) -> Result<bool, Error> {
        let roles = rows::to_json("roles", &user.roles)?;
        let claims = rows::to_json("claims", &user.claims)?;
        let mut tx = self.begin_write().await?;
        // COALESCE keeps the stored hash when no new one is given.
        let done = sqlx::query(
            "UPDATE users SET roles = $2, claims = $3, disabled = $4, \
             sessions_cutoff_ms = $5, updated_at = $6, version = $7, \
             password_hash = COALESCE($8, password_hash) \
             WHERE id = $1 AND version = $9",
        )
        .bind(user.id.as_str())
        .bind(roles)
        .bind(claims)
        .bind(i64::from(user.disabled))
        .bind(user.sessions_cutoff_ms)
        .bind(user.updated_at)
        .bind(user.version)
        .bind(password.map(PhcHash::as_str))
        .bind(user.version.saturating_sub(1))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            // Dropping the transaction rolls it back.
            return Ok(false);
        }
        audit::insert(&mut tx, audit).await?;
        let changed = Change::UserCutoff {
            user_id: user.id.clone(),
        };
        feed::append(&mut tx, self.backend, changed).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }
}
