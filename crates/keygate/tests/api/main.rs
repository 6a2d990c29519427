//! The HTTP integration suite: one binary, a module per concern, every
//! test run against SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod cli;
mod keys;
mod oauth;
mod ops;
mod security;
mod sessions;
mod signing;
mod tls;
mod token;
mod users;
