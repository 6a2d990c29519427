//! The HTTP integration suite: one binary, a module per concern, every
//! test run against SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The shared `on_both_backends!` (as `crate::on_both_backends!` too); its
// bare form spawns `fixture`.
pub(crate) use helpers::spawn_app as fixture;
pub(crate) use keygate_test_support::on_both_backends;

/// The multi-process suite (tests/cluster), in this binary: one link for
/// the crate's tests, not two.
#[path = "../cluster/mod.rs"]
mod multi_node;

mod helpers;

mod audit;
mod browser;
mod cli;
mod clients;
mod cluster;
mod dashboard;
mod dashboard_pages;
mod docs_reference;
#[cfg(unix)]
mod exit_codes;
mod ext_authz_tls;
#[cfg(unix)]
mod files;
mod forward_auth_client_cert;
mod forward_auth_nginx_mtls;
mod gateway;
mod gateway_audit;
mod gateway_binary;
mod gateway_ext_authz;
mod gateway_forward_auth;
mod gateway_hmac;
mod gateway_jwe;
mod gateway_jwks;
mod gateway_paths;
mod gateway_proxy;
mod gateway_tls;
mod gateway_upstream;
mod gateway_workers;
mod hmac;
mod key_search;
mod key_usage;
mod keys;
mod limits;
mod mtls_ext_authz;
mod mtls_limits;
mod mtls_routes;
mod oauth;
mod oauth_resource;
mod ops;
mod quotas;
mod replay;
mod request_ids;
mod security;
mod sessions;
mod signing;
mod tls;
mod tls_client_auth;
mod tls_listeners;
mod token;
mod token_kinds;
mod trusted_proxies;
mod users;
