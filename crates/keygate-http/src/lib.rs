//! keygate-http: the HTTP vocabulary that keygate's admin API, its gateway
//! and the dashboard all speak, so that each says a thing the same way.
//!
//! - `problem`: `ApiError`, the one problem+json (RFC 9457) response, and
//!   `ErrorCause`, a 5xx's hidden cause for the logging middleware.
//! - `map`: the one map from core's errors and refusals to `ApiError`.
//! - `client_addr`: the client's address, from the peer or from what
//!   trusted proxies say in `X-Forwarded-For`.
//! - `cookies`: one cookie's value from the `Cookie` fields.
//! - `credentials`: what a request presents in its headers
//!   (`Authorization: Bearer`, `X-API-Key`), parsed once, with one set of
//!   messages; and whether granted scopes cover required ones.
//! - `ratelimit`: the `RateLimit`, `RateLimit-Policy` and `Retry-After`
//!   fields and the rounding of milliseconds to their whole seconds.
//! - `request_id`: `X-Request-Id` kept or made, and its middleware.
//! - `extract`: JSON bodies and ids in paths whose every failure is a
//!   problem+json 4xx, and the JSON response writer.
//! - `framing`: transfer codings other than `chunked` refused (501).
//! - `signature`: an HTTP request as the HMAC signature check reads it.
//! - `metrics` (feature `metrics`): `Reg`, which registers a Prometheus
//!   metric and hands it back.
//! - `listen` (feature `listen`): the connection layer under every
//!   listener: accepting, TLS, HTTP/1 and HTTP/2, connection caps and
//!   timeouts, the descriptor budget.
//!
//! Nothing here knows the binary's state (`AppState`), its configuration
//! or its routes: the vocabulary depends on keygate-core and axum only,
//! and `listen` adds hyper, tokio and rustls, `metrics` prometheus-client.
#![forbid(unsafe_code)]

pub mod client_addr;
pub mod cookies;
pub mod credentials;
pub mod extract;
pub mod framing;
#[cfg(feature = "listen")]
pub mod listen;
mod map;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod problem;
pub mod ratelimit;
pub mod request_id;
pub mod signature;

pub use credentials::{
    CredentialError, ScopeName, api_credential, api_key, bearer, require_scopes, scopes_cover,
};
pub use extract::{ApiJson, JsonBody, KeyIdPath, body_error, json_response, parse_json};
pub use problem::{ApiError, ErrorCause, PROBLEM_JSON};
pub use ratelimit::{RateLimitFields, reset_secs, retry_after_secs};
pub use request_id::{REQUEST_ID, RequestId, request_id, request_id_of, request_id_value};
