//! The OAuth 2.0 endpoints: `POST /oauth2/token` (RFC 6749),
//! `POST /oauth2/introspect` (RFC 7662) and `POST /oauth2/revoke`
//! (RFC 7009). They speak form-encoded requests and answer in RFC 6749's
//! error format (`{"error", "error_description"}`), not problem+json, because
//! standard OAuth clients parse that.
//!
//! - `form`: the request body and client authentication.
//! - `token`: the grants; `mtls`: RFC 8705 client authentication and
//!   certificate-bound tokens. `introspect`, `revoke`: the other two endpoints.

pub mod form;
pub mod introspect;
mod issue;
pub mod mtls;
pub mod revoke;
pub mod token;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use keygate_core::ratelimit::RateDecision;
use keygate_http::ErrorCause;
use keygate_http::ratelimit::retry_after_secs;

/// An RFC 6749 §5.2 error.
#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    /// Answer 401 with a `Basic` challenge (the client used Basic auth).
    pub basic_challenge: bool,
    pub retry_after_secs: Option<u64>,
    /// A 5xx's cause, logged and never sent.
    pub cause: Option<String>,
}

impl OAuthError {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            basic_challenge: false,
            retry_after_secs: None,
            cause: None,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn invalid_client(description: impl Into<String>, basic: bool) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description);
        e.basic_challenge = basic;
        e
    }

    /// RFC 8707 §2: the resource is invalid, unknown or malformed.
    pub fn invalid_target(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_target", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    /// A client over its own rate limit (`who`: "key" or "client"): RFC
    /// 6749's `slow_down` with `Retry-After`; a limiter that cannot answer
    /// under the `deny` policy is a 503, the client being over nothing.
    pub fn rate_limited(who: &str, decision: Option<&RateDecision>) -> Self {
        let mut e = if decision.is_some_and(|d| d.unavailable) {
            Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                format!("the {who}'s rate limiter cannot answer; retry later"),
            )
        } else {
            Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "slow_down",
                format!("this {who} is over its rate limit"),
            )
        };
        let wait = decision.map_or(1000, |d| d.retry_after_ms);
        e.retry_after_secs = Some(retry_after_secs(wait));
        e
    }

    pub fn from_core(e: keygate_core::Error) -> Self {
        let mut err = if matches!(e, keygate_core::Error::KeyUnavailable(_)) {
            let mut err = Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the key this audience's tokens are encrypted to is not available yet; \
                 nothing was issued, retry later",
            );
            err.retry_after_secs = Some(1);
            err
        } else if matches!(e, keygate_core::Error::Storage(_)) {
            let mut err = Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "storage is unavailable; retry later",
            );
            err.retry_after_secs = Some(1);
            err
        } else {
            Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "keygate could not complete the request; the cause has been logged",
            )
        };
        err.cause = Some(e.to_string());
        err
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        let mut res = (self.status, Json(body)).into_response();
        let headers = res.headers_mut();
        no_store(headers);
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = if self.basic_challenge {
                "Basic realm=\"keygate\""
            } else {
                "Bearer realm=\"keygate\""
            };
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(cause) = self.cause {
            res.extensions_mut().insert(ErrorCause(cause));
        }
        res
    }
}

/// RFC 6749 §5.1: responses carrying tokens must not be cached.
pub fn no_store(headers: &mut axum::http::HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}
