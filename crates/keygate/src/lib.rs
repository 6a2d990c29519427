//! keygate, the binary's library: configuration, the admin HTTP API, the
//! server's assembly, and the command-line clients.
//!
//! - `config`: defaults < TOML < `KEYGATE_*` environment < flags.
//! - `secrets`: the pepper, configured or generated beside a SQLite database.
//! - `server`: `build` (storage, services) and `run(listener, app, shutdown)`.
//! - `http`: the axum router, one file per resource, and the error mapping.
//! - `gateway`: the authenticating reverse proxy and forward-auth
//!   (keygate-gateway, re-exported under its old path).
//! - `metrics`: Prometheus counters and histograms.
//! - `cluster`: the invalidation feed applied to this node's caches, the
//!   watcher and heartbeats on PostgreSQL, the SQLite single-node lock.
//! - `cli`: `keygate keys ...` and `keygate users ...` against a running
//!   server; `keygate token ...` verifies or decodes a JWT with keygate-verify.
#![forbid(unsafe_code)]

pub mod cli;
pub mod cluster;
pub mod config;
pub mod file_mode;
pub use keygate_gateway as gateway;
pub mod http;
pub mod metrics;
pub mod secrets;
pub mod server;
pub mod tls;
