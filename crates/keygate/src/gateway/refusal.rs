//! Why admission refused a request: the problem the client gets, a typed
//! reason for the metrics and the access log, and the RateLimit fields when
//! a limit refused it. Every entry point answers a refusal the same way.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use keygate_core::VerifyCode;
use keygate_core::httpsig::SigCode;
use keygate_core::ratelimit::RateDecision;

use crate::http::error::ApiError;

/// Why a request was refused; `as_str` is its metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    MissingCredentials,
    InvalidAuthorization,
    /// Storage could not answer: no decision, a 503.
    StorageUnavailable,
    TenantMismatch,
    InsufficientRole,
    InsufficientScope,
    /// The key refused, by its verify code (not `Valid`, `InsufficientScope`
    /// or `RateLimited`, which have their own reasons).
    Key(VerifyCode),
    /// The key's own rate limit, as opposed to the route's.
    KeyRateLimited,
    JwtRevoked,
    JwtInvalid,
    WrongTokenKind,
    Signature(SigCode),
    SignatureNonceQuota,
    /// The route's rate limit.
    RateLimited,
    RateLimiterUnavailable,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MissingCredentials => "missing_credentials",
            Reason::InvalidAuthorization => "invalid_authorization",
            Reason::StorageUnavailable => "storage_unavailable",
            Reason::TenantMismatch => "tenant_mismatch",
            Reason::InsufficientRole => "insufficient_role",
            Reason::InsufficientScope => "insufficient_scope",
            Reason::Key(VerifyCode::Malformed) => "key_malformed",
            Reason::Key(VerifyCode::NotFound) => "key_not_found",
            Reason::Key(VerifyCode::Revoked) => "key_revoked",
            Reason::Key(VerifyCode::Expired) => "key_expired",
            Reason::Key(VerifyCode::UsageExceeded) => "key_usage_exceeded",
            Reason::Key(_) => "key_refused",
            Reason::KeyRateLimited => "key_rate_limited",
            Reason::JwtRevoked => "jwt_revoked",
            Reason::JwtInvalid => "jwt_invalid",
            Reason::WrongTokenKind => "wrong_token_kind",
            Reason::Signature(code) => code.as_str(),
            Reason::SignatureNonceQuota => "signature_nonce_quota",
            Reason::RateLimited => "rate_limited",
            Reason::RateLimiterUnavailable => "rate_limiter_unavailable",
        }
    }
}

/// `RateLimit-Policy` and `RateLimit`, in that order.
pub type RateLimitFields = (HeaderValue, HeaderValue);

/// A refused request: the problem to answer, the reason, and the
/// RateLimit fields when the route's limit refused it.
pub struct Refusal {
    pub error: Box<ApiError>,
    pub reason: Reason,
    pub ratelimit: Option<RateLimitFields>,
}

impl Refusal {
    pub fn new(error: ApiError, reason: Reason) -> Self {
        Self {
            error: Box::new(error),
            reason,
            ratelimit: None,
        }
    }

    /// Storage (or another dependency) failed: its own error map decides
    /// the status, which is never a refusal of the client.
    pub fn unavailable(error: impl Into<ApiError>) -> Self {
        Self::new(error.into(), Reason::StorageUnavailable)
    }

    pub fn missing(what: &str) -> Self {
        Self::new(
            ApiError::unauthorized(
                "missing_credentials",
                format!("this route needs {what}"),
                false,
            ),
            Reason::MissingCredentials,
        )
    }

    pub fn insufficient_scope() -> Self {
        Self::new(
            ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "the credential lacks a scope this route needs",
            ),
            Reason::InsufficientScope,
        )
    }

    /// The key's own limit refused it, whichever credential named the key.
    /// `retry_after_ms`: the limiter's answer, when it gave one.
    pub fn key_over_limit(retry_after_ms: Option<i64>) -> Self {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "this key is over its rate limit",
        );
        e.retry_after_secs = Some(retry_after_secs(retry_after_ms.unwrap_or(1000)));
        Self::new(e, Reason::KeyRateLimited)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut res = self.error.into_response();
        if let Some(fields) = self.ratelimit {
            insert_ratelimit(res.headers_mut(), fields);
        }
        res
    }
}

/// `Retry-After` in whole seconds, rounded up and at least 1: a client
/// that waits what it is told must not come back early.
pub fn retry_after_secs(ms: i64) -> u64 {
    u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1)
}

/// `RateLimit-Policy` and `RateLimit` per draft-ietf-httpapi-ratelimit-headers-11.
pub fn ratelimit_fields(route: &str, d: &RateDecision, period: u32) -> RateLimitFields {
    let policy = format!("\"{route}\";q={};w={period}", d.limit);
    let t = if d.allowed {
        u64::try_from((d.reset_ms + 999) / 1000).unwrap_or(0)
    } else {
        retry_after_secs(d.retry_after_ms)
    };
    let value = format!("\"{route}\";r={};t={t}", d.remaining);
    (
        HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("")),
        HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("")),
    )
}

/// Puts the RateLimit fields on an answer, allowed or refused.
pub fn insert_ratelimit(headers: &mut HeaderMap, (policy, value): RateLimitFields) {
    headers.insert("ratelimit-policy", policy);
    headers.insert("ratelimit", value);
}
