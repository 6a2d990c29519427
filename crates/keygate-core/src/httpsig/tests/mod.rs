//! The RFC 9421 known answer and the protocol's edge cases (`protocol`), and
//! every refusal of `verify_request` over an in-memory store (`service`);
//! the nonce store's quota and failures as the service meets them (`nonces`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fake;
mod nonces;
mod protocol;
mod service;
