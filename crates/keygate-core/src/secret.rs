//! The redacting secret type, `Secret<T>` (`SecretString`): `Debug` and
//! `Display` print `[redacted]`, serde is transparent, the value is reached
//! only by `expose()` and wiped on drop. It lives in the tiny
//! `keygate-secret` crate so the wire types (`keygate-api`) can hold secrets
//! without depending on the domain; this module is its name inside core.

pub use keygate_secret::{REDACTED, Secret, SecretString};
