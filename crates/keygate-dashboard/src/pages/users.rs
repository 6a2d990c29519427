//! Users: the list with a create form, and one user's page with disable /
//! enable, a new password and "revoke sessions" (each destructive change
//! behind a confirm page, all plain forms). Ending sessions both moves the
//! user's cut-off (UserService) and revokes their refresh families
//! (SessionService), as the JSON API does.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use keygate_core::model::{PageRequest, Tenant};
use keygate_core::sessions::AuditContext;
use keygate_core::sessions::model::REASON_USER_REVOKED;
use keygate_core::users::{Password, Role, UserFilter, UserId, UserRecord};
use keygate_core::{Admin, NewUser, UserPatch};
use serde::Deserialize;

use crate::error::PageError;
use crate::render::{Layout, When, page, when};
use crate::session::{Session, SessionForm};
use crate::{BASE, Deps};

pub const PAGE_SIZE: u32 = 50;

pub struct UserView {
    pub id: String,
    pub username: String,
    pub roles: String,
    pub tenant: String,
    pub disabled: bool,
    pub created: When,
    pub sessions_cut: Option<When>,
}

impl UserView {
    fn of(u: &UserRecord, now: i64) -> Self {
        Self {
            id: u.id.to_string(),
            username: u.username.clone(),
            roles: u
                .roles
                .iter()
                .map(Role::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            tenant: u
                .tenant
                .as_ref()
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default(),
            disabled: u.disabled,
            created: when(u.created_at, now),
            sessions_cut: (u.sessions_cutoff_ms > 0)
                .then(|| when(u.sessions_cutoff_ms / 1000, now)),
        }
    }
}

/// The create form as typed (the password is never echoed back).
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CreateForm {
    pub username: String,
    pub password: String,
    pub roles: String,
    pub tenant: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    pub after: Option<i64>,
}

#[derive(Template)]
#[template(path = "users/list.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<UserView>,
    next: Option<String>,
    root: bool,
    form: CreateForm,
    error: Option<String>,
}

fn roles(text: &str) -> Result<Vec<Role>, PageError> {
    Ok(text
        .split_whitespace()
        .map(Role::parse)
        .collect::<Result<Vec<Role>, keygate_core::Error>>()?)
}

fn tenant(text: &str) -> Result<Option<Tenant>, PageError> {
    let t = text.trim();
    Ok(if t.is_empty() {
        None
    } else {
        Some(Tenant::parse(t)?)
    })
}

fn user_id(raw: &str) -> Result<UserId, PageError> {
    UserId::parse(raw).map_err(|_| PageError::NotFound("user"))
}

async fn list_page(
    deps: &Deps,
    session: &Session,
    after: Option<i64>,
    form: CreateForm,
    error: Option<String>,
) -> Result<Html<String>, PageError> {
    let now = deps.clock.now_secs();
    let (users, next) = deps
        .users
        .list(
            session.admin(),
            UserFilter::default(),
            PageRequest {
                after,
                limit: PAGE_SIZE,
            },
        )
        .await?;
    page(&ListPage {
        layout: session.layout("Users", "/users"),
        rows: users.iter().map(|u| UserView::of(u, now)).collect(),
        next: next.map(|n| format!("{BASE}/users?after={n}")),
        root: session.admin().tenant().is_none(),
        form,
        error,
    })
}

pub async fn list(
    State(deps): State<Deps>,
    session: Session,
    Query(q): Query<ListQuery>,
) -> Result<Html<String>, PageError> {
    list_page(&deps, &session, q.after, CreateForm::default(), None).await
}

/// Creates the user and goes to its page; refused values re-render the
/// form (422) with what was typed, less the password.
pub async fn create(State(deps): State<Deps>, form: SessionForm) -> Result<Response, PageError> {
    let mut fields: CreateForm = form.parse()?;
    let created = async {
        let input = NewUser {
            username: fields.username.clone(),
            password: Password::parse(&fields.password)?,
            roles: roles(&fields.roles)?,
            tenant: tenant(&fields.tenant)?,
            claims: Default::default(),
        };
        Ok::<_, PageError>(deps.users.create(form.session.admin(), input).await?)
    }
    .await;
    match created {
        Ok(user) => {
            Ok(Redirect::to(&format!("{BASE}/users/{}?done=created", user.id)).into_response())
        }
        Err(e @ (PageError::Invalid(_) | PageError::Conflict(_) | PageError::Forbidden(_))) => {
            fields.password.clear();
            let status = e.status();
            let html = list_page(&deps, &form.session, None, fields, Some(e.message())).await?;
            Ok((status, html).into_response())
        }
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "users/detail.html")]
struct DetailPage {
    layout: Layout,
    user: UserView,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DetailQuery {
    pub done: String,
}

fn notice(done: &str) -> Option<&'static str> {
    match done {
        "created" => Some("User created."),
        "disabled" => Some("User disabled; their sessions have ended."),
        "enabled" => Some("User enabled."),
        "password" => Some("Password changed; their sessions have ended."),
        "revoked" => Some("Their sessions have ended."),
        _ => None,
    }
}

