//! Creating a key. The answer to the POST is the page that shows the secret,
//! once: no redirect, nothing in a URL, `no-store`. A reload re-posts (the
//! browser asks) or, from history, shows nothing.

use askama::Template;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use keygate_core::model::Tenant;
use keygate_core::{KeyEnv, NewKey};
use serde::Deserialize;

use super::actions::SecretPage;
use super::{form, now};
use crate::Deps;
use crate::error::PageError;
use crate::render::{Layout, page};
use crate::session::{Session, SessionForm};

/// The create form's fields, kept as typed so a refusal shows them again.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CreateForm {
    pub name: String,
    pub owner: String,
    pub tenant: String,
    pub scopes: String,
    pub env: String,
    /// Days until expiry; empty for never.
    pub expires_days: String,
    pub rate_limit: String,
    pub rate_period: String,
    pub remaining: String,
    pub metadata: String,
}

#[derive(Template)]
#[template(path = "keys/new.html")]
struct NewPage {
    layout: Layout,
    form: CreateForm,
    error: Option<String>,
    /// A tenant admin's keys go to its tenant; the field is not offered.
    own_tenant: Option<String>,
}

fn new_page(
    session: &Session,
    form: CreateForm,
    error: Option<String>,
) -> Result<Html<String>, PageError> {
    page(&NewPage {
        layout: session.layout("Create key", "/keys"),
        own_tenant: session.admin().tenant().map(|t| t.as_str().to_owned()),
        form,
        error,
    })
}

pub async fn show(session: Session) -> Result<Html<String>, PageError> {
    let form = CreateForm {
        env: "live".into(),
        rate_period: "60".into(),
        ..CreateForm::default()
    };
    new_page(&session, form, None)
}

impl CreateForm {
    fn new_key(&self, now: i64) -> Result<NewKey, PageError> {
        let tenant = self.tenant.trim();
        let expires_at = form::optional_i64("expires", &self.expires_days)?
            .map(|days| {
                if (1..=3650).contains(&days) {
                    Ok(now + days * 86_400)
                } else {
                    Err(PageError::Invalid(
                        "expires: between 1 and 3650 days".into(),
                    ))
                }
            })
            .transpose()?;
        Ok(NewKey {
            name: self.name.trim().to_owned(),
            owner: self.owner.trim().to_owned(),
            tenant: (!tenant.is_empty())
                .then(|| Tenant::parse(tenant))
                .transpose()?,
            scopes: form::scopes(&self.scopes)?,
            metadata: form::metadata(&self.metadata)?,
            expires_at,
            env: KeyEnv::parse(&self.env)
                .ok_or_else(|| PageError::Invalid("environment: live or test".into()))?,
            rate_limit: form::rate_limit(&self.rate_limit, &self.rate_period)?,
            remaining: form::optional_i64("credits", &self.remaining)?,
        })
    }
}

pub async fn submit(State(deps): State<Deps>, form: SessionForm) -> Result<Response, PageError> {
    let fields: CreateForm = form.parse()?;
    let session = &form.session;
    match create(&deps, session, &fields).await {
        Err(e @ (PageError::Invalid(_) | PageError::Conflict(_) | PageError::Forbidden(_))) => {
            let status = e.status();
            let html = new_page(session, fields, Some(e.message()))?;
            Ok((status, html).into_response())
        }
        done => done,
    }
}

async fn create(
    deps: &Deps,
    session: &Session,
    fields: &CreateForm,
) -> Result<Response, PageError> {
    let input = fields.new_key(now(deps))?;
    let issued = deps.keys.create(session.admin(), input).await?;
    SecretPage::key(session, &issued.record, issued.key.expose(), "created")
}
