//! keygate-core: the domain, with no HTTP and no SQL.
//!
//! - `clients`: services calling with a client certificate (mTLS): the
//!   chain a transport delivered (`peer`) and the registry it names.
//! - `console`: the dashboard's server-side sessions (an admin key
//!   exchanged for a cookie token) and their CSRF tokens.
//! - `base62`: OS randomness and random base62 ids (re-exported by `apikey`).
//! - `keys`: API keys: their format (`apikey`), peppered hashing (`pepper`),
//!   the key service behind an `Admin` capability (`service`, `lifecycle`),
//!   the verification hot path and its codes (`verify`), and the in-process
//!   state it uses (`cache`, `usage`).
//! - `audit`: failed authentications tallied per source and minute, and
//!   the audit retention.
//! - `model`: records and validated values (`Scope`, `Tenant`, ...);
//!   `prefixed_id`: the one definition of `KeyId`, `ClientId`, `UserId`, `FamilyId`.
//! - `store`: the storage traits that keygate-store implements.
//! - `ratelimit`: GCRA, the per-key limiter verification and the gateway use.
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

pub mod audit;
mod base62;
pub mod clients;
pub mod clock;
pub mod console;
pub mod error;
pub mod feed;
pub mod freshness;
pub mod home;
pub mod httpsig;
pub mod jwt;
pub mod keys;
pub mod model;
mod prefixed_id;
pub mod ratelimit;
pub mod sealed;
pub mod secret;
pub mod sessions;
pub mod store;
pub mod users;

pub use clock::{ManualClock, MillisClock, SystemClock};
pub use error::Error;
pub use keys::apikey::{ApiKey, KeyEnv, KeyId};
pub use keys::service::{Admin, IssuedKey, KeyPatch, KeyService, NewKey, ScopedCaller};
pub use keys::usage_counts::UsageCount;
pub use keys::usage_query::{Granularity, KeyUsage, UsageBucket, UsageQuery};
pub use keys::verify::{AuthFailure, Verification, VerifyCode};
pub use prefixed_id::PrefixedId;
pub use secret::{Secret, SecretString};
pub use users::{LoginError, NewUser, UserPatch, UserService};
