//! The one place that maps errors to HTTP: RFC 9457 problem+json bodies with a
//! stable snake_case `code`. A 5xx answers a generic message; its cause rides
//! in a response extension that the logging middleware writes once.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keygate_core::Error;
use keygate_core::httpsig::HmacError;
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// `WWW-Authenticate` for 401s.
    pub challenge: Option<String>,
    pub retry_after_secs: Option<u64>,
    /// The real cause of a 5xx, logged, never sent.
    pub cause: Option<String>,
}

/// Carries a 5xx's cause from the handler to the logging middleware.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub String);

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            challenge: None,
            retry_after_secs: None,
            cause: None,
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// A 401; `presented` says whether a credential came with the request:
    /// RFC 6750 names an error only when one did.
    pub fn unauthorized(code: &'static str, detail: impl Into<String>, presented: bool) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, code, detail);
        e.challenge = Some(if presented {
            "Bearer realm=\"keygate\", error=\"invalid_token\"".to_owned()
        } else {
            "Bearer realm=\"keygate\"".to_owned()
        });
        e
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn internal(cause: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "keygate could not complete the request; the cause has been logged",
        );
        e.cause = Some(cause.into());
        e
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }
}

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
                err.challenge = Some("Signature realm=\"keygate\", alg=\"hmac-sha256\"".to_owned());
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
                let secs = u64::try_from(retry_after_ms.max(1)).unwrap_or(1);
                err.retry_after_secs = Some(secs.div_ceil(1000));
                err
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = Problem {
            kind: format!("urn:keygate:problem:{}", self.code),
            title,
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut res = (self.status, bytes).into_response();
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
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
