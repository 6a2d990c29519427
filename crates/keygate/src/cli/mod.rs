//! Command-line clients of a running keygate, `token` for JWTs offline, and
//! `sign` for HMAC-signed requests (RFC 9421).

pub mod client;
pub mod keys;
mod render;
pub mod sign;
pub mod table;
pub mod token;
