//! keygate-verify's integration suite, in one binary (one link, not nine):
//! the hostile tokens of `shared/jwt-attacks.md`, the Wycheproof and RFC
//! vectors (data in `tests/vectors/`), the JWKS client against a real HTTP
//! server, and the axum extractor.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod extract_common;
mod jwks_server;

mod attacks_claims;
mod attacks_header;
mod attacks_keys;
mod binding;
mod extract;
mod jwe_attacks;
mod jwe_common;
mod jwe_nested;
mod jwe_vectors;
mod primitives;
mod proptest_mutation;
mod providers;
mod remote;
mod vectors;
