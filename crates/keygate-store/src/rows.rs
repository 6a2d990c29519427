//! Row decoding, and the small builder for statements with optional filters.
//!
//! Stored data that does not parse back (bad JSON, a malformed id, an
//! out-of-range number) is reported as `Error::Storage`, never a panic.

use keygate_core::model::{
    AuditEntry, AuditRow, KeyRecord, Metadata, RateLimitSpec, Scope, SecretRecord, Tenant,
};
use keygate_core::{Error, KeyEnv, KeyId};
use sqlx::any::{Any, AnyArguments, AnyRow};
use sqlx::{Arguments, Encode, Row, Type};

/// The columns of `api_keys k`, each named with `AS` (SQLite leaves the name
/// of an unaliased `k.col` unspecified). A macro so it can go in `concat!`.
macro_rules! key_columns {
    () => {
        "k.seq AS seq, k.id AS id, k.name AS name, k.owner AS owner, k.tenant AS tenant, \
         k.scopes AS scopes, k.metadata AS metadata, k.env AS env, k.prefix AS prefix, \
         k.created_at AS created_at, k.updated_at AS updated_at, k.expires_at AS expires_at, \
         k.revoked_at AS revoked_at, k.last_used_at AS last_used_at, \
         k.rate_limit_limit AS rate_limit_limit, k.rate_limit_period AS rate_limit_period, \
         k.remaining AS remaining, k.version AS version"
    };
}
pub(crate) use key_columns;

pub(crate) const AUDIT_COLUMNS: &str =
    "seq, id, at, action, actor, target, tenant, request_id, detail, occurrences, last_at";

fn bad(column: &str, what: impl std::fmt::Display) -> Error {
    Error::Storage(format!(
        "unreadable stored value in column {column}: {what}"
    ))
}

/// Reads one column, turning a type mismatch into a storage error.
pub(crate) fn col<'r, T>(row: &'r AnyRow, name: &str) -> Result<T, Error>
where
    T: sqlx::Decode<'r, Any> + Type<Any>,
{
    row.try_get::<T, _>(name).map_err(|e| bad(name, e))
}

fn json<T: serde::de::DeserializeOwned>(row: &AnyRow, name: &str) -> Result<T, Error> {
    let text: String = col(row, name)?;
    serde_json::from_str(&text).map_err(|e| bad(name, e))
}

pub(crate) fn key_id(row: &AnyRow, name: &str) -> Result<KeyId, Error> {
    let text: String = col(row, name)?;
    KeyId::parse(&text).map_err(|e| bad(name, e))
}

pub(crate) fn hash(row: &AnyRow, name: &str) -> Result<[u8; 32], Error> {
    let bytes: Vec<u8> = col(row, name)?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| bad(name, format!("{} bytes, expected 32", bytes.len())))
}

fn small(row: &AnyRow, name: &str) -> Result<Option<u32>, Error> {
    col::<Option<i64>>(row, name)?
        .map(|v| u32::try_from(v).map_err(|e| bad(name, e)))
        .transpose()
}

/// A key row selected with [`key_columns!`], with its sequence.
pub(crate) fn key_record(row: &AnyRow) -> Result<(i64, KeyRecord), Error> {
    let tenant = col::<Option<String>>(row, "tenant")?
        .map(|t| Tenant::parse(&t).map_err(|e| bad("tenant", e)))
        .transpose()?;
    let env: String = col(row, "env")?;
    let env = KeyEnv::parse(&env).ok_or_else(|| bad("env", format!("{env:?} is not an env")))?;
    let rate_limit = match (
        small(row, "rate_limit_limit")?,
        small(row, "rate_limit_period")?,
    ) {
        (Some(limit), Some(period_seconds)) => Some(RateLimitSpec {
            limit,
            period_seconds,
        }),
        (None, None) => None,
        _ => {
            return Err(bad(
                "rate_limit_limit",
                "limit and period must both be set or both be null",
            ));
        }
    };
    let record = KeyRecord {
        id: key_id(row, "id")?,
        name: col(row, "name")?,
        owner: col(row, "owner")?,
        tenant,
        scopes: json::<Vec<Scope>>(row, "scopes")?,
        metadata: json::<Metadata>(row, "metadata")?,
        env,
        prefix: col(row, "prefix")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
        expires_at: col(row, "expires_at")?,
        revoked_at: col(row, "revoked_at")?,
        last_used_at: col(row, "last_used_at")?,
        rate_limit,
        remaining: col(row, "remaining")?,
        version: col(row, "version")?,
    };
    Ok((col(row, "seq")?, record))
}

