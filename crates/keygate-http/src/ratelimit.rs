//! Rate-limit fields: `Retry-After` in whole seconds, rounded up (a client
//! that waits the rounded-down time would be refused again), and
//! `RateLimit-Policy` / `RateLimit` per draft-ietf-httpapi-ratelimit-headers-11.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use keygate_core::ratelimit::RateDecision;

use crate::problem::ApiError;

pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// The wait when a refusal carries no decision to say how long.
const DEFAULT_WAIT_MS: i64 = 1000;

/// Milliseconds to wait as `Retry-After` seconds: rounded up, and at least
/// 1 (`Retry-After: 0` invites an immediate retry that would be refused).
pub fn retry_after_secs(ms: i64) -> u64 {
    reset_secs(ms).max(1)
}

/// Milliseconds until a quota is restored as whole seconds, rounded up; 0
/// when it already is.
pub fn reset_secs(ms: i64) -> u64 {
    u64::try_from(ms.max(0)).map_or(0, |ms| ms.div_ceil(1000))
}

/// `RateLimit-Policy` and `RateLimit` for one named policy.
#[derive(Debug, Clone)]
pub struct RateLimitFields {
    pub policy: HeaderValue,
    pub value: HeaderValue,
}

impl RateLimitFields {
    /// `name` is the policy's name (a route's), `period` its window in
    /// seconds. `t` is the seconds until the quota is restored, or, once
    /// refused, until the next request could pass.
    pub fn new(name: &str, d: &RateDecision, period: u32) -> Self {
        let policy = format!("\"{name}\";q={};w={period}", d.limit);
        let t = if d.allowed {
            reset_secs(d.reset_ms)
        } else {
            retry_after_secs(d.retry_after_ms)
        };
        let value = format!("\"{name}\";r={};t={t}", d.remaining);
        // A name is checked when the configuration is read; were one ever
        // not a valid field value, an empty field beats failing the request.
        Self {
            policy: HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("")),
            value: HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("")),
        }
    }

    /// Sets both fields on a request or a response.
    pub fn insert_into(self, headers: &mut HeaderMap) {
        headers.insert(RATELIMIT_POLICY, self.policy);
        headers.insert(RATELIMIT, self.value);
    }
}

impl ApiError {
    /// A 429 `rate_limited` with `Retry-After` from the wait in ms.
    pub fn rate_limited(detail: impl Into<String>, retry_after_ms: i64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail);
        e.retry_after_secs = Some(retry_after_secs(retry_after_ms));
        e
    }

    /// An API key over its own rate limit; without the limiter's decision
    /// the client is told to wait a second.
    pub fn key_rate_limited(decision: Option<&RateDecision>) -> Self {
        Self::rate_limited(
            "this key is over its rate limit",
            decision.map_or(DEFAULT_WAIT_MS, |d| d.retry_after_ms),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(allowed: bool, remaining: u32, reset_ms: i64, retry_after_ms: i64) -> RateDecision {
        RateDecision {
            allowed,
            limit: 100,
            remaining,
            reset_ms,
            retry_after_ms,
            unavailable: false,
        }
    }

    #[test]
    fn retry_after_rounds_up_to_at_least_a_second() {
        let cases = [
            (-5_000, 1),
            (-1, 1),
            (0, 1),
            (1, 1),
            (999, 1),
            (1_000, 1),
            (1_001, 2),
            (59_999, 60),
            (i64::MAX, i64::MAX.unsigned_abs().div_ceil(1000)),
        ];
        for (ms, secs) in cases {
            assert_eq!(retry_after_secs(ms), secs, "{ms} ms");
        }
    }

    #[test]
    fn reset_rounds_up_and_may_be_zero() {
        for (ms, secs) in [(-1, 0), (0, 0), (1, 1), (1_000, 1), (1_500, 2)] {
            assert_eq!(reset_secs(ms), secs, "{ms} ms");
        }
    }

    #[test]
    fn fields_name_the_policy_and_count_down_to_reset_or_retry() {
        let f = RateLimitFields::new("orders", &decision(true, 41, 1_200, 0), 60);
        assert_eq!(f.policy, "\"orders\";q=100;w=60");
        assert_eq!(f.value, "\"orders\";r=41;t=2");
        let f = RateLimitFields::new("orders", &decision(false, 0, 60_000, 250), 60);
        assert_eq!(f.value, "\"orders\";r=0;t=1");
        let mut h = HeaderMap::new();
        f.insert_into(&mut h);
        assert_eq!(h["ratelimit-policy"], "\"orders\";q=100;w=60");
        assert_eq!(h["ratelimit"], "\"orders\";r=0;t=1");
    }

    #[test]
    fn a_key_over_its_limit_is_a_429_with_retry_after() {
        let e = ApiError::key_rate_limited(Some(&decision(false, 0, 9_000, 2_001)));
        assert_eq!(
            (e.status, e.code),
            (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
        );
        assert_eq!(e.detail, "this key is over its rate limit");
        assert_eq!(e.retry_after_secs, Some(3));
        assert_eq!(ApiError::key_rate_limited(None).retry_after_secs, Some(1));
    }
}
