//! Why a proxied request failed after admission, and whose fault it was
//! (pingora's distinction): the client's (its body, its upgrade), the
//! upstream's (unreachable, slow, busy, a wrong handshake) or keygate's own.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keygate_core::httpsig::SigCode;

use super::hmac::mismatch_error;
use keygate_http::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Client,
    Upstream,
    Gateway,
}

#[derive(Debug)]
pub enum ProxyError {
    /// An upgrade the route does not take, or not a WebSocket one.
    UpgradeRefused(Box<ApiError>),
    /// The normalized path cannot be sent as a URI.
    InvalidPath,
    BodyTooLarge,
    /// The body arrived below the listener's minimum rate.
    BodyTimeout,
    /// A signed body did not match its `Content-Digest`.
    DigestMismatch,
    /// The internal token could not be minted.
    Token(keygate_core::Error),
    /// The route's upstream has as many requests in flight as it may.
    Busy,
    /// No response headers within the route's timeout.
    Timeout,
    Unreachable,
    /// The TLS handshake with an https upstream failed (its certificate
    /// did not verify, or it speaks no TLS); the reason is logged.
    UpstreamTls,
    /// A 101 that does not answer the client's WebSocket handshake.
    BadUpgrade,
}

impl ProxyError {
    pub fn fault(&self) -> Fault {
        match self {
            ProxyError::UpgradeRefused(_)
            | ProxyError::InvalidPath
            | ProxyError::BodyTooLarge
            | ProxyError::BodyTimeout
            | ProxyError::DigestMismatch => Fault::Client,
            ProxyError::Busy
            | ProxyError::Timeout
            | ProxyError::Unreachable
            | ProxyError::UpstreamTls
            | ProxyError::BadUpgrade => Fault::Upstream,
            // The upstream's JWKS has not given the key its token needs.
            ProxyError::Token(keygate_core::Error::KeyUnavailable(_)) => Fault::Upstream,
            ProxyError::Token(_) => Fault::Gateway,
        }
    }

    /// The failure label of the metrics and the access log; None for what
    /// is no failure of the route (a body over its limit, a request it
    /// cannot take, keygate's own error, which is logged as a cause).
    pub fn label(&self) -> Option<&'static str> {
        match self {
            ProxyError::UpgradeRefused(_) | ProxyError::InvalidPath | ProxyError::BodyTooLarge => {
                None
            }
            ProxyError::Token(keygate_core::Error::KeyUnavailable(_)) => {
                Some("upstream_key_unavailable")
            }
            ProxyError::Token(_) => None,
            ProxyError::BodyTimeout => Some("body_timeout"),
            ProxyError::DigestMismatch => Some(SigCode::ContentDigestMismatch.as_str()),
            ProxyError::Busy => Some("upstream_busy"),
            ProxyError::Timeout => Some("upstream_timeout"),
            ProxyError::Unreachable => Some("upstream_unavailable"),
            ProxyError::UpstreamTls => Some("upstream_tls_failed"),
            ProxyError::BadUpgrade => Some("upstream_bad_upgrade"),
        }
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let e = match self {
            ProxyError::UpgradeRefused(e) => *e,
            ProxyError::InvalidPath => {
                ApiError::bad_request("invalid_path", "the request path cannot be forwarded")
            }
            ProxyError::BodyTooLarge => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is larger than this route accepts",
            ),
            ProxyError::BodyTimeout => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the request body arrived too slowly",
            ),
            ProxyError::DigestMismatch => mismatch_error(),
            ProxyError::Token(e) => ApiError::from(e),
            ProxyError::Busy => {
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "upstream_busy",
                    "the upstream service has as many requests in flight as it may; retry shortly",
                );
                e.retry_after_secs = Some(1);
                e
            }
            ProxyError::Timeout => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                "the upstream service did not answer in time",
            ),
            ProxyError::Unreachable => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_unavailable",
                "the upstream service could not be reached",
            ),
            ProxyError::UpstreamTls => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_tls_failed",
                "a TLS connection to the upstream service could not be set up",
            ),
            ProxyError::BadUpgrade => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_bad_upgrade",
                "the upstream's answer to the upgrade was not a WebSocket handshake",
            ),
        };
        e.into_response()
    }
}
