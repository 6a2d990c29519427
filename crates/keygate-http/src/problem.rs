//! The one problem+json response (RFC 9457) with a stable snake_case
//! `code`. A 5xx answers a generic message; its cause rides in a response
//! extension (`ErrorCause`) that the logging middleware writes once, so
//! building an error has no side effects.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The `WWW-Authenticate` challenge of a 401 for a Bearer credential.
const BEARER_CHALLENGE: &str = "Bearer realm=\"keygate\"";
const BEARER_INVALID: &str = "Bearer realm=\"keygate\", error=\"invalid_token\"";

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
        e.challenge = Some(
            if presented {
                BEARER_INVALID
            } else {
                BEARER_CHALLENGE
            }
            .to_owned(),
        );
        e
    }

    /// No credential at all; `detail` says what the endpoint takes.
    pub fn missing_credentials(detail: impl Into<String>) -> Self {
        Self::unauthorized("missing_credentials", detail, false)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// A valid credential without a scope the request needs.
    pub fn insufficient_scope() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the credential lacks a scope this route needs",
        )
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

impl ApiError {
    /// The problem+json body alone, for a response written by hand (the
    /// listener's canned refusal).
    pub fn body(&self) -> Vec<u8> {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = Problem {
            kind: format!("urn:keygate:problem:{}", self.code),
            title,
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let bytes = self.body();
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(res: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn the_body_is_rfc_9457_with_a_stable_code() {
        let res = ApiError::bad_request("invalid_json", "the body is not JSON").into_response();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(res.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
        assert!(res.headers().get(header::WWW_AUTHENTICATE).is_none());
        assert!(res.headers().get(header::RETRY_AFTER).is_none());
        assert_eq!(
            body_of(res).await,
            serde_json::json!({
                "type": "urn:keygate:problem:invalid_json",
                "title": "Bad Request",
                "status": 400,
                "detail": "the body is not JSON",
                "code": "invalid_json",
            })
        );
    }

    #[tokio::test]
    async fn a_5xx_hides_its_cause_in_an_extension() {
        let res = ApiError::internal("disk on fire: /var/lib/x").into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let cause = res.extensions().get::<ErrorCause>().map(|c| c.0.clone());
        assert_eq!(cause.as_deref(), Some("disk on fire: /var/lib/x"));
        let body = body_of(res).await;
        assert!(!body.to_string().contains("disk"), "{body}");
        assert_eq!(body["code"], "internal_error");
    }

    #[test]
    fn a_401_challenges_and_names_an_error_only_for_a_presented_credential() {
        let res = ApiError::missing_credentials("send a key").into_response();
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], BEARER_CHALLENGE);
        let res = ApiError::unauthorized("invalid_credentials", "no", true).into_response();
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], BEARER_INVALID);
    }

    #[test]
    fn retry_after_is_sent_in_whole_seconds() {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "slow down");
        e.retry_after_secs = Some(3);
        let res = e.into_response();
        assert_eq!(res.headers()[header::RETRY_AFTER], "3");
    }
}
