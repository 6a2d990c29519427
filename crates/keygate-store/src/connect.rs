//! Opening a store: the URL picks the backend, the pool is sized for it,
//! and pending migrations run before the store is handed out. The error
//! says whose move it is: a bad URL is the operator's, an unreachable
//! server is the network's or the database's, a failed migration is the
//! schema's.

use std::path::PathBuf;

use keygate_core::Error;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

use super::{
    Backend, ConnectOptions, ListenUrl, POSTGRES_POOL, SQLITE_POOL, SQLITE_PRAGMAS, SqlStore,
    migrate, private_sqlite_files, sqlite_url,
};

/// Why [`connect`] gave no store.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No backend keygate has, or not a URL: the configuration is wrong.
    #[error("invalid database_url: {0}")]
    Url(String),
    /// The SQLite file could not be created (a missing directory, no
    /// permission).
    #[error("storage error: cannot create {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The database did not answer, or refused the connection.
    #[error("storage error: cannot connect to {backend}: {source}")]
    Unreachable {
        backend: &'static str,
        source: sqlx::Error,
    },
    /// Connected, but the schema could not be brought up to date (or it is
    /// newer than this binary).
    #[error(transparent)]
    Migrate(Error),
}

/// For callers that speak the domain's error: a bad URL is `Invalid`,
/// the rest are storage errors (never NotFound), worded as before.
impl From<ConnectError> for Error {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Url(reason) => Error::invalid("database_url", reason),
            ConnectError::Migrate(e) => e,
            other => {
                let text = other.to_string();
                let text = text.strip_prefix("storage error: ").unwrap_or(&text);
                Error::Storage(text.to_owned())
            }
        }
    }
}

/// Connects to the database named by `database_url` (`sqlite://path`,
/// `sqlite:path`, `postgres://...` or `postgresql://...`), applies pending
/// migrations, and refuses a database whose schema is newer than this binary.
pub async fn connect(database_url: &str, opts: ConnectOptions) -> Result<SqlStore, ConnectError> {
    sqlx::any::install_default_drivers();
    let backend = backend_of(database_url)?;
    let (url, pool) = match backend {
        Backend::Sqlite => sqlite_pool(database_url, &opts)?,
        Backend::Postgres => {
            let size = opts.max_connections.unwrap_or(POSTGRES_POOL);
            (
                database_url.to_owned(),
                AnyPoolOptions::new().max_connections(size.max(1)),
            )
        }
    };
    let any_opts: AnyConnectOptions = url
        .parse()
        .map_err(|e: sqlx::Error| ConnectError::Url(format!("cannot be parsed: {e}")))?;
    let pool = pool
        .acquire_timeout(opts.acquire_timeout)
        .connect_with(any_opts)
        .await
        .map_err(|source| ConnectError::Unreachable {
            backend: backend.as_str(),
            source,
        })?;
    let listen_url = (backend == Backend::Postgres).then(|| ListenUrl(url.as_str().into()));
    let store = SqlStore {
        pool,
        backend,
        listen_url,
        nonces: Default::default(),
    };
    if let Err(e) = migrate::run(&store.pool, backend).await {
        store.close().await;
        return Err(ConnectError::Migrate(e));
    }
    Ok(store)
}

fn backend_of(database_url: &str) -> Result<Backend, ConnectError> {
    let scheme = database_url.split(':').next().unwrap_or_default();
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => Ok(Backend::Sqlite),
        "postgres" | "postgresql" => Ok(Backend::Postgres),
        _ => Err(ConnectError::Url(
            "must start with sqlite:, sqlite://, postgres:// or postgresql://".into(),
        )),
    }
}

/// A file database gets private files and a pool; an in-memory one lives
/// only as long as its one connection, which is therefore never closed.
fn sqlite_pool(
    database_url: &str,
    opts: &ConnectOptions,
) -> Result<(String, AnyPoolOptions), ConnectError> {
    let (url, in_memory) = sqlite_url(database_url);
    if !in_memory {
        private_sqlite_files(&url)?;
    }
    let size = if in_memory {
        1
    } else {
        opts.max_connections.unwrap_or(SQLITE_POOL)
    };
    let mut pool = AnyPoolOptions::new()
        .max_connections(size.max(1))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                sqlx::raw_sql(SQLITE_PRAGMAS).execute(&mut *conn).await?;
                Ok(())
            })
        });
    if in_memory {
        pool = pool
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    }
    Ok((url, pool))
}
