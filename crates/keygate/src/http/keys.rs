//! `/v1/keys`: the key lifecycle and verification. Each handler authorises
//! (its extractor), validates, calls one service function and maps the result.

use std::borrow::Cow;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use keygate_api::common::Page;
use keygate_api::keys::{
    CreateKeyRequest, IssuedKeyView, KeyListQuery, KeyView, RotateKeyRequest, UpdateKeyRequest,
    VerifyKeyRequest, VerifyKeyResponse,
};
use keygate_core::model::{KeyFilter, KeyStatus, PageRequest, Scope, Tenant};
use keygate_core::{KeyEnv, KeyPatch, NewKey};

use super::AppState;
use super::cluster::{WaitAll, WaitParam, propagate};
use super::extract::{
    AdminAuth, ApiJson, JsonBody, KeyIdPath, VerifyCallerAuth, body_error, json_response,
    parse_json,
};
use super::views::{
    decode_cursor, encode_cursor, key_view, page_limit, parse_time, rate_limit_spec,
    rate_limit_state, rfc3339,
};
use keygate_http::ApiError;

fn parse_scopes<S: AsRef<str>>(scopes: &[S]) -> Result<Vec<Scope>, ApiError> {
    scopes
        .iter()
        .map(|s| Scope::parse(s.as_ref()).map_err(ApiError::from))
        .collect()
}

/// A free-text filter: the same rules as the field it matches, so that
/// nothing a client sends reaches the database as a control character.
pub fn filter_text(field: &'static str, value: Option<String>) -> Result<Option<String>, ApiError> {
    if let Some(v) = &value {
        keygate_core::model::validate_text(field, v)?;
    }
    Ok(value)
}

pub fn parse_query<T: serde::de::DeserializeOwned + Default>(
    raw: Option<&str>,
) -> Result<T, ApiError> {
    match raw {
        None | Some("") => Ok(T::default()),
        Some(q) => serde_urlencoded::from_str(q)
            .map_err(|e| ApiError::bad_request("invalid_query", format!("query string: {e}"))),
    }
}

fn now(state: &AppState) -> i64 {
    state.keys.clock().now_secs()
}

/// Create a key. The secret is in the response and nowhere else, ever.
#[utoipa::path(post, path = "/v1/keys", operation_id = "create_key", tag = "keys", request_body = CreateKeyRequest,
    responses((status = 201, body = IssuedKeyView), (status = 400), (status = 401), (status = 403),
        (status = 409, description = "quota_exceeded: the tenant holds `[keys] max_per_tenant` live keys")),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    ApiJson(body): ApiJson<CreateKeyRequest>,
) -> Result<(StatusCode, Json<IssuedKeyView>), ApiError> {
    let env = match body.env.as_deref() {
        None => KeyEnv::Live,
        Some(e) => KeyEnv::parse(e)
            .ok_or_else(|| ApiError::bad_request("invalid_request", "env: `live` or `test`"))?,
    };
    let input = NewKey {
        name: body.name,
        owner: body.owner,
        tenant: body.tenant.as_deref().map(Tenant::parse).transpose()?,
        scopes: parse_scopes(&body.scopes)?,
        metadata: body.metadata,
        expires_at: body
            .expires_at
            .as_deref()
            .map(|t| parse_time("expires_at", t))
            .transpose()?,
        env,
        rate_limit: body.rate_limit.map(rate_limit_spec),
        remaining: body.remaining,
    };
    let issued = state.keys.create(&admin, input).await?;
    let view = IssuedKeyView {
        record: key_view(&issued.record, now(&state)),
        key: issued.key.expose().into(),
    };
    Ok((StatusCode::CREATED, Json(view)))
}

/// List keys, oldest first, with cursor pagination.
#[utoipa::path(get, path = "/v1/keys", operation_id = "list_keys", tag = "keys",
    params(("tenant" = Option<String>, Query), ("owner" = Option<String>, Query),
        ("include_revoked" = Option<bool>, Query),
        ("q" = Option<String>, Query, description = "case-insensitive substring of name, prefix, id or owner"),
        ("status" = Option<String>, Query, description = "active, revoked or expired; overrides include_revoked"),
        ("expires_before" = Option<String>, Query, description = "RFC 3339: keys expiring before this time"),
        ("cursor" = Option<String>, Query),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "default 100")),
    responses((status = 200, body = Page<KeyView>)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    RawQuery(raw): RawQuery,
) -> Result<Json<Page<KeyView>>, ApiError> {
    let q: KeyListQuery = parse_query(raw.as_deref())?;
    let filter = KeyFilter {
        tenant: q.tenant.as_deref().map(Tenant::parse).transpose()?,
        owner: filter_text("owner", q.owner)?,
        include_revoked: q.include_revoked,
        search: q.q,
        status: q.status.as_deref().map(KeyStatus::parse).transpose()?,
        expires_before: q
            .expires_before
            .as_deref()
            .map(|t| parse_time("expires_before", t))
            .transpose()?,
        // Set by the service from its clock.
        now: 0,
    };
    let page = PageRequest {
        after: decode_cursor(q.cursor.as_deref())?,
        limit: page_limit(q.limit)?,
    };
    let (keys, next) = state.keys.list(&admin, filter, page).await?;
    let now = now(&state);
    Ok(Json(Page {
        data: keys.iter().map(|k| key_view(k, now)).collect(),
        next_cursor: next.map(encode_cursor),
    }))
}

