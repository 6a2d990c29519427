//! Revoking a row of a table that has `revoked_at`, `updated_at` and
//! `version` columns: the statement keys and clients share.

use keygate_core::Error;
use sqlx::AnyConnection;

use crate::db;

/// A table whose rows are revoked, and the name its `NotFound` carries.
pub(crate) struct Revocable {
    sql: &'static str,
    not_found: &'static str,
}

// The statement is built at compile time: sqlx takes only static SQL.
macro_rules! revoke_sql {
    ($table:literal) => {
        concat!(
            "UPDATE ",
            $table,
            " SET revoked_at = COALESCE(revoked_at, $2), \
             updated_at = CASE WHEN revoked_at IS NULL THEN $2 ELSE updated_at END, \
             version = CASE WHEN revoked_at IS NULL THEN version + 1 ELSE version END \
             WHERE id = $1"
        )
    };
}

pub(crate) const KEYS: Revocable = Revocable {
    sql: revoke_sql!("api_keys"),
    not_found: "key",
};

pub(crate) const CLIENTS: Revocable = Revocable {
    sql: revoke_sql!("clients"),
    not_found: "client",
};

/// Marks the row `id` revoked at `at`, inside the caller's transaction. The
/// first revocation wins; it bumps the version so an update racing with it
/// turns stale and re-reads the revoked row. A repeated revoke changes
/// nothing and still succeeds (the caller's feed entry lets `?wait=all` wait
/// either way); no such row is `NotFound`.
pub(crate) async fn mark_revoked(
    conn: &mut AnyConnection,
    table: &Revocable,
    id: &str,
    at: i64,
) -> Result<(), Error> {
    let done = sqlx::query(table.sql)
        .bind(id)
        .bind(at)
        .execute(conn)
        .await
        .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound(table.not_found));
    }
    Ok(())
}
