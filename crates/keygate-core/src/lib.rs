//! keygate-core: the domain, with no HTTP and no SQL.
//!
//! - `apikey`: the key format (`kg_<env>_<secret><check>`) and key ids.
//! - `audit`: failed authentications tallied per source and minute, and
//!   the audit retention.
//! - `pepper`: HMAC-SHA256 under the server's pepper, the only form stored.
//! - `model`: records and validated values (`Scope`, `Tenant`, ...).
//! - `store`: the storage traits that keygate-store implements.
//! - `service`: the key service, creation and reads behind an `Admin`
//!   capability; `lifecycle`: update, rotate, revoke, audit listing.
//! - `verify`: the verification hot path and its codes.
//! - `cache`, `ratelimit`, `usage`: the in-process state verification uses.
//! - `secret`: `Secret<T>`, the redacting wrapper for passwords, tokens and
//!   credential-bearing URLs (from the `keygate-secret` crate).
//! - `sealed`: the master key and AES-256-GCM for secrets keygate must reuse.
//! - `jwt`: signing keys, the JWKS, issuing and verifying keygate's tokens.
//! - `users`: users, argon2id passwords, login throttling, session cut-offs.
//! - `httpsig`: HMAC request signatures (RFC 9421) and keygate's policy.
//! - `clock`: time as a parameter.
//! - `freshness`: whether this node's caches may answer (many nodes: confirmed
//!   within S against the invalidation feed, else 503).
//! - `feed`: the invalidation feed's entries and the seams nodes read and
//!   apply it through.
//! - `sessions`: refresh-token families and the access-token blocklist.
//! - `home`: the runtime store calls run on when the gateway serves on
//!   worker runtimes.
#![forbid(unsafe_code)]

pub mod apikey;
pub mod audit;
pub mod cache;
mod cache_map;
pub mod clock;
pub mod error;
pub mod feed;
pub mod freshness;
pub mod home;
pub mod httpsig;
pub mod jwt;
mod lifecycle;
pub mod model;
pub mod pepper;
pub mod ratelimit;
pub mod sealed;
pub mod secret;
pub mod service;
pub mod sessions;
pub mod store;
pub mod usage;
pub mod users;
pub mod verify;

pub use apikey::{ApiKey, KeyEnv, KeyId};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::Error;
pub use secret::{Secret, SecretString};
pub use service::{Admin, IssuedKey, KeyPatch, KeyService, NewKey, Verifier};
pub use users::{LoginError, NewUser, UserPatch, UserService};
pub use verify::{AuthFailure, Verification, VerifyCode};
