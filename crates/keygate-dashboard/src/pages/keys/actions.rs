//! One key's actions: rotate (with a grace period for the old secret),
//! revoke (after a confirm page), and its HMAC signing secret. Rotate and
//! the signing secret answer the secret page directly, like create.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use keygate_core::model::KeyRecord;
use serde::Deserialize;

use super::{KeyView, key_id, now};
use crate::error::PageError;
use crate::render::{Layout, page};
use crate::session::{Session, SessionForm};
use crate::{BASE, Deps};

/// The grace periods offered, in seconds, with their labels: the API allows
/// any value up to 7 days; the page offers these.
pub const GRACE_CHOICES: &[(i64, &str)] = &[
    (0, "none: the old secret stops now"),
    (600, "10 minutes"),
    (3600, "1 hour"),
    (86_400, "24 hours"),
    (604_800, "7 days"),
];

/// The show-once page: the secret in this answer and nowhere else.
#[derive(Template)]
#[template(path = "keys/secret.html")]
pub struct SecretPage<'a> {
    layout: Layout,
    heading: &'static str,
    what: &'static str,
    note: String,
    key: KeyView,
    secret: &'a str,
}

impl<'a> SecretPage<'a> {
    /// The page for a key's new secret; `done` is "created" or "rotated".
    pub fn key(
        session: &Session,
        record: &KeyRecord,
        secret: &'a str,
        done: &str,
    ) -> Result<Response, PageError> {
        let heading = if done == "rotated" {
            "Key rotated"
        } else {
            "Key created"
        };
        let page = SecretPage {
            layout: session.layout(heading, "/keys"),
            heading,
            what: "API key",
            note: format!(
                "Its prefix, {}, is all that will be shown from now on.",
                record.prefix
            ),
            key: KeyView::new(record, record.updated_at),
            secret,
        };
        page.answer()
    }

    fn answer(&self) -> Result<Response, PageError> {
        let html: Html<String> = page(self)?;
        Ok(html.into_response())
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RotateForm {
    grace: String,
}

pub async fn rotate(
    State(deps): State<Deps>,
    Path(id): Path<String>,
    form: SessionForm,
) -> Result<Response, PageError> {
    let id = key_id(&id)?;
    let fields: RotateForm = form.parse()?;
    let grace = fields
        .grace
        .parse::<i64>()
        .ok()
        .filter(|g| GRACE_CHOICES.iter().any(|(s, _)| s == g))
        .ok_or_else(|| PageError::BadRequest("grace: choose one of the offered periods".into()))?;
    let issued = deps.keys.rotate(form.session.admin(), &id, grace).await?;
    let mut page = SecretPage {
        layout: form.session.layout("Key rotated", "/keys"),
        heading: "Key rotated",
        what: "API key",
        note: String::new(),
        key: KeyView::new(&issued.record, now(&deps)),
        secret: issued.key.expose(),
    };
    page.note = match GRACE_CHOICES.iter().find(|(s, _)| *s == grace) {
        Some((0, _)) | None => "The old secret stopped working.".into(),
        Some((_, label)) => format!("The old secret keeps working for {label}."),
    };
    page.answer()
}

#[derive(Template)]
#[template(path = "keys/revoke.html")]
struct RevokeConfirm {
    layout: Layout,
    key: KeyView,
}

pub async fn confirm_revoke(
    State(deps): State<Deps>,
    Path(id): Path<String>,
    session: Session,
) -> Result<Html<String>, PageError> {
    let record = deps.keys.get(session.admin(), &key_id(&id)?).await?;
    page(&RevokeConfirm {
        layout: session.layout("Revoke key", "/keys"),
        key: KeyView::new(&record, now(&deps)),
    })
}

pub async fn revoke(
    State(deps): State<Deps>,
    Path(id): Path<String>,
    form: SessionForm,
) -> Result<Response, PageError> {
    let id = key_id(&id)?;
    deps.keys.revoke(form.session.admin(), &id).await?;
    Ok(Redirect::to(&format!("{BASE}/keys/{id}")).into_response())
}

pub async fn signing_secret(
    State(deps): State<Deps>,
    Path(id): Path<String>,
    form: SessionForm,
) -> Result<Response, PageError> {
    let id = key_id(&id)?;
    let issued = deps.hmac.create_secret(form.session.admin(), &id).await?;
    let record = deps.keys.get(form.session.admin(), &id).await?;
    let page = SecretPage {
        layout: form.session.layout("Signing secret", "/keys"),
        heading: "HMAC signing secret",
        what: "signing secret (base64)",
        note: "A secret this key had before stopped working.".into(),
        key: KeyView::new(&record, now(&deps)),
        secret: issued.secret.as_str(),
    };
    page.answer()
}
