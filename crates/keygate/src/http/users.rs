//! `/v1/users`: user accounts for JWT sessions, behind an admin key. Each
//! handler authorises (its extractor), validates, calls one service function
//! and maps the result. No response ever carries a password or its hash.

use axum::Json;
use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use keygate_api::common::Page;
use keygate_api::users::{CreateUserRequest, UpdateUserRequest, UserListQuery, UserView};
use keygate_core::model::{PageRequest, Tenant};
use keygate_core::users::{Password, Role, UserFilter, UserId, UserRecord};
use keygate_core::{NewUser, UserPatch};

use super::AppState;
use super::cluster::{WaitAll, WaitParam, propagate};
use super::extract::{AdminAuth, ApiJson};
use super::keys::parse_query;
use super::views::{decode_cursor, encode_cursor, page_limit, rfc3339};
use keygate_http::ApiError;
use keygate_http::extract::id_in_path;

/// A user as the API shows it.
pub fn user_view(u: &UserRecord) -> UserView {
    UserView {
        id: u.id.to_string(),
        username: u.username.clone(),
        roles: u.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        tenant: u.tenant.as_ref().map(|t| t.as_str().to_owned()),
        claims: u.claims.clone(),
        disabled: u.disabled,
        sessions_cutoff_ms: u.sessions_cutoff_ms,
        created_at: rfc3339(u.created_at),
        updated_at: rfc3339(u.updated_at),
        propagation: None,
    }
}

/// A user id from the path; anything else is a problem+json 400.
pub struct UserIdPath(pub UserId);

impl<S: Send + Sync> FromRequestParts<S> for UserIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        id_in_path("invalid_user_id", parts, state).await.map(Self)
    }
}

fn parse_roles(roles: &[String]) -> Result<Vec<Role>, ApiError> {
    roles
        .iter()
        .map(|r| Role::parse(r).map_err(ApiError::from))
        .collect()
}

/// Create a user. The password is hashed with argon2id and never returned.
#[utoipa::path(post, path = "/v1/users", operation_id = "create_user", tag = "users", request_body = CreateUserRequest,
    responses((status = 201, body = UserView), (status = 400), (status = 401), (status = 403),
        (status = 409, description = "the username is taken")),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    ApiJson(body): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let input = NewUser {
        username: body.username,
        password: Password::parse(body.password.expose())?,
        roles: parse_roles(&body.roles)?,
        tenant: body.tenant.as_deref().map(Tenant::parse).transpose()?,
        claims: body.claims,
    };
    let user = state.users.create(&admin, input).await?;
    Ok((StatusCode::CREATED, Json(user_view(&user))))
}

/// List users, oldest first, with cursor pagination.
#[utoipa::path(get, path = "/v1/users", operation_id = "list_users", tag = "users",
    params(("tenant" = Option<String>, Query), ("cursor" = Option<String>, Query),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "default 100")),
    responses((status = 200, body = Page<UserView>)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    RawQuery(raw): RawQuery,
) -> Result<Json<Page<UserView>>, ApiError> {
    let q: UserListQuery = parse_query(raw.as_deref())?;
    let filter = UserFilter {
        tenant: q.tenant.as_deref().map(Tenant::parse).transpose()?,
    };
    let page = PageRequest {
        after: decode_cursor(q.cursor.as_deref())?,
        limit: page_limit(q.limit)?,
    };
    let (users, next) = state.users.list(&admin, filter, page).await?;
    Ok(Json(Page {
        data: users.iter().map(user_view).collect(),
        next_cursor: next.map(encode_cursor),
    }))
}

#[utoipa::path(get, path = "/v1/users/{id}", operation_id = "show_user", tag = "users", params(("id" = String, Path, pattern = "^usr_[0-9A-Za-z]{16}$")),
    responses((status = 200, body = UserView), (status = 404)), security(("api_key" = [])))]
pub async fn show(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    UserIdPath(id): UserIdPath,
) -> Result<Json<UserView>, ApiError> {
    let user = state.users.get(&admin, &id).await?;
    Ok(Json(user_view(&user)))
}

/// Change roles, claims, disabled or the password; a new password or
/// disabling ends the user's sessions.
#[utoipa::path(patch, path = "/v1/users/{id}", operation_id = "update_user", tag = "users", params(("id" = String, Path, pattern = "^usr_[0-9A-Za-z]{16}$")),
    request_body = UpdateUserRequest,
    responses((status = 200, body = UserView), (status = 400), (status = 404), (status = 409)),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    UserIdPath(id): UserIdPath,
    ApiJson(body): ApiJson<UpdateUserRequest>,
) -> Result<Json<UserView>, ApiError> {
    let patch = UserPatch {
        roles: body.roles.as_deref().map(parse_roles).transpose()?,
        claims: body.claims,
        disabled: body.disabled,
        password: body
            .password
            .as_ref()
            .map(|p| Password::parse(p.expose()))
            .transpose()?,
    };
    let cuts_sessions = patch.password.is_some() || patch.disabled == Some(true);
    let user = state.users.update(&admin, &id, patch).await?;
    if cuts_sessions {
        end_refresh_families(&state, &admin, &user).await?;
    }
    Ok(Json(user_view(&user)))
}

/// The cut-off already refuses these families; revoking them as well makes
/// introspection and the audit log say so.
async fn end_refresh_families(
    state: &AppState,
    admin: &keygate_core::Admin,
    user: &keygate_core::users::model::UserRecord,
) -> Result<(), ApiError> {
    let ctx = keygate_core::sessions::AuditContext::new(admin.actor(), None);
    state
        .sessions
        .revoke_user_families(
            user.id.as_str(),
            keygate_core::sessions::model::REASON_USER_REVOKED,
            &ctx,
        )
        .await?;
    Ok(())
}

/// End every session of the user: tokens issued and refresh families
/// started before now are refused from here on.
#[utoipa::path(post, path = "/v1/users/{id}/revoke-sessions", operation_id = "revoke_user_sessions", tag = "users",
    params(("id" = String, Path, pattern = "^usr_[0-9A-Za-z]{16}$"), WaitParam),
    responses((status = 200, body = UserView), (status = 404)), security(("api_key" = [])))]
pub async fn revoke_sessions(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    UserIdPath(id): UserIdPath,
    wait: WaitAll,
) -> Result<Json<UserView>, ApiError> {
    let user = state.users.revoke_sessions(&admin, &id).await?;
    end_refresh_families(&state, &admin, &user).await?;
    let mut view = user_view(&user);
    view.propagation = propagate(&state, wait).await?;
    Ok(Json(view))
}
