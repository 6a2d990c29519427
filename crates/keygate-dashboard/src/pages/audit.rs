//! The audit trail, newest first: filters by action, actor, target and a
//! time range (GET, so a filtered view is a URL), and a cursor "Next".

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use keygate_core::model::{AuditFilter, AuditRow, PageRequest};
use serde::Deserialize;
use time::PrimitiveDateTime;
use time::macros::format_description;

use crate::error::PageError;
use crate::render::{Layout, When, page, when};
use crate::session::Session;
use crate::{BASE, Deps};

pub const PAGE_SIZE: u32 = 50;

/// The filter form's fields as the URL carries them. Times are UTC, as a
/// `datetime-local` input sends them (`2026-12-03T01:30`) or a bare date.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct AuditQuery {
    pub action: String,
    pub actor: String,
    pub target: String,
    pub since: String,
    pub until: String,
    pub after: Option<i64>,
}

/// Unix seconds of a UTC `YYYY-MM-DDTHH:MM[:SS]` or `YYYY-MM-DD`.
pub fn parse_time(field: &'static str, text: &str) -> Result<Option<i64>, PageError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let with_seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let date = format_description!("[year]-[month]-[day]");
    let parsed = PrimitiveDateTime::parse(text, with_seconds)
        .or_else(|_| PrimitiveDateTime::parse(text, minutes))
        .or_else(|_| time::Date::parse(text, date).map(|d| d.midnight()));
    parsed
        .map(|t| Some(t.assume_utc().unix_timestamp()))
        .map_err(|_| {
            PageError::BadRequest(format!(
                "{field}: a UTC time like 2026-12-03T14:30 or a date"
            ))
        })
}

impl AuditQuery {
    pub fn filter(&self) -> Result<AuditFilter, PageError> {
        let text = super::filter_text;
        let since = parse_time("since", &self.since)?;
        let until = parse_time("until", &self.until)?;
        if let (Some(s), Some(u)) = (since, until)
            && u < s
        {
            return Err(PageError::BadRequest(
                "until: must not be before since".into(),
            ));
        }
        Ok(AuditFilter {
            tenant: None,
            action: text("action", &self.action)?,
            actor: text("actor", &self.actor)?,
            target: text("target", &self.target)?,
            since,
            until,
        })
    }

    fn url_after(&self, after: i64) -> String {
        let mut kept: Vec<(&str, String)> = [
            ("action", &self.action),
            ("actor", &self.actor),
            ("target", &self.target),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k, v.clone()))
        .collect();
        kept.push(("after", after.to_string()));
        let qs = serde_urlencoded::to_string(kept).unwrap_or_default();
        format!("{BASE}/audit?{qs}")
    }
}

pub struct EventRow {
    pub at: When,
    pub action: String,
    pub actor: String,
    pub target: String,
    pub tenant: String,
    /// Times seen, for a tally of like failures; 1 for one event.
    pub count: i64,
    pub detail: String,
}

impl EventRow {
    pub fn of(r: &AuditRow, now: i64) -> Self {
        let e = &r.entry;
        Self {
            at: when(e.at, now),
            action: e.action.clone(),
            actor: e.actor.clone(),
            target: e.target.clone().unwrap_or_default(),
            tenant: e.tenant.clone().unwrap_or_default(),
            count: r.count,
            detail: if e.detail.as_object().is_some_and(|o| o.is_empty()) {
                String::new()
            } else {
                e.detail.to_string()
            },
        }
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    query: AuditQuery,
    rows: Vec<EventRow>,
    next: Option<String>,
}

pub async fn show(
    State(deps): State<Deps>,
    session: Session,
    Query(query): Query<AuditQuery>,
) -> Result<Html<String>, PageError> {
    let filter = query.filter()?;
    let now = deps.clock.now_secs();
    let page_req = PageRequest {
        after: query.after,
        limit: PAGE_SIZE,
    };
    let (rows, next) = deps.audit.list(session.admin(), filter, page_req).await?;
    page(&AuditPage {
        layout: session.layout("Audit", "/audit"),
        rows: rows.iter().map(|r| EventRow::of(r, now)).collect(),
        next: next.map(|n| query.url_after(n)),
        query,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn times_are_utc_and_bad_ones_are_refused() {
        assert_eq!(parse_time("since", "1970-01-02").unwrap(), Some(86_400));
        assert_eq!(parse_time("since", "1970-01-01T01:01").unwrap(), Some(3660));
        assert_eq!(parse_time("since", "1970-01-01T00:00:07").unwrap(), Some(7));
        assert_eq!(parse_time("since", " ").unwrap(), None);
        assert!(parse_time("since", "yesterday").is_err());
        let q = AuditQuery {
            since: "2026-12-03".into(),
            until: "2026-12-02".into(),
            ..AuditQuery::default()
        };
        assert!(q.filter().is_err());
    }
}
