//! API keys: the `kg_<env>_...` credentials keygate issues, stores only
//! peppered, and verifies on the hot path.
//!
//! - `apikey`: the key format (`kg_<env>_<secret><check>`) and key ids.
//! - `pepper`: HMAC-SHA256 under the server's pepper, the only form stored.
//! - `service`: the key service, creation and reads behind an `Admin`
//!   capability; `lifecycle`: update, rotate, revoke, audit listing.
//! - `search`: list filters (search, status, expiry) and per-status counts.
//! - `verify`: the verification hot path and its codes.
//! - `code`: the verification codes, a leaf module storage can name.
//! - `cache` (on `cache_map`) and `usage`: the in-process state verification
//!   uses; `usage_counts`: verifications per key, hour and outcome, and
//!   `usage_query` reads them back for admins.

pub mod apikey;
pub mod cache;
pub(crate) mod cache_map;
pub(crate) mod code;
mod lifecycle;
pub mod pepper;
pub mod search;
pub mod service;
pub mod usage;
pub mod usage_counts;
pub mod usage_query;
pub mod verify;
