//! `/v1/users`: user accounts for JWT sessions, behind an admin key. Each
//! handler authorises (its extractor), validates, calls one service function
//! and maps the result. No response ever carries a password or its hash.

use axum::Json;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use keygate_core::model::{PageRequest, Tenant};
use keygate_core::users::{Password, Role, UserFilter, UserId, UserRecord};
use keygate_core::{NewUser, UserPatch};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::cluster::{WaitAll, WaitParam, propagate};
use super::error::ApiError;
use super::extract::{AdminAuth, ApiJson};
use super::keys::parse_query;
use super::views::{decode_cursor, encode_cursor, page_limit, rfc3339};

/// No `Debug`: it holds a password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// 1-128 characters accepted by RFC 8265 (PRECIS UsernameCaseMapped: no
    /// spaces or symbols), unique server-wide after its width and case
    /// mapping (`ｃarol`, `CAROL` and `carol` are one name).
    pub username: String,
    /// 12 characters to 1024 bytes. Stored only as an argon2id hash.
    pub password: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// A tenant admin's users land in its own tenant.
    pub tenant: Option<String>,
    /// Extra claims copied into the user's tokens; at most 2 KiB, and not
    /// a name keygate sets itself (iss, sub, aud, exp, roles, tenant, ...).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// No `Debug`: it may hold a password.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    pub roles: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
    /// Disabling ends the user's sessions.
    pub disabled: Option<bool>,
    /// A new password ends the user's sessions.
    pub password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Public id, `usr_` + 16 characters.
    pub id: String,
    pub username: String,
    pub roles: Vec<String>,
    pub tenant: Option<String>,
    #[schema(value_type = Object)]
    pub claims: serde_json::Map<String, serde_json::Value>,
    pub disabled: bool,
    /// Unix milliseconds: tokens issued before it are refused. 0: never.
    pub sessions_cutoff_ms: i64,
    pub created_at: String,
    pub updated_at: String,
    /// With `?wait=all` only: how far the change has spread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation: Option<super::views::PropagationView>,
}

impl UserView {
    pub fn new(u: &UserRecord) -> Self {
        Self {
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
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub data: Vec<UserView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    tenant: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// A user id from the path; anything else is a problem+json 400.
pub struct UserIdPath(pub UserId);

impl<S: Send + Sync> FromRequestParts<S> for UserIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let invalid = || {
            ApiError::bad_request(
                "invalid_user_id",
                "a user id looks like usr_ followed by 16 letters or digits",
            )
        };
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| invalid())?;
        UserId::parse(&id).map(UserIdPath).map_err(|_| invalid())
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
        password: Password::parse(&body.password)?,
        roles: parse_roles(&body.roles)?,
        tenant: body.tenant.as_deref().map(Tenant::parse).transpose()?,
        claims: body.claims,
    };
    let user = state.users.create(&admin, input).await?;
    Ok((StatusCode::CREATED, Json(UserView::new(&user))))
}

/// List users, oldest first, with cursor pagination.
#[utoipa::path(get, path = "/v1/users", operation_id = "list_users", tag = "users",
    params(("tenant" = Option<String>, Query), ("cursor" = Option<String>, Query),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "default 100")),
    responses((status = 200, body = UserList)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    RawQuery(raw): RawQuery,
) -> Result<Json<UserList>, ApiError> {
    let q: ListQuery = parse_query(raw.as_deref())?;
    let filter = UserFilter {
        tenant: q.tenant.as_deref().map(Tenant::parse).transpose()?,
    };
    let page = PageRequest {
        after: decode_cursor(q.cursor.as_deref())?,
        limit: page_limit(q.limit)?,
    };
    let (users, next) = state.users.list(&admin, filter, page).await?;
    Ok(Json(UserList {
        data: users.iter().map(UserView::new).collect(),
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
    Ok(Json(UserView::new(&user)))
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
        password: body.password.as_deref().map(Password::parse).transpose()?,
    };
    let cuts_sessions = patch.password.is_some() || patch.disabled == Some(true);
    let user = state.users.update(&admin, &id, patch).await?;
    if cuts_sessions {
        end_refresh_families(&state, &admin, &user).await?;
    }
    Ok(Json(UserView::new(&user)))
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
    let mut view = UserView::new(&user);
    view.propagation = propagate(&state, wait).await?;
    Ok(Json(view))
}
