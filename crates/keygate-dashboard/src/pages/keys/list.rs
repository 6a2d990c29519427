//! The keys table: GET filters (bookmarkable, Back works), a cursor "Next"
//! link, and bulk revoke through a confirm page.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use keygate_core::model::{KeyFilter, KeyStatus, PageRequest, Tenant};
use serde::Deserialize;

use super::{KeyView, key_id, now};
use crate::error::PageError;
use crate::render::{Layout, page};
use crate::session::{Session, SessionForm};
use crate::{BASE, Deps};

/// Rows per page, and the most keys one bulk revoke takes.
pub const PAGE_SIZE: u32 = 50;
pub const MAX_BULK: usize = 100;

/// The filter form's fields, exactly as the URL carries them.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct ListQuery {
    pub q: String,
    pub owner: String,
    pub tenant: String,
    /// `active` (default), `revoked`, `expired`, `all`.
    pub status: String,
    /// Days: only keys expiring within them.
    pub expiring: String,
    pub after: Option<i64>,
    /// How many keys a bulk revoke just revoked, for the notice.
    pub revoked: Option<usize>,
}

#[derive(Template)]
#[template(path = "keys/list.html")]
struct ListPage {
    layout: Layout,
    query: ListQuery,
    rows: Vec<KeyView>,
    /// The "Next" link, when there is a next page.
    next: Option<String>,
    root: bool,
}

impl ListQuery {
    fn filter(&self, now: i64) -> Result<KeyFilter, PageError> {
        let text = crate::pages::filter_text;
        let status = match self.status.as_str() {
            "" | "active" => Some(KeyStatus::Active),
            "revoked" => Some(KeyStatus::Revoked),
            "expired" => Some(KeyStatus::Expired),
            "all" => None,
            _ => {
                return Err(PageError::BadRequest(
                    "status: active, revoked, expired or all".into(),
                ));
            }
        };
        let expires_before = match self.expiring.trim() {
            "" => None,
            days => {
                let days: i64 = days
                    .parse()
                    .ok()
                    .filter(|d| (1..=3650).contains(d))
                    .ok_or_else(|| PageError::BadRequest("expiring: a number of days".into()))?;
                Some(now + days * 86_400)
            }
        };
        Ok(KeyFilter {
            tenant: text("tenant", &self.tenant)?
                .map(|t| Tenant::parse(&t))
                .transpose()?,
            owner: text("owner", &self.owner)?,
            include_revoked: status != Some(KeyStatus::Active),
            search: text("q", &self.q)?,
            status,
            expires_before,
            now,
        })
    }

    /// This query's URL with another cursor.
    fn url_after(&self, after: i64) -> String {
        let pairs = [
            ("q", self.q.as_str()),
            ("owner", &self.owner),
            ("tenant", &self.tenant),
            ("status", &self.status),
            ("expiring", &self.expiring),
        ];
        let mut kept: Vec<(&str, String)> = pairs
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k, v.to_owned()))
            .collect();
        kept.push(("after", after.to_string()));
        let qs = serde_urlencoded::to_string(kept).unwrap_or_default();
        format!("{BASE}/keys?{qs}")
    }
}

pub async fn show(
    State(deps): State<Deps>,
    session: Session,
    Query(query): Query<ListQuery>,
) -> Result<Html<String>, PageError> {
    let now = now(&deps);
    let filter = query.filter(now)?;
    let page_req = PageRequest {
        after: query.after,
        limit: PAGE_SIZE,
    };
    let (keys, next) = deps.keys.list(session.admin(), filter, page_req).await?;
    let mut rows: Vec<KeyView> = keys.iter().map(|k| KeyView::new(k, now)).collect();
    crate::usage::fill_sparklines(&deps, session.admin(), &keys, &mut rows, now).await;
    page(&ListPage {
        layout: session.layout("Keys", "/keys"),
        next: next.map(|n| query.url_after(n)),
        root: session.admin().tenant().is_none(),
        query,
        rows,
    })
}

#[derive(Template)]
#[template(path = "keys/bulk_confirm.html")]
struct BulkConfirm {
    layout: Layout,
    rows: Vec<KeyView>,
}

/// The selected keys, each readable by this admin and not yet revoked.
async fn selected(deps: &Deps, form: &SessionForm) -> Result<Vec<KeyView>, PageError> {
    let ids = form.all("id")?;
    if ids.len() > MAX_BULK {
        return Err(PageError::BadRequest(format!(
            "at most {MAX_BULK} keys at once"
        )));
    }
    let now = now(deps);
    let mut rows = Vec::with_capacity(ids.len());
    for raw in ids {
        let key = deps.keys.get(form.session.admin(), &key_id(&raw)?).await?;
        if key.revoked_at.is_none() {
            rows.push(KeyView::new(&key, now));
        }
    }
    Ok(rows)
}

/// Step one: which keys, on a page that asks to confirm. Changes nothing.
pub async fn confirm_bulk(
    State(deps): State<Deps>,
    form: SessionForm,
) -> Result<Response, PageError> {
    let rows = selected(&deps, &form).await?;
    if rows.is_empty() {
        return Ok(Redirect::to(&format!("{BASE}/keys")).into_response());
    }
    let html = page(&BulkConfirm {
        layout: form.session.layout("Revoke keys", "/keys"),
        rows,
    })?;
    Ok(html.into_response())
}

/// Step two: revoke them, then back to the list with a notice.
pub async fn revoke_bulk(
    State(deps): State<Deps>,
    form: SessionForm,
) -> Result<Response, PageError> {
    let rows = selected(&deps, &form).await?;
    for row in &rows {
        deps.keys
            .revoke(form.session.admin(), &key_id(&row.id)?)
            .await?;
    }
    let to = format!("{BASE}/keys?revoked={}", rows.len());
    Ok(Redirect::to(&to).into_response())
}
