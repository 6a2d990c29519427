//! Signing in with an admin key, signing out, and where signed-out
//! requests are sent.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use keygate_core::SecretString;
use keygate_core::console::ConsoleError;
use serde::Deserialize;

use crate::error::PageError;
use crate::render::{Layout, page};
use crate::session::{self, SessionForm, cookie_token};
use crate::{BASE, Deps};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    key: SecretString,
    #[serde(default)]
    next: Option<String>,
}

/// `next` only ever leads to a dashboard page: a path under BASE, no
/// scheme, no `//` (another host), no backslash, nothing unprintable.
pub fn safe_next(next: Option<&str>) -> String {
    let home = BASE.to_owned();
    let Some(next) = next else { return home };
    let under_base = next == BASE
        || next
            .strip_prefix(BASE)
            .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?'));
    let plain = next.bytes().all(|b| b.is_ascii_graphic()) && !next.contains('\\');
    if under_base && plain && !next.contains("//") {
        next.to_owned()
    } else {
        home
    }
}

fn login_page(status: StatusCode, next: String, error: Option<String>) -> Response {
    let page = page(&LoginPage {
        layout: Layout::anonymous("Sign in"),
        next,
        error,
    });
    match page {
        Ok(html) => (status, html).into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn show(Query(q): Query<NextQuery>) -> Response {
    login_page(StatusCode::OK, safe_next(q.next.as_deref()), None)
}

pub async fn submit(
    State(deps): State<Deps>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let client = deps.trusted_proxies.client_ip(peer.ip(), &headers);
    let presented = form.key.expose().trim();
    match deps.console.login(presented, &client.to_string()).await {
        Ok(login) => {
            // A new session id at every sign-in; the old one ends now.
            if let Some(old) = cookie_token(&headers) {
                let _ = deps.console.logout(old).await;
            }
            let mut res = Redirect::to(&next).into_response();
            if let Some(cookie) = session::set_cookie(login.token.expose()) {
                res.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            res
        }
        Err(ConsoleError::Throttled { retry_after_secs }) => {
            let text = format!("Too many failed sign-ins; try again in {retry_after_secs} s.");
            let mut res = login_page(StatusCode::TOO_MANY_REQUESTS, next, Some(text));
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            res
        }
        Err(ConsoleError::Store(e)) => PageError::from(e).into_response(),
        Err(_) => login_page(
            StatusCode::UNAUTHORIZED,
            next,
            Some("That is not a valid admin key.".into()),
        ),
    }
}

pub async fn logout(State(deps): State<Deps>, form: SessionForm) -> Response {
    if let Err(e) = deps.console.logout(form.session.token()).await {
        return PageError::from(e).into_response();
    }
    let mut res = Redirect::to(&format!("{BASE}/login")).into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie());
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_the_dashboard() {
        assert_eq!(
            safe_next(Some("/dashboard/keys?q=a")),
            "/dashboard/keys?q=a"
        );
        assert_eq!(safe_next(Some("/dashboard")), "/dashboard");
        for bad in [
            "https://evil.example/",
            "//evil.example/dashboard/",
            "/dashboard//evil.example",
            "/dashboardx",
            "/dashboard/\\evil",
            "/v1/keys",
            "/dashboard/a b",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/dashboard", "{bad}");
        }
        assert_eq!(safe_next(None), "/dashboard");
    }
}
