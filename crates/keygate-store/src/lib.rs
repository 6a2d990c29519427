//! keygate-store: the SQL implementation of keygate-core's `Store` traits.
//!
//! It owns the schema (embedded migrations and their runner), the connection
//! pool, and every SQL statement keygate runs. One code path serves SQLite and
//! PostgreSQL through sqlx's `Any` driver: the URL scheme picks the backend,
//! statements use `$n` placeholders (which both accept), times are integer
//! Unix seconds and JSON values are stored as text.
//!
//! - `connect`: opening the pool and migrating, and why that can fail.
//! - `migrate`: the embedded migrations and the runner that applies them.
//! - `keys`: `KeyStore` (keys and their secrets); `key_search`: the keys
//!   list's filters and per-status counts.
//! - `audit`: `AuditStore` (the audit log).
//! - `signing_keys`: `SigningKeyStore` (JWT signing keys, sealed).
//! - `users`: `UserStore` (users and their password hashes).
//! - `sessions`, `blocklist`: `SessionStore` (refresh-token families, the
//!   `jti` blocklist).
//! - `clients`: `ClientStore` (mTLS clients and their certificate matchers).
//! - `console`: `ConsoleStore` (the dashboard's sessions).
//! - `hmac`: `HmacSecretStore` (sealed request-signing secrets).
//! - `usage`: `UsageStore` (verification counts per key, hour and outcome).
//! - `nonces`: core's `NonceStore` (signed-request nonces and their
//!   per-key quota), a seam of its own beside `Store`.
//! - `feed`: the invalidation feed (appended inside every mutating
//!   transaction that can make a cached answer wrong), core's `FeedStore`
//!   (reads, heartbeats, acks); `listen`: the PostgreSQL `FeedListener`.
//! - `rows`: row decoding and the small dynamic-SQL builder; `revoke`: the
//!   revocation statement keys and clients share.
#![forbid(unsafe_code)]

mod audit;
mod blocklist;
mod clients;
mod connect;
mod console;
mod feed;
mod hmac;
mod key_search;
mod keys;
mod listen;
mod migrate;
mod nonces;
mod revoke;
mod rows;
mod sessions;
mod signing_keys;
mod usage;
mod username_keys;
mod users;

use std::time::Duration;

use async_trait::async_trait;
use keygate_core::Error;
use keygate_core::store::Store;
use sqlx::AnyPool;
use sqlx::Transaction;
use sqlx::any::Any;

pub use connect::{ConnectError, connect};
pub use keygate_core::feed::{FeedStore, NodeBeat, NodeRow};
pub use listen::{FeedListener, LISTENER_APPLICATION_NAME, Notice};
pub use migrate::LATEST_VERSION;

/// Which database a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Pool settings for [`connect`].
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Pool size; `None` picks the backend's default (8 for SQLite, 16 for
    /// PostgreSQL; always 1 for an in-memory SQLite database).
    pub max_connections: Option<u32>,
    /// How long a call waits for a pooled connection before it fails with
    /// `Error::Storage`.
    pub acquire_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: None,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

const SQLITE_POOL: u32 = 8;
const POSTGRES_POOL: u32 = 16;

/// Pragmas set on every SQLite connection: wait for locks instead of failing
/// at once, write-ahead logging, a write acknowledged only once it is durable,
/// and enforced foreign keys.
// mmap_size lets reads of the key index come straight from the page cache
// instead of a pread() system call per B-tree page: an uncached verification
// reads several pages. Writes still go through the WAL as before.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; \
     PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = FULL; \
     PRAGMA foreign_keys = ON; \
     PRAGMA mmap_size = 1073741824; \
     PRAGMA cache_size = -16384;";

/// The keygate store over a SQLite or PostgreSQL pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// PostgreSQL only: where `feed_listener` opens its own session.
    listen_url: Option<ListenUrl>,
    /// SQLite only: where signed-request nonces queue for group commit.
    nonces: std::sync::Arc<nonces::NonceQueue>,
}

