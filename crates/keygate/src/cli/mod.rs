//! Command-line clients of a running keygate (`keys`, `users`), and `token`
//! for JWTs offline.

pub mod client;
pub mod gateway;
pub mod keys;
mod render;
pub mod table;
pub mod token;
pub mod users;
