//! One key's page: what it is, the edit form, rotate, revoke, its signing
//! secret, its audit events, and a usage section (filled by the usage hook).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use keygate_core::KeyPatch;
use keygate_core::model::{AuditFilter, KeyRecord, PageRequest};
use serde::Deserialize;

use super::actions::GRACE_CHOICES;
use super::{KeyView, form, key_id, now};
use crate::error::PageError;
use crate::render::{Layout, When, page, when};
use crate::session::{Session, SessionForm};
use crate::{BASE, Deps};

/// The audit events the page lists, newest first.
const EVENTS: u32 = 20;

/// The edit form's fields, as typed.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EditForm {
    pub name: String,
    pub scopes: String,
    pub rate_limit: String,
    pub rate_period: String,
    pub remaining: String,
    /// The credits the page showed: the field is written only when changed,
    /// so saving other fields does not undo credits spent meanwhile.
    pub remaining_was: String,
    pub metadata: String,
    pub expires: String,
}

impl EditForm {
    fn of(key: &KeyRecord) -> Self {
        let remaining = key.remaining.map(|r| r.to_string()).unwrap_or_default();
        Self {
            name: key.name.clone(),
            scopes: key
                .scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            rate_limit: key
                .rate_limit
                .map(|r| r.limit.to_string())
                .unwrap_or_default(),
            rate_period: key.rate_limit.map_or(60, |r| r.period_seconds).to_string(),
            remaining_was: remaining.clone(),
            remaining,
            metadata: serde_json::to_string_pretty(&key.metadata).unwrap_or_default(),
            expires: key.expires_at.map(form::local_time).unwrap_or_default(),
        }
    }

    /// Only the fields that differ from `key` (credits: from what was shown).
    fn patch(&self, key: &KeyRecord) -> Result<KeyPatch, PageError> {
        let scopes = form::scopes(&self.scopes)?;
        let metadata = form::metadata(&self.metadata)?;
        let rate_limit = form::rate_limit(&self.rate_limit, &self.rate_period)?;
        let expires_at = form::expires_at(&self.expires)?;
        let remaining = form::optional_i64("credits", &self.remaining)?;
        let name = self.name.trim();
        Ok(KeyPatch {
            name: (name != key.name).then(|| name.to_owned()),
            scopes: (scopes != key.scopes).then_some(scopes),
            metadata: (metadata != key.metadata).then_some(metadata),
            expires_at: (expires_at != key.expires_at.map(|a| a - a % 60)).then_some(expires_at),
            rate_limit: (rate_limit != key.rate_limit).then_some(rate_limit),
            remaining: (self.remaining.trim() != self.remaining_was.trim()).then_some(remaining),
        })
    }
}

pub struct EventView {
    pub at: When,
    pub action: String,
    pub actor: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "keys/detail.html")]
struct DetailPage {
    layout: Layout,
    key: KeyView,
    form: EditForm,
    error: Option<String>,
    saved: bool,
    events: Vec<EventView>,
    grace: &'static [(i64, &'static str)],
    /// Filled by the usage hook (chart and table); empty hides the section.
    usage: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DetailQuery {
    saved: Option<u8>,
    /// The usage chart's window: `24h` (default), `7d`, `30d`.
    usage: String,
}

async fn detail_page(
    deps: &Deps,
    session: &Session,
    key: &KeyRecord,
    form: EditForm,
    error: Option<String>,
    saved: bool,
    usage_window: &str,
) -> Result<Html<String>, PageError> {
    let now = now(deps);
    let usage =
        crate::usage::key_section(deps, session.admin(), &key.id, usage_window, now).await?;
    let filter = AuditFilter {
        target: Some(key.id.to_string()),
        ..AuditFilter::default()
    };
    let (rows, _) = deps
        .audit
        .list(
            session.admin(),
            filter,
            PageRequest {
                after: None,
                limit: EVENTS,
            },
        )
        .await?;
    let events = rows
        .into_iter()
        .map(|r| EventView {
            at: when(r.entry.at, now),
            action: r.entry.action,
            actor: r.entry.actor,
            detail: r.entry.detail.to_string(),
        })
        .collect();
    page(&DetailPage {
        layout: session.layout(key.name.clone(), "/keys"),
        key: KeyView::new(key, now),
        form,
        error,
        saved,
        events,
        grace: GRACE_CHOICES,
        usage,
    })
}

pub async fn show(
    State(deps): State<Deps>,
    Path(id): Path<String>,
    session: Session,
    Query(q): Query<DetailQuery>,
) -> Result<Html<String>, PageError> {
    let key = deps.keys.get(session.admin(), &key_id(&id)?).await?;
    detail_page(
        &deps,
        &session,
        &key,
        EditForm::of(&key),
        None,
        q.saved == Some(1),
        &q.usage,
    )
    .await
}

pub async fn edit(
    State(deps): State<Deps>,
    Path(id): Path<String>,
    form: SessionForm,
) -> Result<Response, PageError> {
    let id = key_id(&id)?;
    let session = &form.session;
    let fields: EditForm = form.parse()?;
    let key = deps.keys.get(session.admin(), &id).await?;
    let saved = match fields.patch(&key) {
        Ok(patch) => deps
            .keys
            .update(session.admin(), &id, patch)
            .await
            .map_err(PageError::from),
        Err(e) => Err(e),
    };
    match saved {
        Ok(_) => Ok(Redirect::to(&format!("{BASE}/keys/{id}?saved=1")).into_response()),
        Err(e @ (PageError::Invalid(_) | PageError::Conflict(_))) => {
            let status = e.status();
            let html =
                detail_page(&deps, session, &key, fields, Some(e.message()), false, "").await?;
            Ok((status, html).into_response())
        }
        Err(e) => Err(e),
    }
}
