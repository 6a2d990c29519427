//! A database of its own for one test, on either backend.

use std::path::Path;

use crate::postgres::PgDatabase;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The URL of a SQLite file in `dir` (created on first connect).
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("keygate.db").display())
}

/// A database made for one test: a SQLite file in a temporary directory, or
/// a PostgreSQL database; both are gone once this drops.
pub struct TestDatabase {
    pub backend: Backend,
    pub url: String,
    // Held for their Drop, which removes the database.
    _dir: Option<tempfile::TempDir>,
    _pg: Option<PgDatabase>,
}

impl TestDatabase {
    /// None (after saying why) when PostgreSQL is asked for and not
    /// configured, a failure instead when services are required.
    pub async fn create(backend: Backend) -> Option<Self> {
        let (url, dir, pg) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                (sqlite_url(dir.path()), Some(dir), None)
            }
            Backend::Postgres => {
                let pg = PgDatabase::create().await?;
                (pg.url.clone(), None, Some(pg))
            }
        };
        Some(Self {
            backend,
            url,
            _dir: dir,
            _pg: pg,
        })
    }
}
