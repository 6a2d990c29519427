//! What every page shares: the layout (assets, navigation, who is signed
//! in, the form token), time cells, and turning a template into an answer.

use askama::Template;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use keygate_core::console::Resumed;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::PageError;
use crate::{BASE, assets};

/// One entry of the main navigation.
pub struct NavItem {
    pub href: String,
    pub label: &'static str,
    pub current: bool,
}

/// The pages in the main navigation, as (path under BASE, label). The
/// pages helper adds its pages here.
pub const NAV: &[(&str, &str)] = &[
    // The front page: `/dashboard` itself (nested, `/dashboard/` is no route).
    ("", "Overview"),
    ("/keys", "Keys"),
    ("/users", "Users"),
    ("/signing-keys", "Signing keys"),
    ("/audit", "Audit"),
    ("/routes", "Routes"),
];

/// Entries only a root admin may open (server-wide things).
const ROOT_ONLY: &[&str] = &["/signing-keys"];

/// Who is signed in, as the header shows it.
pub struct Who {
    pub key_name: String,
    pub key_prefix: String,
    pub tenant: Option<String>,
}

/// The base layout's fields; every page template has one as `layout`.
pub struct Layout {
    pub title: String,
    pub css: String,
    pub htmx: String,
    pub js: String,
    pub icon: String,
    pub who: Option<Who>,
    pub nav: Vec<NavItem>,
    /// The session's form token, for the sign-out form (and every other).
    pub csrf: String,
    pub base: &'static str,
}

impl Layout {
    /// A page for someone signed out (login, errors).
    pub fn anonymous(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            css: assets::app_css().url(),
            htmx: assets::htmx().url(),
            js: assets::app_js().url(),
            icon: assets::icon().url(),
            who: None,
            nav: Vec::new(),
            csrf: String::new(),
            base: BASE,
        }
    }

    /// A signed-in page; `current` is its entry in [`NAV`].
    pub fn signed_in(title: impl Into<String>, r: &Resumed, csrf: &str, current: &str) -> Self {
        Self {
            who: Some(Who {
                key_name: r.key_name.clone(),
                key_prefix: r.key_prefix.clone(),
                tenant: r.tenant.as_ref().map(|t| t.as_str().to_owned()),
            }),
            nav: NAV
                .iter()
                .filter(|(path, _)| r.tenant.is_none() || !ROOT_ONLY.contains(path))
                .map(|(path, label)| NavItem {
                    href: format!("{BASE}{path}"),
                    label,
                    current: *path == current,
                })
                .collect(),
            csrf: csrf.to_owned(),
            ..Self::anonymous(title)
        }
    }
}

/// A template rendered into a page.
pub fn page<T: Template>(template: &T) -> Result<Html<String>, PageError> {
    template
        .render()
        .map(Html)
        .map_err(|e| PageError::Internal(format!("template: {e}")))
}

/// A moment as a `<time>` shows it: UTC RFC 3339 for `datetime`, relative
/// text for people.
pub struct When {
    pub iso: String,
    pub text: String,
}

pub fn when(at: i64, now: i64) -> When {
    let iso = OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    When {
        iso,
        text: relative(at - now),
    }
}

/// "in 3 days", "5 minutes ago", "just now".
pub fn relative(delta: i64) -> String {
    let n = delta.unsigned_abs();
    let (amount, unit) = match n {
        0..60 => return "just now".into(),
        60..3600 => (n / 60, "minute"),
        3600..86_400 => (n / 3600, "hour"),
        _ => (n / 86_400, "day"),
    };
    let plural = if amount == 1 { "" } else { "s" };
    if delta > 0 {
        format!("in {amount} {unit}{plural}")
    } else {
        format!("{amount} {unit}{plural} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        assert_eq!(relative(0), "just now");
        assert_eq!(relative(-59), "just now");
        assert_eq!(relative(120), "in 2 minutes");
        assert_eq!(relative(-3600), "1 hour ago");
        assert_eq!(relative(7 * 86_400 + 5), "in 7 days");
    }

    #[test]
    fn when_is_utc_rfc3339() {
        assert_eq!(when(0, 0).iso, "1970-01-01T00:00:00Z");
    }
}

/// Errors become pages here, beside the layout they render with, so the
/// error type itself stays free of rendering.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(%cause, "dashboard: internal error");
        }
        let status = self.status();
        let page = ErrorPage {
            layout: Layout::anonymous(status.canonical_reason().unwrap_or("Error")),
            status: status.as_u16(),
            message: self.message(),
        };
        let mut res = match page.render() {
            Ok(html) => (status, axum::response::Html(html)).into_response(),
            Err(_) => (status, self.message()).into_response(),
        };
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }
}
