//! The admin API's extractors that need its state: the authenticated admin,
//! verifier or introspector, and the client's address. The rest (JSON
//! bodies, key-id paths, request ids, credentials) is keygate-http's,
//! re-exported here for the handlers' paths.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use keygate_core::audit::{Failure, FailureKind};
use keygate_core::{Admin, AuthFailure, ScopedCaller};

use super::AppState;
use keygate_http::ApiError;

pub use keygate_http::RequestId;
pub use keygate_http::extract::{
    ApiJson, JsonBody, KeyIdPath, body_error, json_response, parse_json,
};

/// Audits a refused credential, then answers it as keygate-http maps it.
fn auth_error(state: &AppState, failure: AuthFailure, parts: &Parts) -> ApiError {
    let reason = match &failure {
        AuthFailure::Unauthenticated(code, _) => code.as_str(),
        AuthFailure::Forbidden(_) => "FORBIDDEN",
        // Storage being down is no failed authentication.
        AuthFailure::Storage(_) => return ApiError::from(failure),
    };
    let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.as_str());
    // The route template, not the path: a path can carry anything a client
    // typed, including a key pasted in the wrong place.
    state.audit_auth_failure(Failure {
        kind: FailureKind::Auth,
        principal: None,
        source: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| state.trusted_proxies.client_ip(c.0.ip(), &parts.headers)),
        reason,
        route: parts
            .extensions
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str),
        method: crate::metrics::method_label(&parts.method),
        request_id,
    });
    ApiError::from(failure)
}

/// The API key of a request to the admin API, which takes nothing else.
fn required_credential(parts: &Parts) -> Result<&str, ApiError> {
    keygate_http::api_credential(&parts.headers)?.ok_or_else(|| {
        ApiError::missing_credentials(
            "send an API key in `Authorization: Bearer <key>` or `X-API-Key`",
        )
    })
}

/// An authenticated admin; a handler taking one cannot run without it.
pub struct AdminAuth(pub Admin);

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = required_credential(parts)?;
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
        state
            .keys
            .authorize_admin(key, request_id)
            .await
            .map(AdminAuth)
            .map_err(|f| auth_error(state, f, parts))
    }
}

/// An authenticated caller of `POST /oauth2/introspect`: a key with the
/// `tokens:introspect` (or `admin`) scope.
pub struct IntrospectorAuth(pub ScopedCaller);

pub const INTROSPECT_SCOPE: &str = "tokens:introspect";

impl FromRequestParts<AppState> for IntrospectorAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = required_credential(parts)?;
        state
            .keys
            .authorize_scope(
                key,
                INTROSPECT_SCOPE,
                "introspection needs a key with the tokens:introspect or admin scope",
            )
            .await
            .map(IntrospectorAuth)
            .map_err(|f| auth_error(state, f, parts))
    }
}

/// An authenticated caller of `POST /v1/keys/verify`.
pub struct VerifyCallerAuth(pub ScopedCaller);

impl FromRequestParts<AppState> for VerifyCallerAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = required_credential(parts)?;
        state
            .keys
            .authorize_verify_caller(key)
            .await
            .map(VerifyCallerAuth)
            .map_err(|f| auth_error(state, f, parts))
    }
}

/// The client's address: the TCP peer, or what the trusted proxies in
/// front of it say (`trusted_proxies`; see `client_addr`).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub std::net::IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or_else(|| ApiError::internal("no peer address on the connection"))?;
        Ok(Self(state.trusted_proxies.client_ip(peer, &parts.headers)))
    }
}
