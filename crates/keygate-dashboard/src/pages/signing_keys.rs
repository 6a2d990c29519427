//! The JWT signing keys: each one's state and its next transitions, and
//! rotating now. They are server-wide, so only a root admin sees them
//! (the service refuses a tenant admin, and so does this page).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use keygate_core::jwt::{KeyState, KeyStatus};
use serde::Deserialize;

use crate::error::PageError;
use crate::render::{Layout, When, page, when};
use crate::session::{Session, SessionForm};
use crate::{BASE, Deps};

pub struct SigningKeyView {
    pub kid: String,
    pub alg: &'static str,
    pub generation: i64,
    pub state: &'static str,
    pub created: When,
    pub activates: When,
    pub retires: Option<When>,
    pub unpublished: Option<When>,
    /// What happens to it next, in words.
    pub next: String,
}

fn state_name(s: KeyState) -> &'static str {
    match s {
        KeyState::Pending => "Pending",
        KeyState::Active => "Active",
        KeyState::Retired => "Retired",
        KeyState::Expired => "Expired",
    }
}

impl SigningKeyView {
    fn of(s: &KeyStatus, now: i64) -> Self {
        let r = &s.record;
        let next = match (s.state, s.retire_at, s.unpublish_at) {
            (KeyState::Pending, _, _) => {
                format!("starts signing {}", when(r.activate_at, now).text)
            }
            (KeyState::Active, Some(at), _) => format!("replaced {}", when(at, now).text),
            (KeyState::Active, None, _) => "signs until the next rotation".into(),
            (KeyState::Retired, _, Some(at)) => format!("leaves the JWKS {}", when(at, now).text),
            (KeyState::Retired, _, None) | (KeyState::Expired, _, _) => "to be deleted".into(),
        };
        Self {
            kid: r.kid.clone(),
            alg: r.alg.as_str(),
            generation: r.generation,
            state: state_name(s.state),
            created: when(r.created_at, now),
            activates: when(r.activate_at, now),
            retires: s.retire_at.map(|at| when(at, now)),
            unpublished: s.unpublish_at.map(|at| when(at, now)),
            next,
        }
    }
}

#[derive(Template)]
#[template(path = "signing_keys.html")]
struct SigningKeysPage {
    layout: Layout,
    keys: Vec<SigningKeyView>,
    notice: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Notice {
    rotated: Option<String>,
}

pub async fn show(
    State(deps): State<Deps>,
    session: Session,
    Query(q): Query<Notice>,
) -> Result<Html<String>, PageError> {
    let now = deps.clock.now_secs();
    let mut keys: Vec<SigningKeyView> = deps
        .tokens
        .signing_keys(session.admin())?
        .iter()
        .map(|s| SigningKeyView::of(s, now))
        .collect();
    // Newest first: the key that matters next is at the top.
    keys.reverse();
    let notice = match q.rotated.as_deref() {
        Some("new") => Some(
            "A new key was added; it starts signing once every verifier can have fetched it."
                .into(),
        ),
        Some("pending") => Some("A rotation is already pending; no other key was added.".into()),
        _ => None,
    };
    page(&SigningKeysPage {
        layout: session.layout("Signing keys", "/signing-keys"),
        keys,
        notice,
    })
}

/// Adds a pending key (or finds the one already pending), then back to the
/// list with a notice that says which.
pub async fn rotate(State(deps): State<Deps>, form: SessionForm) -> Result<Response, PageError> {
    let (_, added) = deps.tokens.rotate(form.session.admin()).await?;
    let which = if added { "new" } else { "pending" };
    Ok(Redirect::to(&format!("{BASE}/signing-keys?rotated={which}")).into_response())
}
