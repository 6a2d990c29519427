//! `/v1/auth/login`, `/v1/auth/refresh`, `/v1/auth/logout`: user sessions.
//! An access JWT in the body; the refresh token in a `__Host-` cookie
//! (HttpOnly, Secure, SameSite=Strict) or, when the client asks, in the body.
//! Also the session halves of the OAuth endpoints (`refresh_token` grant,
//! refresh-token introspection).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keygate_api::cluster::PropagationBody;
use keygate_api::sessions::{LoginRequest, RefreshRequest, SessionResponse, TokenResponse};
use keygate_core::audit::Failure;
use keygate_core::jwt::{KIND_CLAIM, TokenKind, TokenRequest};
use keygate_core::model::Tenant;
use keygate_core::sessions::model::REASON_LOGOUT;
use keygate_core::sessions::{AuditContext, RefreshError, RefreshToken, TokenState};
use keygate_core::users::LoginError;
use keygate_core::users::model::{UserRecord, earliest_iat_secs};
use serde_json::{Map, Value, json};

use super::AppState;
use super::cluster::{WaitAll, WaitParam, propagate};
use super::error::ApiError;
use super::extract::{ClientIp, RequestId, parse_json};
use super::oauth::OAuthError;
use super::oauth::form::Form;
use super::oauth::token::token_response;

pub const REFRESH_COOKIE: &str = "__Host-keygate-refresh";

fn request_id(headers: &axum::http::Extensions) -> Option<String> {
    headers.get::<RequestId>().map(|r| r.0.clone())
}

/// An access token for `user`, never dated before the user's cut-off.
fn access_token(
    state: &AppState,
    user: &UserRecord,
    sid: &str,
) -> Result<(String, i64), keygate_core::Error> {
    let config = state.tokens.config();
    let mut claims: Map<String, Value> = user.claims.clone().into_iter().collect();
    let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
    claims.insert("roles".into(), json!(roles));
    if let Some(tenant) = &user.tenant {
        claims.insert("tenant".into(), tenant.as_str().into());
    }
    claims.insert("sid".into(), sid.into());
    let now = state.tokens.clock().now_secs();
    let issued = state.tokens.issue(TokenRequest {
        kind: TokenKind::User,
        subject: user.id.as_str().to_owned(),
        audience: config.audience.clone(),
        ttl: config.access_token_ttl,
        not_issued_before: Some(earliest_iat_secs(now, user.sessions_cutoff_ms)),
        claims,
    })?;
    Ok((issued.token, config.access_token_ttl))
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
    let (access, expires_in) = access_token(&state, &user, family.id.as_str())?;
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
        source: Some(client),
        reason,
        route: "/v1/auth/login",
        method: "POST",
        request_id: extensions.get::<RequestId>().map(|r| r.0.as_str()),
    });
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value)
}

/// Why a refresh failed, before any HTTP shape is chosen.
pub enum RefreshFailure {
    Invalid(&'static str),
    Storage(keygate_core::Error),
}

impl From<keygate_core::Error> for RefreshFailure {
    fn from(e: keygate_core::Error) -> Self {
        RefreshFailure::Storage(e)
    }
}

/// Rotates `presented` and mints an access token for its user (the rules,
/// including the user's cut-off, are `SessionService::refresh_user`'s).
async fn rotate(
    state: &AppState,
    presented: &str,
    ctx: &AuditContext,
) -> Result<(RefreshToken, String, i64), RefreshFailure> {
    let (refreshed, user) = match state.sessions.refresh_user(presented, ctx).await {
        Ok(r) => r,
        Err(RefreshError::Storage(e)) => return Err(e.into()),
        Err(RefreshError::Reused) => {
            return Err(RefreshFailure::Invalid(
                "the refresh token was already used; its session has been revoked",
            ));
        }
        Err(RefreshError::Expired) => {
            return Err(RefreshFailure::Invalid("the session has expired"));
        }
        Err(RefreshError::Revoked) => {
            return Err(RefreshFailure::Invalid("the session is revoked"));
        }
        Err(RefreshError::UserRevoked) => {
            return Err(RefreshFailure::Invalid(
                "the user's sessions have been revoked",
            ));
        }
        Err(RefreshError::Invalid) => {
            return Err(RefreshFailure::Invalid("the refresh token is not valid"));
        }
    };
    let (access, expires_in) = access_token(state, &user, refreshed.family.id.as_str())?;
    Ok((refreshed.token, access, expires_in))
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

/// Blocklists a token keygate signed until its `exp`, even one not yet
/// valid; anything else is ignored (RFC 7009: nothing to revoke).
pub async fn block_access_token(
    state: &AppState,
    token: &str,
    ctx: &AuditContext,
) -> Result<bool, keygate_core::Error> {
    match state.tokens.verify_for_revocation(token) {
        Ok((jti, exp)) => {
            state.blocklist.block(&jti, exp, ctx).await?;
            Ok(true)
        }
        Err(keygate_core::jwt::TokenError::Storage(e)) => Err(e),
        Err(_) => Ok(false),
    }
}

/// `grant_type=refresh_token` at `/oauth2/token`.
pub async fn refresh_grant(
    state: &AppState,
    _headers: &HeaderMap,
    form: &Form,
) -> Result<Response, OAuthError> {
    let presented = form.require("refresh_token")?;
    let ctx = AuditContext::new("oauth", None);
    match rotate(state, presented, &ctx).await {
        Ok((refresh, access, expires_in)) => Ok(token_response(TokenResponse {
            access_token: access.into(),
            token_type: "Bearer".into(),
            expires_in,
            scope: None,
            refresh_token: Some(refresh.expose().into()),
        })),
        Err(RefreshFailure::Storage(e)) => Err(OAuthError::from_core(e)),
        Err(RefreshFailure::Invalid(why)) => Err(OAuthError::invalid_grant(why)),
    }
}

/// Introspection of a refresh token: `None` when `token` is not one.
pub async fn introspect_refresh(
    state: &AppState,
    token: &str,
    tenant: Option<&Tenant>,
) -> Result<Option<Value>, OAuthError> {
    if RefreshToken::parse(token).is_none() {
        return Ok(None);
    }
    let status = state
        .sessions
        .family_of(token)
        .await
        .map_err(OAuthError::from_core)?;
    let Some(status) = status.filter(|s| s.state == TokenState::Active) else {
        return Ok(Some(super::oauth::introspect::inactive()));
    };
    let family = &status.family;
    if tenant.is_some_and(|t| family.tenant.as_ref() != Some(t)) {
        return Ok(Some(super::oauth::introspect::inactive()));
    }
    let mut out = json!({
        "active": true,
        "token_type": "refresh_token",
        // A refresh token only ever belongs to a user's session.
        (KIND_CLAIM): TokenKind::User.as_str(),
        "sub": family.user_id,
        "sid": family.id.as_str(),
        "iat": family.created_at_ms / 1000,
        "exp": state.sessions.expires_at_ms(family) / 1000,
    });
    if let (Some(t), Some(map)) = (&family.tenant, out.as_object_mut()) {
        map.insert("tenant".into(), t.as_str().into());
    }
    Ok(Some(out))
}