/// A database URL that may hold a password: never printed.
#[derive(Clone)]
struct ListenUrl(std::sync::Arc<str>);

impl ListenUrl {
    fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ListenUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ListenUrl(..)")
    }
}

/// Turns a database error into the domain's storage error (never NotFound).
pub(crate) fn db(e: sqlx::Error) -> Error {
    Error::Storage(e.to_string())
}

/// Splits a SQLite URL into the database part and its query string, and adds
/// `mode=rwc` (create the file if missing) unless a mode was given.
fn sqlite_url(url: &str) -> (String, bool) {
    let (db, params) = match url.split_once('?') {
        Some((db, params)) => (db, Some(params)),
        None => (url, None),
    };
    let in_memory = db.ends_with(":memory:")
        || params.is_some_and(|p| p.split('&').any(|kv| kv == "mode=memory"));
    let has_mode = params.is_some_and(|p| p.split('&').any(|kv| kv.starts_with("mode=")));
    let mut out = db.to_owned();
    match (params, has_mode || in_memory) {
        (Some(p), true) => out = format!("{out}?{p}"),
        (Some(p), false) => out = format!("{out}?{p}&mode=rwc"),
        (None, true) => {}
        (None, false) => out.push_str("?mode=rwc"),
    }
    (out, in_memory)
}

/// The database holds password hashes and sealed keys: its file is created
/// 0600 before SQLite opens it (SQLite would make it 0644 under the usual
/// umask), and SQLite gives its `-wal`, `-shm` and `-journal` files the
/// database file's mode. Files an older version left readable by others
/// are made private.
fn private_sqlite_files(url: &str) -> Result<(), ConnectError> {
    use std::str::FromStr;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .map_err(|e| ConnectError::Url(format!("cannot be parsed: {e}")))?;
    let path = options.get_filename();
    let creates = url
        .split_once('?')
        .is_some_and(|(_, p)| p.split('&').any(|kv| kv == "mode=rwc"));
    if creates {
        create_private(path).map_err(|source| ConnectError::Create {
            path: path.to_owned(),
            source,
        })?;
    }
    let mut names = vec![path.to_path_buf()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        names.push(name.into());
    }
    for name in names {
        make_private(&name);
    }
    Ok(())
}

#[cfg(unix)]
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private(_: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn make_private(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return;
    }
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700)) {
        Ok(()) => tracing::warn!(
            path = %path.display(),
            was = format!("{mode:o}"),
            "the database file was readable by other users; made it private to keygate's user"
        ),
        Err(e) => tracing::error!(
            path = %path.display(),
            error = %e,
            "the database file is readable by other users and cannot be made private; chmod 600 it"
        ),
    }
}

#[cfg(not(unix))]
fn make_private(_: &std::path::Path) {}

impl SqlStore {
    pub fn backend_kind(&self) -> Backend {
        self.backend
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a transaction that will write. On SQLite it takes the write
    /// lock up front (`BEGIN IMMEDIATE`), so a transaction that reads first
    /// never fails to upgrade its lock; busy_timeout makes it wait instead.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>, Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
        .map_err(db)
    }

