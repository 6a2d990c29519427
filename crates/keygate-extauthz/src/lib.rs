//! Envoy's external authorization over gRPC
//! (`envoy.service.auth.v3.Authorization/Check`), on its own listener: the
//! forward-auth decision of keygate-gateway, which knows nothing of gRPC,
//! behind Envoy's `ext_authz` HTTP filter and Istio's CUSTOM action.
//!
//! The layout, in the order a check meets it:
//! - `service`: the listener (keygate-http's `listen`: the same caps,
//!   timeouts, HTTP/2 limits, TLS and draining as the other listeners) and
//!   the `Authorization` service; only `trusted_proxies` may ask.
//! - `request`: a `CheckRequest` read as the request `/v1/forward-auth`
//!   would see from Envoy's HTTP filter.
//! - `response`: the HTTP answer translated into a `CheckResponse`, so both
//!   contracts give the same statuses, headers and problem+json bodies.
//! - `metrics`: the checks answered, by result.
//! - `pb`: the generated protobuf code, from a subset of Envoy's published
//!   protos in `proto/` (`scripts/gen-protos.sh`).

#![forbid(unsafe_code)]

pub mod metrics;
pub mod pb;
pub mod request;
pub mod response;
mod service;

pub use metrics::{CheckResult, ExtAuthzMetrics};
pub use service::{DEFAULT_MAX_MESSAGE_BYTES, Serve, serve};
