//! Command-line clients of a running keygate (`keys`, `users`), and `token`
//! for JWTs offline.
//! Command-line clients of a running keygate, `token` for JWTs offline, and
//! `sign` for HMAC-signed requests (RFC 9421).

pub mod client;
pub mod clients;
pub mod gateway;
pub mod keys;
mod render;
pub mod sign;
pub mod table;
pub mod token;
pub mod users;