    /// Makes this transaction the only one checking and filling the quota
    /// called `name` until it ends: a transaction-scoped advisory lock on
    /// PostgreSQL (so concurrent creates never overshoot the quota); on
    /// SQLite `begin_write`'s BEGIN IMMEDIATE already made it the only
    /// writer.
    pub(crate) async fn lock_quota(
        &self,
        conn: &mut sqlx::AnyConnection,
        name: &str,
    ) -> Result<(), Error> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(name)
                .execute(conn)
                .await
                .map_err(db)?;
        }
        Ok(())
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        self.backend.as_str()
    }

    async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String, Error> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO keygate_settings (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let row = sqlx::query("SELECT value FROM keygate_settings WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let stored = rows::col::<String>(&row, "value")?;
        tx.commit().await.map_err(db)?;
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{ConnectOptions, connect, sqlite_url};
    use crate::rows::col;

    #[test]
    fn sqlite_urls_get_create_mode() {
        assert_eq!(sqlite_url("sqlite://a.db").0, "sqlite://a.db?mode=rwc");
        assert_eq!(sqlite_url("sqlite:a.db").0, "sqlite:a.db?mode=rwc");
        assert_eq!(
            sqlite_url("sqlite:///tmp/a.db?cache=private").0,
            "sqlite:///tmp/a.db?cache=private&mode=rwc"
        );
        assert_eq!(
            sqlite_url("sqlite://a.db?mode=ro").0,
            "sqlite://a.db?mode=ro"
        );
        assert_eq!(
            sqlite_url("sqlite::memory:"),
            ("sqlite::memory:".to_owned(), true)
        );
    }

    #[tokio::test]
    async fn every_sqlite_connection_gets_the_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("new.db").display());
        let store = connect(&url, ConnectOptions::default()).await.unwrap();
        // Hold several connections at once so more than one is opened.
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(store.pool.acquire().await.unwrap());
        }
        for conn in &mut held {
            let one = |sql: &'static str| sqlx::query(sql);
            let mode = one("PRAGMA journal_mode")
                .fetch_one(&mut **conn)
                .await
                .unwrap();
            assert_eq!(col::<String>(&mode, "journal_mode").unwrap(), "wal");
            let sync = one("PRAGMA synchronous")
                .fetch_one(&mut **conn)
                .await
                .unwrap();
            assert_eq!(col::<i64>(&sync, "synchronous").unwrap(), 2, "FULL");
            let busy = one("PRAGMA busy_timeout")
                .fetch_one(&mut **conn)
                .await
                .unwrap();
            assert_eq!(col::<i64>(&busy, "timeout").unwrap(), 5000);
            let fk = one("PRAGMA foreign_keys")
                .fetch_one(&mut **conn)
                .await
                .unwrap();
            assert_eq!(col::<i64>(&fk, "foreign_keys").unwrap(), 1);
        }
        drop(held);
        assert_eq!(store.backend_kind(), super::Backend::Sqlite);
        store.close().await;
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_database_and_its_wal_and_shm_are_private() {
        use keygate_core::store::Store;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |name: &str| {
            std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        let url = format!("sqlite://{}", dir.path().join("new.db").display());
        let store = connect(&url, ConnectOptions::default()).await.unwrap();
        store.setting_or_insert("x", "y").await.unwrap();
        for name in ["new.db", "new.db-wal", "new.db-shm"] {
            assert_eq!(mode(name), 0o600, "{name}");
        }
        store.close().await;

        // One made readable by others (an older keygate, a copy) is made
        // private again.
        let old = dir.path().join("old.db");
        std::fs::write(&old, b"").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        let url = format!("sqlite:{}", old.display());
        let store = connect(&url, ConnectOptions::default()).await.unwrap();
        store.setting_or_insert("x", "y").await.unwrap();
        for name in ["old.db", "old.db-wal", "old.db-shm"] {
            assert_eq!(mode(name), 0o600, "{name}");
        }
        store.close().await;
    }

    #[tokio::test]
    async fn in_memory_sqlite_works_and_bad_schemes_are_refused() {
        use keygate_core::store::{KeyStore, Store};
        let store = connect("sqlite::memory:", ConnectOptions::default())
            .await
            .unwrap();
        store.ping().await.unwrap();
        assert_eq!(store.count_keys().await.unwrap(), 0);
        store.close().await;
        let err = connect("mysql://localhost/x", ConnectOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, super::ConnectError::Url(_)), "{err:?}");
        assert!(matches!(
            keygate_core::Error::from(err),
            keygate_core::Error::Invalid {
                field: "database_url",
                ..
            }
        ));
    }
}
