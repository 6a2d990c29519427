//! Why the server did not start, sorted by what the operator must do, so
//! `main` can exit with a code a supervisor can act on (sysexits.h): fix
//! the configuration, wait for a dependency, or report a bug.

use keygate_store::ConnectError;

use crate::config::ConfigError;

/// `keygate serve` and `keygate init` exit with these; 0 is success and 2
/// a command line clap refused.
pub mod exit {
    /// EX_DATAERR: the database's schema is not one this binary can use
    /// (newer than it, or a migration failed).
    pub const DATA: u8 = 65;
    /// EX_UNAVAILABLE: a dependency is down or busy: the database or Redis
    /// does not answer, another server holds the SQLite file.
    pub const UNAVAILABLE: u8 = 69;
    /// EX_SOFTWARE: an internal error.
    pub const SOFTWARE: u8 = 70;
    /// EX_OSERR: the operating system refused (a listening address in use).
    pub const OSERR: u8 = 71;
    /// EX_CANTCREAT: a file keygate must create cannot be (the database,
    /// a generated secret).
    pub const CANTCREAT: u8 = 73;
    /// EX_CONFIG: the configuration is wrong (file, environment, flags,
    /// secrets, TLS files).
    pub const CONFIG: u8 = 78;
}

/// The exit codes, for `--help`.
pub const EXIT_CODES_HELP: &str = "Exit codes of serve and init: 0 ok; 2 bad command line; \
     65 the database schema is not usable by this version; 69 a dependency is down \
     (database, Redis, or another server holds the SQLite file); 70 internal error; 71 cannot \
     listen; 73 cannot create a file; 78 bad configuration.";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The pepper or master key: missing, unreadable, or not the one the
    /// database was first used with.
    #[error("{0}")]
    Secret(String),
    #[error("cannot open the database: {0}")]
    Database(#[from] ConnectError),
    /// The certificate or key files.
    #[error("{0}")]
    Tls(String),
    /// A dependency that does not answer (Redis, the feed's connection, a
    /// storage call after connecting), or a resource held by another
    /// process.
    #[error("{0}")]
    Unavailable(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Internal(String),
}

impl StartError {
    /// A domain error met while starting: storage failures mean the
    /// database went away, the rest is ours.
    pub fn from_core(context: &str, e: keygate_core::Error) -> Self {
        match e {
            keygate_core::Error::Storage(_) => StartError::Unavailable(format!("{context}: {e}")),
            keygate_core::Error::Invalid { .. } => {
                StartError::Config(ConfigError::invalid(format!("{context}: {e}")))
            }
            _ => StartError::Internal(format!("{context}: {e}")),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Config(_) | StartError::Secret(_) | StartError::Tls(_) => exit::CONFIG,
            StartError::Database(e) => match e {
                ConnectError::Url(_) => exit::CONFIG,
                ConnectError::Create { .. } => exit::CANTCREAT,
                ConnectError::Unreachable { .. } => exit::UNAVAILABLE,
                ConnectError::Migrate(_) => exit::DATA,
            },
            StartError::Unavailable(_) => exit::UNAVAILABLE,
            StartError::Listen { .. } => exit::OSERR,
            StartError::Internal(_) => exit::SOFTWARE,
        }
    }
}
