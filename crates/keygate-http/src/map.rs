//! The one map from core's errors and refusals to HTTP.

use axum::http::StatusCode;
use keygate_core::httpsig::HmacError;
use keygate_core::ratelimit::RateDecision;
use keygate_core::{AuthFailure, Error, VerifyCode};

use crate::problem::ApiError;
use crate::ratelimit::retry_after_secs;

/// The challenge of a 401 for a signed request.
const SIGNATURE_CHALLENGE: &str = "Signature realm=\"keygate\", alg=\"hmac-sha256\"";

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::MalformedKey => ApiError::bad_request("malformed_key", e.to_string()),
            Error::Invalid { .. } => ApiError::bad_request("invalid_request", e.to_string()),
            Error::NotFound(what) => ApiError::not_found(what),
            Error::Forbidden(detail) => ApiError::forbidden(detail),
            Error::Revoked => ApiError::new(
                StatusCode::CONFLICT,
                "key_revoked",
                "the key is revoked and can no longer be changed",
            ),
            Error::Conflict => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            Error::AlreadyExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "already_exists", e.to_string())
            }
            // 409, not 429 (waiting does not help) nor 403 (the caller is
            // allowed; the tenant's state is what refuses).
            Error::QuotaExceeded(_) => {
                ApiError::new(StatusCode::CONFLICT, "quota_exceeded", e.to_string())
            }
            Error::Storage(cause) => {
                let mut err = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "storage is unavailable; nothing was changed, retry later",
                );
                err.cause = Some(cause);
                err.retry_after_secs = Some(1);
                err
            }
            Error::KeyUnavailable(cause) => {
                let mut err = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "upstream_key_unavailable",
                    "the key this token must be encrypted to is not available yet; \
                     nothing was sent, retry later",
                );
                err.cause = Some(cause);
                err.retry_after_secs = Some(1);
                err
            }
            Error::Internal(cause) => ApiError::internal(cause),
        }
    }
}

/// A refused signed request is a 401 with the refusal's own code; a key
/// over its nonce quota a 429.
impl From<HmacError> for ApiError {
    fn from(e: HmacError) -> Self {
        match e {
            HmacError::Refused(r) => {
                let mut err = ApiError::new(StatusCode::UNAUTHORIZED, r.code.as_str(), r.detail);
                err.challenge = Some(SIGNATURE_CHALLENGE.to_owned());
                err
            }
            HmacError::Unavailable(e) => ApiError::from(e),
            HmacError::OverQuota { retry_after_ms } => {
                let mut err = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "signature_nonce_quota",
                    "this key holds its quota of unexpired signature nonces; \
                     retry once some expire",
                );
                err.retry_after_secs = Some(retry_after_secs(retry_after_ms));
                err
            }
        }
    }
}

/// An admin or verifier credential refused by the key service.
impl From<AuthFailure> for ApiError {
    fn from(failure: AuthFailure) -> Self {
        match failure {
            AuthFailure::Unauthenticated(code, decision) => {
                ApiError::key_refused(code, decision.as_ref())
            }
            AuthFailure::Forbidden(why) => ApiError::forbidden(why),
            AuthFailure::Storage(e) => ApiError::from(e),
        }
    }
}

impl ApiError {
    /// An API key that verification refused, with its code: over its rate
    /// limit a 429, short of a scope a 403, anything else a 401.
    pub fn key_refused(code: VerifyCode, decision: Option<&RateDecision>) -> Self {
        match code {
            VerifyCode::RateLimited => ApiError::key_rate_limited(decision),
            VerifyCode::InsufficientScope => ApiError::insufficient_scope(),
            code => ApiError::unauthorized(
                "invalid_credentials",
                format!("the API key was refused ({})", code.as_str()),
                true,
            ),
        }
    }

    /// A signed request that verified but whose key has no credits left: a
    /// 401 like an API key whose credits are gone, since the credential no
    /// longer admits anything.
    pub fn signature_usage_exceeded() -> Self {
        let mut e = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "usage_exceeded",
            "the key's usage credits are used up",
        );
        e.challenge = Some(SIGNATURE_CHALLENGE.to_owned());
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;
    use axum::response::IntoResponse;
    use keygate_core::httpsig::{SigCode, SignatureRefusal};

    fn refused(ms: i64) -> RateDecision {
        RateDecision {
            allowed: false,
            limit: 10,
            remaining: 0,
            reset_ms: 60_000,
            retry_after_ms: ms,
            unavailable: false,
        }
    }

    #[test]
    fn a_key_refusal_is_429_403_or_401_by_its_code() {
        let e = ApiError::key_refused(VerifyCode::RateLimited, Some(&refused(1_001)));
        assert_eq!(
            (e.status, e.code),
            (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
        );
        assert_eq!(e.retry_after_secs, Some(2));
        let e = ApiError::key_refused(VerifyCode::InsufficientScope, None);
        assert_eq!(
            (e.status, e.code),
            (StatusCode::FORBIDDEN, "insufficient_scope")
        );
        let e = ApiError::key_refused(VerifyCode::Revoked, None);
        assert_eq!(
            (e.status, e.code),
            (StatusCode::UNAUTHORIZED, "invalid_credentials")
        );
        assert_eq!(e.detail, "the API key was refused (REVOKED)");
        assert!(e.challenge.is_some_and(|c| c.contains("invalid_token")));
    }

    #[test]
    fn an_auth_failure_maps_like_the_verification_it_came_from() {
        let e = ApiError::from(AuthFailure::Unauthenticated(VerifyCode::RateLimited, None));
        assert_eq!(e.retry_after_secs, Some(1), "no decision: a second");
        let e = ApiError::from(AuthFailure::Forbidden("needs admin"));
        assert_eq!(
            (e.status, e.detail.as_str()),
            (StatusCode::FORBIDDEN, "needs admin")
        );
        let e = ApiError::from(AuthFailure::Storage(Error::Storage("pool closed".into())));
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.cause.as_deref(), Some("pool closed"));
    }

    #[test]
    fn signature_refusals_challenge_for_a_signature() {
        for code in SigCode::ALL {
            let err = ApiError::from(HmacError::Refused(SignatureRefusal::new(code, "why")));
            assert_eq!(err.code, code.as_str());
            let res = err.into_response();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(res.headers()[header::WWW_AUTHENTICATE], SIGNATURE_CHALLENGE);
        }
        let err = ApiError::from(HmacError::Unavailable(Error::Storage("db".into())));
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
        let e = ApiError::from(HmacError::OverQuota { retry_after_ms: 1 });
        assert_eq!(
            (e.status, e.retry_after_secs),
            (StatusCode::TOO_MANY_REQUESTS, Some(1))
        );
        let e = ApiError::from(HmacError::OverQuota {
            retry_after_ms: 2_500,
        });
        assert_eq!(e.retry_after_secs, Some(3));
    }
}