#[utoipa::path(get, path = "/v1/keys/{id}", operation_id = "show_key", tag = "keys", params(("id" = String, Path, pattern = "^key_[0-9A-Za-z]{16}$")),
    responses((status = 200, body = KeyView), (status = 404)), security(("api_key" = [])))]
pub async fn show(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    KeyIdPath(id): KeyIdPath,
) -> Result<Json<KeyView>, ApiError> {
    let key = state.keys.get(&admin, &id).await?;
    Ok(Json(key_view(&key, now(&state))))
}

#[utoipa::path(patch, path = "/v1/keys/{id}", operation_id = "update_key", tag = "keys", params(("id" = String, Path, pattern = "^key_[0-9A-Za-z]{16}$")),
    request_body = UpdateKeyRequest,
    responses((status = 200, body = KeyView), (status = 404), (status = 409)), security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    KeyIdPath(id): KeyIdPath,
    ApiJson(body): ApiJson<UpdateKeyRequest>,
) -> Result<Json<KeyView>, ApiError> {
    let patch = KeyPatch {
        name: body.name,
        scopes: body.scopes.as_deref().map(parse_scopes).transpose()?,
        metadata: body.metadata,
        expires_at: match body.expires_at {
            Some(Some(t)) => Some(Some(parse_time("expires_at", &t)?)),
            Some(None) => Some(None),
            None => None,
        },
        rate_limit: body.rate_limit.map(|r| r.map(rate_limit_spec)),
        remaining: body.remaining,
    };
    let key = state.keys.update(&admin, &id, patch).await?;
    Ok(Json(key_view(&key, now(&state))))
}

/// Issue a new secret; the old one works for `grace_seconds` more, never longer.
#[utoipa::path(post, path = "/v1/keys/{id}/rotate", operation_id = "rotate_key", tag = "keys", params(("id" = String, Path, pattern = "^key_[0-9A-Za-z]{16}$")),
    request_body(content = Option<RotateKeyRequest>, description = "optional"),
    responses((status = 201, body = IssuedKeyView), (status = 404), (status = 409)), security(("api_key" = [])))]
pub async fn rotate(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    KeyIdPath(id): KeyIdPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<IssuedKeyView>), ApiError> {
    let body = body.map_err(body_error)?;
    let body: RotateKeyRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateKeyRequest::default()
    } else {
        parse_json(&body)?
    };
    let issued = state.keys.rotate(&admin, &id, body.grace_seconds).await?;
    let view = IssuedKeyView {
        record: key_view(&issued.record, now(&state)),
        key: issued.key.expose().into(),
    };
    Ok((StatusCode::CREATED, Json(view)))
}

/// Revoke a key: refused on this node from the response on, cache or not.
#[utoipa::path(post, path = "/v1/keys/{id}/revoke", operation_id = "revoke_key", tag = "keys", params(("id" = String, Path, pattern = "^key_[0-9A-Za-z]{16}$"), WaitParam),
    responses((status = 200, body = KeyView), (status = 404)), security(("api_key" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    KeyIdPath(id): KeyIdPath,
    wait: WaitAll,
) -> Result<Json<KeyView>, ApiError> {
    let key = state.keys.revoke(&admin, &id).await?;
    let mut view = key_view(&key, now(&state));
    view.propagation = propagate(&state, wait).await?;
    Ok(Json(view))
}

/// Verify a key. Answers 200 whatever the verdict; `code` says why.
#[utoipa::path(post, path = "/v1/keys/verify", operation_id = "verify_key", tag = "keys", request_body = VerifyKeyRequest,
    responses((status = 200, body = VerifyKeyResponse), (status = 401), (status = 403)),
    security(("api_key" = [])))]
pub async fn verify(
    State(state): State<AppState>,
    VerifyCallerAuth(caller): VerifyCallerAuth,
    JsonBody(bytes): JsonBody,
) -> Result<Response, ApiError> {
    let body: VerifyKeyRequest = parse_json(&bytes)?;
    let scopes = parse_scopes(&body.required_scopes)?;
    let started = Instant::now();
    let v = state
        .keys
        .verify_key(&body.key, &scopes, caller.tenant.as_ref())
        .await?;
    state
        .metrics
        .observe_verification(&v, started.elapsed().as_secs_f64());
    let now_ms = state.keys.clock().now_millis();
    let key = v.record();
    json_response(&VerifyKeyResponse {
        valid: v.is_valid(),
        code: v.code.as_str().into(),
        key_id: key.map(|k| k.id.as_str().into()),
        owner: key.map(|k| k.owner.as_str().into()),
        tenant: key
            .and_then(|k| k.tenant.as_ref())
            .map(|t| t.as_str().into()),
        scopes: key.map(|k| k.scopes.iter().map(|s| s.as_str().into()).collect()),
        metadata: key.map(|k| Cow::Borrowed(&k.metadata)),
        expires_at: key.and_then(|k| k.expires_at.map(rfc3339)),
        remaining: v.remaining,
        ratelimit: v.ratelimit.as_ref().map(|d| rate_limit_state(d, now_ms)),
    })
}
