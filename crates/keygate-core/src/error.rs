//! The domain error. The HTTP layer maps each variant to a status and a stable
//! code in one place; nothing here knows about HTTP.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("the key is not in keygate's format or its checksum is wrong")]
    MalformedKey,
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("the key is revoked")]
    Revoked,
    #[error("the record changed while it was being updated; retry")]
    Conflict,
    /// A unique name is taken (a username, under RFC 8265 mapping).
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    /// A quota is full (live keys of a tenant): nothing was written, and
    /// retrying will not help until something is revoked.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// Storage failed. Never turned into "not found": the caller sees a 503.
    #[error("storage error: {0}")]
    Storage(String),
    /// A token must be encrypted to a recipient whose key keygate has not
    /// fetched yet (its JWKS is unreachable): refused, never sent in the
    /// clear. The text names the source, for the log.
    #[error("the recipient's encryption key is unavailable: {0}")]
    KeyUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
