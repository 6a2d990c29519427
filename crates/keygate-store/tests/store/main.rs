//! keygate-store's integration suite, in one binary (one link, not
//! eleven): a module per concern, nearly every case run on SQLite and on a
//! fresh PostgreSQL database (`on_both_backends!`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
extern crate keygate_test_support;

mod clients;
mod common;
mod console;
mod fixtures;
/// The fixture of the bare `on_both_backends!`.
use common::fixture;

mod feed;
mod feed_atomic;
mod feed_listen;
mod hmac;
mod key_search;
mod key_usage;
mod keys;
mod migrate_gaps;
mod nonces;
mod schema;
mod sessions;
mod usage;
mod users;
