//! The HTTP integration suite: one binary, a module per concern, every
//! test run against SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod cli;
mod hmac;
mod keys;
mod ops;
mod security;
mod token;
