//! Command-line clients of a running keygate.

pub mod client;
pub mod keys;
pub mod table;
