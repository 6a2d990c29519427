//! Why admission refused a request: the problem the client gets, a typed
//! reason for the metrics and the access log, and the RateLimit fields when
//! a limit refused it. Every entry point answers a refusal the same way.

use std::net::IpAddr;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keygate_core::VerifyCode;
use keygate_core::clients::ClientRefusal;
use keygate_core::httpsig::SigCode;
use keygate_core::ratelimit::RateDecision;
use keygate_http::RateLimitFields;
use keygate_http::credentials::CredentialError;

use keygate_http::ApiError;

/// Why a request was refused; `as_str` is its metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    MissingCredentials,
    /// The credential headers cannot be read (keygate-http's reasons).
    Credentials(CredentialError),
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
    /// A certificate-bound JWT (RFC 8705) without its certificate.
    TokenBinding,
    WrongTokenKind,
    /// The client certificate was refused or names no live client.
    Mtls(ClientRefusal),
    /// A registered client's own rate limit.
    ClientRateLimited,
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
            Reason::Credentials(e) => e.code(),
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
            Reason::TokenBinding => "token_binding",
            Reason::WrongTokenKind => "wrong_token_kind",
            Reason::Mtls(r) => r.code(),
            Reason::ClientRateLimited => "client_rate_limited",
            Reason::Signature(code) => code.as_str(),
            Reason::SignatureNonceQuota => "signature_nonce_quota",
            Reason::RateLimited => "rate_limited",
            Reason::RateLimiterUnavailable => "rate_limiter_unavailable",
        }
    }
}

/// A refused request: the problem to answer, the reason, and the
/// RateLimit fields when the route's limit refused it.
pub struct Refusal {
    pub error: Box<ApiError>,
    pub reason: Reason,
    pub ratelimit: Option<RateLimitFields>,
    /// Whom the audit log counts it against; boxed, as most refusals
    /// are answered without ever reading it.
    pub blame: Option<Box<Blame>>,
}

/// Whom a refusal is counted against in the audit log.
#[derive(Debug, Clone, Default)]
pub struct Blame {
    /// The key id or user a verified credential named, when the refusal
    /// came after one did (over a limit, a scope or role short).
    pub principal: Option<String>,
    /// The client's address, as the route's limit counts it.
    pub source: Option<IpAddr>,
}

impl Refusal {
    pub fn new(error: ApiError, reason: Reason) -> Self {
        Self {
            error: Box::new(error),
            reason,
            ratelimit: None,
            blame: None,
        }
    }

    /// The principal a verified credential named; refusals before one did
    /// are counted by address.
    pub fn by(mut self, principal: Option<&str>) -> Self {
        self.blame_mut().principal = principal.map(str::to_owned);
        self
    }

    /// The client's address (`peer` as admission was given it).
    pub fn from_peer(mut self, peer: &str) -> Self {
        self.blame_mut().source = peer.parse().ok();
        self
    }

    fn blame_mut(&mut self) -> &mut Blame {
        self.blame.get_or_insert_with(Box::default)
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

    /// The client certificate was refused: 401 with the registry's code,
    /// never anything read from the certificate (503 when the registry
    /// could not answer).
    pub fn mtls(why: ClientRefusal) -> Self {
        let error = match why {
            ClientRefusal::Unavailable => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why.code(), why.detail())
            }
            _ => ApiError::unauthorized(why.code(), why.detail(), false),
        };
        Self::new(error, Reason::Mtls(why))
    }

    /// The key's own limit refused it, whichever credential named the key.
    pub fn key_over_limit(decision: Option<&RateDecision>) -> Self {
        Self::new(ApiError::key_rate_limited(decision), Reason::KeyRateLimited)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut res = self.error.into_response();
        if let Some(fields) = self.ratelimit {
            fields.insert_into(res.headers_mut());
        }
        res
    }
}
