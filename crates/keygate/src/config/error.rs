//! Why a configuration was refused. Every variant is the operator's to fix
//! (the file, the environment or a flag), which is what lets `main` exit
//! with EX_CONFIG for all of them and something else for a database that is
//! down.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML, an unknown key, or a value of the wrong type.
    #[error("config file {}: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    /// A setting outside what is allowed; the message names the setting.
    #[error("{0}")]
    Invalid(String),
}

impl ConfigError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ConfigError::Invalid(message.into())
    }
}
