//! keygate-api: the admin API's request and response bodies, written once.
//!
//! The server deserializes the requests and serializes the responses; the
//! CLI serializes the requests and deserializes the responses; the OpenAPI
//! document is derived from the same types. A renamed field is a compile
//! error in every one of them rather than a failure at run time.
//!
//! - `keys`: the key lifecycle and verification.
//! - `clients`: mTLS clients and the certificate matchers that name them.
//! - `users`: user accounts.
//! - `sessions`: login, refresh and the OAuth token response.
//! - `signing`: HMAC signing secrets and the JWT signing keys.
//! - `audit`: the audit trail.
//! - `cluster`: the nodes sharing a database, and `?wait=all` answers.
//! - `common`: `Page<T>` (every list), rate limits, propagation, and the
//!   absent-vs-null helper.
//!
//! Secrets (keys, passwords, tokens) are `SecretString`: printed as
//! `[redacted]` by a derived `Debug`, serialized as their value. Times are
//! RFC 3339 strings.
#![forbid(unsafe_code)]

pub mod audit;
pub mod clients;
pub mod cluster;
pub mod common;
pub mod keys;
pub mod sessions;
pub mod signing;
pub mod users;

pub use keygate_secret::SecretString;