/// A secret selected as `s_hash, s_pepper_version, s_created_at, s_expires_at`
/// beside its key's `id`.
pub(crate) fn secret_record(row: &AnyRow) -> Result<SecretRecord, Error> {
    Ok(SecretRecord {
        hash: hash(row, "s_hash")?,
        pepper_version: col(row, "s_pepper_version")?,
        key_id: key_id(row, "id")?,
        created_at: col(row, "s_created_at")?,
        expires_at: col(row, "s_expires_at")?,
    })
}

/// An audit row selected with [`AUDIT_COLUMNS`]; an event's `last_at` is
/// its `at`.
pub(crate) fn audit_row(row: &AnyRow) -> Result<AuditRow, Error> {
    let entry = audit_entry(row)?;
    let last_at = col::<Option<i64>>(row, "last_at")?.unwrap_or(entry.at);
    Ok(AuditRow {
        count: col(row, "occurrences")?,
        last_at,
        entry,
    })
}

fn audit_entry(row: &AnyRow) -> Result<AuditEntry, Error> {
    Ok(AuditEntry {
        id: col(row, "id")?,
        at: col(row, "at")?,
        action: col(row, "action")?,
        actor: col(row, "actor")?,
        target: col(row, "target")?,
        tenant: col(row, "tenant")?,
        request_id: col(row, "request_id")?,
        detail: json(row, "detail")?,
        seq: col(row, "seq")?,
    })
}

/// Serializes a value kept in a JSON text column.
pub(crate) fn to_json<T: serde::Serialize>(field: &str, value: &T) -> Result<String, Error> {
    serde_json::to_string(value)
        .map_err(|e| Error::Internal(format!("cannot serialize {field}: {e}")))
}

/// Builds a statement from constant SQL fragments and bound values, writing
/// `$n` placeholders. (sqlx's `QueryBuilder<Any>` writes `?`, which
/// PostgreSQL rejects.) User values only ever travel as bound arguments.
pub(crate) struct SqlBuilder {
    sql: String,
    args: AnyArguments,
    count: usize,
}

impl SqlBuilder {
    pub(crate) fn new(head: &'static str) -> Self {
        Self {
            sql: head.to_owned(),
            args: AnyArguments::default(),
            count: 0,
        }
    }

    pub(crate) fn push(&mut self, sql: &'static str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    pub(crate) fn bind<T>(&mut self, value: T) -> Result<&mut Self, Error>
    where
        T: for<'q> Encode<'q, Any> + Type<Any>,
    {
        self.args
            .add(value)
            .map_err(|e| Error::Internal(format!("cannot bind a query argument: {e}")))?;
        self.count += 1;
        self.sql.push('$');
        self.sql.push_str(&self.count.to_string());
        Ok(self)
    }

    /// The statement, ready to run.
    pub(crate) fn build(self) -> sqlx::query::Query<'static, Any, AnyArguments> {
        // Only `&'static str` fragments and generated placeholders are in it.
        sqlx::query_with(sqlx::AssertSqlSafe(self.sql), self.args)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::SqlBuilder;

    #[test]
    fn builder_numbers_placeholders() {
        let mut b = SqlBuilder::new("SELECT 1 WHERE a = ");
        b.bind(1_i64).unwrap();
        b.push(" AND b = ");
        b.bind("x".to_owned()).unwrap();
        assert_eq!(b.sql, "SELECT 1 WHERE a = $1 AND b = $2");
    }
}
