//! `/v1/auth/login`, `/v1/auth/refresh`, `/v1/auth/logout`: user sessions.
//! An access JWT in the body; the refresh token in a `__Host-` cookie
//! (HttpOnly, Secure, SameSite=Strict) or, when the client asks, in the body.
//! The steps the OAuth endpoints share are in `session_tokens`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keygate_api::cluster::PropagationBody;
use keygate_api::sessions::{LoginRequest, RefreshRequest, SessionResponse};
use keygate_core::audit::{Failure, FailureKind};
use keygate_core::sessions::model::REASON_LOGOUT;
use keygate_core::sessions::{AuditContext, RefreshToken};
use keygate_core::users::LoginError;

use super::AppState;
use super::cluster::{WaitAll, WaitParam, propagate};
use super::extract::{ClientIp, RequestId, parse_json};
use super::session_tokens::{RefreshFailure, access_token, block_access_token, rotate};
use keygate_http::ApiError;

pub const REFRESH_COOKIE: &str = "__Host-keygate-refresh";

fn request_id(headers: &axum::http::Extensions) -> Option<String> {
    headers.get::<RequestId>().map(|r| r.0.clone())
}

fn refresh_cookie(state: &AppState, token: &str) -> Option<HeaderValue> {
    let max_age = state.sessions.config().absolute_lifetime_secs;
    HeaderValue::from_str(&format!(
        "{REFRESH_COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"
    ))
    .ok()
}

fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-keygate-refresh=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
    )
}

fn session_response(
    state: &AppState,
    access: String,
    expires_in: i64,
    refresh: &RefreshToken,
    in_body: bool,
) -> Response {
    let body = SessionResponse {
        access_token: access.into(),
        token_type: "Bearer".into(),
        expires_in,
        refresh_token: in_body.then(|| refresh.expose().into()),
    };
    let mut res = axum::Json(body).into_response();
    let headers = res.headers_mut();
    super::oauth::no_store(headers);
    if !in_body && let Some(cookie) = refresh_cookie(state, refresh.expose()) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    res
}

#[utoipa::path(post, path = "/v1/auth/login", tag = "sessions", request_body = LoginRequest,
    responses((status = 200, body = SessionResponse), (status = 400), (status = 401), (status = 429)))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: LoginRequest = parse_json(&body)?;
    let user = match state
        .users
        .authenticate(&request.username, request.password.expose(), client)
        .await
    {
        Ok(user) => user,
        Err(LoginError::InvalidCredentials) => {
            audit_failure(&state, client, &extensions, "login_failed");
            return Err(ApiError::unauthorized(
                "invalid_credentials",
                "the username or password is wrong",
                true,
            ));
        }
        Err(LoginError::Throttled { retry_after_secs }) => {
            audit_failure(&state, client, &extensions, "login_throttled");
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "login_throttled",
                "too many failed logins; wait before trying again",
            );
            e.retry_after_secs = Some(retry_after_secs.max(1));
            return Err(e);
        }
        Err(LoginError::Storage(e)) => return Err(e.into()),
    };
    let ctx = AuditContext::new(user.id.as_str(), request_id(&extensions));
    let (refresh, family) = state
        .sessions
        .start(user.id.as_str(), user.tenant.clone(), &ctx)
        .await?;
    let (access, expires_in) = access_token(&state, &user, &family.id)?;
    Ok(session_response(
        &state,
        access,
        expires_in,
        &refresh,
        request.refresh_token_in_body,
    ))
}

/// `client` is the address a trusted proxy named, else the peer.
fn audit_failure(
    state: &AppState,
    client: std::net::IpAddr,
    extensions: &Extensions,
    reason: &str,
) {
    state.audit_auth_failure(Failure {
        kind: FailureKind::Auth,
        principal: None,
        source: Some(client),
        reason,
        route: "/v1/auth/login",
        method: "POST",
        request_id: extensions.get::<RequestId>().map(|r| r.0.as_str()),
    });
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    keygate_http::cookies::cookie(headers, REFRESH_COOKIE)
}

#[utoipa::path(post, path = "/v1/auth/refresh", tag = "sessions",
    request_body(content = Option<RefreshRequest>, description = "empty when the cookie carries the token"),
    responses((status = 200, body = SessionResponse), (status = 400), (status = 401), (status = 403)))]
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: RefreshRequest = if body.is_empty() {
        RefreshRequest::default()
    } else {
        parse_json(&body)?
    };
    let (presented, from_cookie) = match (&request.refresh_token, cookie_token(&headers)) {
        (Some(token), _) => (token.expose_str(), false),
        (None, Some(token)) => (token, true),
        (None, None) => {
            return Err(ApiError::unauthorized(
                "missing_refresh_token",
                "send the refresh token in the __Host-keygate-refresh cookie or as refresh_token",
                false,
            ));
        }
    };
    if from_cookie {
        check_origin(&state, &headers)?;
    }
    let ctx = AuditContext::new("session", request_id(&extensions));
    match rotate(&state, presented, &ctx).await {
        Ok((refresh, access, expires_in)) => Ok(session_response(
            &state,
            access,
            expires_in,
            &refresh,
            !from_cookie,
        )),
        Err(RefreshFailure::Storage(e)) => Err(e.into()),
        Err(RefreshFailure::Invalid(why)) => {
            let mut res =
                ApiError::unauthorized("invalid_refresh_token", why, true).into_response();
            if from_cookie {
                res.headers_mut().insert(header::SET_COOKIE, clear_cookie());
            }
            Ok(res)
        }
    }
}

/// A cookie goes wherever the browser goes: a refresh through it must come
/// from a page of ours, which the browser-set `Origin` header proves.
fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match origin {
        Some(origin) if state.allowed_origins.iter().any(|o| o == origin) => Ok(()),
        Some(_) => Err(ApiError::forbidden(
            "this origin may not refresh the session cookie; add it to allowed_origins",
        )),
        None => Err(ApiError::forbidden(
            "a refresh with the session cookie needs an Origin header",
        )),
    }
}

#[utoipa::path(post, path = "/v1/auth/logout", tag = "sessions",
    params(WaitParam),
    request_body(content = Option<RefreshRequest>, description = "empty when the cookie carries the token"),
    responses((status = 204), (status = 200, body = PropagationBody, description = "with `?wait=all`"),
        (status = 400)))]
pub async fn logout(
    State(state): State<AppState>,
    wait: WaitAll,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: RefreshRequest = if body.is_empty() {
        RefreshRequest::default()
    } else {
        parse_json(&body)?
    };
    let refresh = request
        .refresh_token
        .as_ref()
        .map(|t| t.expose_str())
        .or(cookie_token(&headers));
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    if refresh.is_none() && bearer.is_none() {
        return Err(ApiError::bad_request(
            "nothing_to_log_out",
            "send the refresh token (cookie or body) and/or the access token (Authorization)",
        ));
    }
    let ctx = AuditContext::new("session", request_id(&extensions));
    if let Some(token) = refresh {
        state
            .sessions
            .revoke_by_token(token, REASON_LOGOUT, &ctx)
            .await?;
    }
    if let Some(token) = bearer {
        block_access_token(&state, token, &ctx).await?;
    }
    let mut res = match propagate(&state, wait).await? {
        Some(propagation) => axum::Json(PropagationBody { propagation }).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    };
    res.headers_mut().insert(header::SET_COOKIE, clear_cookie());
    Ok(res)
}