pub async fn show(
    State(deps): State<Deps>,
    Path(id): Path<String>,
    session: Session,
    Query(q): Query<DetailQuery>,
) -> Result<Html<String>, PageError> {
    let user = deps.users.get(session.admin(), &user_id(&id)?).await?;
    page(&DetailPage {
        layout: session.layout(user.username.clone(), "/users"),
        user: UserView::of(&user, deps.clock.now_secs()),
        notice: notice(&q.done),
        error: None,
    })
}

/// What a confirm page asks about.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Disable,
    Revoke,
}

#[derive(Template)]
#[template(path = "users/confirm.html")]
struct ConfirmPage {
    layout: Layout,
    user: UserView,
    title: &'static str,
    explain: &'static str,
    action: &'static str,
    button: &'static str,
}

async fn confirm(
    deps: &Deps,
    session: &Session,
    id: &str,
    what: Action,
) -> Result<Html<String>, PageError> {
    let user = deps.users.get(session.admin(), &user_id(id)?).await?;
    let (title, explain, action, button) = match what {
        Action::Disable => (
            "Disable user?",
            "They cannot sign in until enabled again, and every session they have ends now.",
            "disable",
            "Disable user",
        ),
        Action::Revoke => (
            "End every session?",
            "Their access tokens and refresh tokens stop working now; they can sign in again.",
            "revoke-sessions",
            "End sessions",
        ),
    };
    page(&ConfirmPage {
        layout: session.layout(title, "/users"),
        user: UserView::of(&user, deps.clock.now_secs()),
        title,
        explain,
        action,
        button,
    })
}

pub async fn confirm_disable(
    State(deps): State<Deps>,
    Path(id): Path<String>,
    session: Session,
) -> Result<Html<String>, PageError> {
    confirm(&deps, &session, &id, Action::Disable).await
}

pub async fn confirm_revoke(
    State(deps): State<Deps>,
    Path(id): Path<String>,
    session: Session,
) -> Result<Html<String>, PageError> {
    confirm(&deps, &session, &id, Action::Revoke).await
}

/// The cut-off already refuses the user's refresh families; revoking them
/// too makes introspection and the audit log say so.
async fn end_families(deps: &Deps, admin: &Admin, user: &UserRecord) -> Result<(), PageError> {
    let ctx = AuditContext::new(admin.actor(), None);
    deps.sessions
        .revoke_user_families(user.id.as_str(), REASON_USER_REVOKED, &ctx)
        .await?;
    Ok(())
}

fn back(id: &UserId, done: &str) -> Response {
    Redirect::to(&format!("{BASE}/users/{id}?done={done}")).into_response()
}

pub async fn disable(
    State(deps): State<Deps>,
    Path(id): Path<String>,
    form: SessionForm,
) -> Result<Response, PageError> {
    let id = user_id(&id)?;
    let admin = form.session.admin();
    let patch = UserPatch {
        disabled: Some(true),
        ..UserPatch::default()
    };
    let user = deps.users.update(admin, &id, patch).await?;
    end_families(&deps, admin, &user).await?;
    Ok(back(&id, "disabled"))
}

pub async fn enable(
    State(deps): State<Deps>,
    Path(id): Path<String>,
    form: SessionForm,
) -> Result<Response, PageError> {
    let id = user_id(&id)?;
    let patch = UserPatch {
        disabled: Some(false),
        ..UserPatch::default()
    };
    deps.users.update(form.session.admin(), &id, patch).await?;
    Ok(back(&id, "enabled"))
}

pub async fn revoke_sessions(
    State(deps): State<Deps>,
    Path(id): Path<String>,
    form: SessionForm,
) -> Result<Response, PageError> {
    let id = user_id(&id)?;
    let admin = form.session.admin();
    let user = deps.users.revoke_sessions(admin, &id).await?;
    end_families(&deps, admin, &user).await?;
    Ok(back(&id, "revoked"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PasswordForm {
    pub password: String,
}

/// A new password ends the user's sessions; a refused one re-renders the
/// page (422) with the reason.
pub async fn set_password(
    State(deps): State<Deps>,
    Path(id): Path<String>,
    form: SessionForm,
) -> Result<Response, PageError> {
    let id = user_id(&id)?;
    let admin = form.session.admin();
    let fields: PasswordForm = form.parse()?;
    let changed = async {
        let patch = UserPatch {
            password: Some(Password::parse(&fields.password)?),
            ..UserPatch::default()
        };
        Ok::<_, PageError>(deps.users.update(admin, &id, patch).await?)
    }
    .await;
    match changed {
        Ok(user) => {
            end_families(&deps, admin, &user).await?;
            Ok(back(&id, "password"))
        }
        Err(e @ PageError::Invalid(_)) => {
            let user = deps.users.get(admin, &id).await?;
            let status = e.status();
            let html = page(&DetailPage {
                layout: form.session.layout(user.username.clone(), "/users"),
                user: UserView::of(&user, deps.clock.now_secs()),
                notice: None,
                error: Some(e.message()),
            })?;
            Ok((status, html).into_response())
        }
        Err(e) => Err(e),
    }
}
