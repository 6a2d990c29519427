//! Embedded migrations and their runner.
//!
//! Applied versions are recorded in `keygate_migrations`. Each migration runs
//! in its own transaction together with its bookkeeping row. On PostgreSQL the
//! runner holds a session advisory lock so nodes starting together apply each
//! migration once; on SQLite each migration's `BEGIN IMMEDIATE` serializes
//! runners and the version is re-checked inside it. A database that records a
//! version newer than this binary knows is refused.
//!
//! Versions need not be contiguous: each is applied if it is not recorded,
//! so migrations developed in parallel (3, 4, 5 beside 6) can land in any
//! order and a database that has 6 still gets 3 to 5 when they arrive.
//! Each migration must therefore depend only on versions below the lowest
//! one that could still be missing (for 6: versions 1 and 2).

use keygate_core::Error;
use sqlx::Connection;
use sqlx::{AnyConnection, AnyPool};

use crate::rows::col;
use crate::{Backend, db};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "settings",
        sqlite: include_str!("../migrations/sqlite/0002_settings.sql"),
        postgres: include_str!("../migrations/postgres/0002_settings.sql"),
    },
    Migration {
        version: 3,
        name: "signing_keys",
        sqlite: include_str!("../migrations/sqlite/0003_signing_keys.sql"),
        postgres: include_str!("../migrations/postgres/0003_signing_keys.sql"),
    },
    Migration {
        version: 4,
        name: "users",
        sqlite: include_str!("../migrations/sqlite/0004_users.sql"),
        postgres: include_str!("../migrations/postgres/0004_users.sql"),
    },
    Migration {
        version: 5,
        name: "sessions",
        sqlite: include_str!("../migrations/sqlite/0005_sessions.sql"),
        postgres: include_str!("../migrations/postgres/0005_sessions.sql"),
    },
    Migration {
        version: 6,
        name: "hmac_secrets",
        sqlite: include_str!("../migrations/sqlite/0006_hmac_secrets.sql"),
        postgres: include_str!("../migrations/postgres/0006_hmac_secrets.sql"),
    },
    Migration {
        version: 9,
        name: "hmac_nonces",
        sqlite: include_str!("../migrations/sqlite/0009_hmac_nonces.sql"),
        postgres: include_str!("../migrations/postgres/0009_hmac_nonces.sql"),
    },
    Migration {
        version: 10,
        name: "audit_tallies",
        sqlite: include_str!("../migrations/sqlite/0010_audit_tallies.sql"),
        postgres: include_str!("../migrations/postgres/0010_audit_tallies.sql"),
    },
    Migration {
        version: 11,
        name: "cluster_feed",
        sqlite: include_str!("../migrations/sqlite/0011_cluster_feed.sql"),
        postgres: include_str!("../migrations/postgres/0011_cluster_feed.sql"),
    },
    Migration {
        version: 12,
        name: "key_usage",
        sqlite: include_str!("../migrations/sqlite/0012_key_usage.sql"),
        postgres: include_str!("../migrations/postgres/0012_key_usage.sql"),
    },
    Migration {
        version: 13,
        name: "console_sessions",
        sqlite: include_str!("../migrations/sqlite/0013_console_sessions.sql"),
        postgres: include_str!("../migrations/postgres/0013_console_sessions.sql"),
    },
    Migration {
        version: 14,
        name: "clients",
        sqlite: include_str!("../migrations/sqlite/0014_clients.sql"),
        postgres: include_str!("../migrations/postgres/0014_clients.sql"),
    },
    Migration {
        version: 15,
        name: "hmac_nonce_log",
        sqlite: include_str!("../migrations/sqlite/0015_hmac_nonce_log.sql"),
        postgres: include_str!("../migrations/postgres/0015_hmac_nonce_log.sql"),
    },
];

/// The newest schema version this binary knows.
pub const LATEST_VERSION: i64 = 15;

/// `pg_advisory_lock` key held while migrating ("kgmigrat" in ASCII).
const PG_LOCK_KEY: i64 = 0x6b67_6d69_6772_6174;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS keygate_migrations (\
     version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

/// When a migration was applied: bookkeeping for operators, not domain time.
fn now_secs() -> i64 {
    use keygate_core::MillisClock;
    keygate_core::SystemClock.now_secs()
}

/// Applies every pending migration, then rekeys usernames written before
/// RFC 8265 keys (once).
pub(crate) async fn run(pool: &AnyPool, backend: Backend) -> Result<(), Error> {
    let mut conn = pool.acquire().await.map_err(db)?;
    if backend == Backend::Sqlite {
        apply(&mut conn, backend).await?;
        return crate::username_keys::rekey(&mut conn, backend).await;
    }
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(PG_LOCK_KEY)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    let result = match apply(&mut conn, backend).await {
        Ok(()) => crate::username_keys::rekey(&mut conn, backend).await,
        Err(e) => Err(e),
    };
    let unlocked = match &result {
        Ok(()) => sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(PG_LOCK_KEY)
            .execute(&mut *conn)
            .await
            .is_ok(),
        Err(_) => false,
    };
    if !unlocked {
        // Ending the session is the sure way to release its advisory lock.
        if let Err(e) = conn.detach().close().await {
            tracing::warn!(error = %e, "closing the migration connection failed");
        }
    }
    result
}

async fn applied_versions(conn: &mut AnyConnection) -> Result<Vec<i64>, Error> {
    let found = sqlx::query("SELECT version FROM keygate_migrations ORDER BY version")
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    found.iter().map(|row| col::<i64>(row, "version")).collect()
}

async fn apply(conn: &mut AnyConnection, backend: Backend) -> Result<(), Error> {
    sqlx::raw_sql(CREATE_TABLE)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    let applied = applied_versions(conn).await?;
    if let Some(&newest) = applied.last()
        && newest > LATEST_VERSION
    {
        return Err(Error::Storage(format!(
            "the database schema is at version {newest}, newer than the {LATEST_VERSION} \
             this keygate binary knows; run a newer keygate (refusing to start)"
        )));
    }
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let mut tx = match backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => conn.begin().await,
        }
        .map_err(db)?;
        // Another runner may have applied it since we looked (SQLite only:
        // PostgreSQL runners are serialized by the advisory lock).
        let done = sqlx::query("SELECT version FROM keygate_migrations WHERE version = $1")
            .bind(m.version)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if done.is_some() {
            continue;
        }
        let sql = match backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        // Without arguments both drivers run a multi-statement script: SQLite
        // steps through it, PostgreSQL sends it as one simple query.
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(|e| {
            Error::Storage(format!("migration {} ({}) failed: {e}", m.version, m.name))
        })?;
        sqlx::query(
            "INSERT INTO keygate_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(now_secs())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            backend = backend.as_str(),
            "applied migration"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{LATEST_VERSION, MIGRATIONS};

    #[test]
    fn migrations_are_ordered_and_latest_is_last() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(versions.last().copied(), Some(LATEST_VERSION));
    }

    #[test]
    fn gaps_in_the_version_sequence_are_allowed() {
        // 3 to 5 are developed elsewhere; until they land 6 follows 2.
        assert!(MIGRATIONS.iter().any(|m| m.version == 6));
        assert!(MIGRATIONS.iter().all(|m| m.version <= LATEST_VERSION));
    }
}
