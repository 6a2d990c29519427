//! The dashboard session: a `__Host-keygate-dash` cookie holding a random
//! token that `ConsoleSessions` knows by its hash only. A handler that takes
//! a [`Session`] cannot run signed out; one that takes a [`SessionForm`]
//! cannot run without the session's form token either.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Redirect, Response};
use keygate_core::console::{ConsoleError, Resumed};
use keygate_core::{Admin, SecretString};
use serde::de::DeserializeOwned;

use crate::error::PageError;
use crate::render::{Layout, page};
use crate::{BASE, Deps};

pub const COOKIE: &str = "__Host-keygate-dash";

/// The form field every dashboard form carries.
pub const CSRF_FIELD: &str = "csrf";

/// A live dashboard session: who is signed in, and the form token every
/// page puts in its forms.
pub struct Session {
    pub resumed: Resumed,
    pub csrf: String,
    token: SecretString,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("key_id", &self.resumed.key_id)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub fn admin(&self) -> &Admin {
        &self.resumed.admin
    }
    pub fn token(&self) -> &str {
        self.token.expose()
    }
}

/// The cookie's value, if the request has one.
pub fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    keygate_http::cookies::cookie(headers, COOKIE)
}

/// `Set-Cookie` for a new session: host-only, HTTPS-or-loopback only, never
/// readable by scripts, never sent on a cross-site request. No Max-Age: the
/// server ends the session (idle and absolute expiry), the browser at exit.
pub fn set_cookie(token: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict"
    ))
    .ok()
}

pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-keygate-dash=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
    )
}

impl FromRequestParts<Deps> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, deps: &Deps) -> Result<Self, Response> {
        let Some(token) = cookie_token(&parts.headers) else {
            return Err(signed_out(parts, false));
        };
        match deps.console.resume(token).await {
            // The retry worked: show the address the link named, not the
            // marker (so it can be bookmarked and shared as it was).
            Ok(_) if parts.method == Method::GET && retried(parts) => {
                Err(Redirect::to(&without_retry(&here(parts))).into_response())
            }
            Ok(resumed) => Ok(Session {
                csrf: deps.console.csrf_token(token),
                token: SecretString::from(token.to_owned()),
                resumed,
            }),
            Err(ConsoleError::Store(e)) => Err(PageError::from(e).into_response()),
            // Expired, unknown, or its key revoked/rotated away: sign in again.
            Err(_) => Err(signed_out(parts, true)),
        }
    }
}

/// Where a signed-out request goes. A GET without any cookie may be a
/// cross-site navigation (a link in mail or chat) that `SameSite=Strict`
/// stripped the cookie from: it gets one same-origin retry (a meta refresh)
/// before the login form. Anything else goes to the login form at once.
fn signed_out(parts: &Parts, had_cookie: bool) -> Response {
    let here = here(parts);
    if parts.method == Method::GET && !had_cookie && !retried(parts) {
        return retry_page(&here);
    }
    let mut res = to_login(&here);
    if had_cookie {
        res.headers_mut().insert(header::SET_COOKIE, clear_cookie());
    }
    res
}

/// The dashboard address of this request, path and query.
fn here(parts: &Parts) -> String {
    let here = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    // The front page is `/dashboard` itself; nested, its path reads "/".
    let here = here
        .strip_prefix('/')
        .filter(|r| r.is_empty() || r.starts_with('?'))
        .unwrap_or(here);
    format!("{BASE}{here}")
}

/// Whether this request is the one same-origin retry.
fn retried(parts: &Parts) -> bool {
    parts
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "retry=1"))
}

/// A session and a form posted under it, its form token checked (in
/// constant time, by the console).
pub struct SessionForm {
    pub session: Session,
    body: Bytes,
}

impl SessionForm {
    /// The form decoded into `T` (unknown fields, the token among them,
    /// ignored); 400 when it does not decode.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, PageError> {
        serde_urlencoded::from_bytes(&self.body)
            .map_err(|e| PageError::BadRequest(format!("the form did not decode: {e}")))
    }

    /// Every value of a repeated field (checkboxes).
    pub fn all(&self, name: &str) -> Result<Vec<String>, PageError> {
        let pairs: Vec<(String, String)> = self.parse()?;
        Ok(pairs
            .into_iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v)
            .collect())
    }
}

impl FromRequest<Deps> for SessionForm {
    type Rejection = Response;

    async fn from_request(req: Request, deps: &Deps) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, deps).await?;
        let req = Request::from_parts(parts, body);
        let body = Bytes::from_request(req, deps)
            .await
            .map_err(IntoResponse::into_response)?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
            .map_err(|_| PageError::BadRequest("the form did not decode".into()).into_response())?;
        let presented = pairs
            .iter()
            .find(|(k, _)| k == CSRF_FIELD)
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        if !deps.console.check_csrf(session.token(), presented) {
            return Err(PageError::Csrf.into_response());
        }
        Ok(SessionForm { session, body })
    }
}

/// The page that retries a cookie-less GET once (a meta refresh).
#[derive(Template)]
#[template(path = "retry.html")]
struct RetryPage {
    layout: Layout,
    url: String,
}

/// `here` without the retry marker, so it does not pile up.
fn without_retry(here: &str) -> String {
    match here.split_once('?') {
        None => here.to_owned(),
        Some((path, query)) => {
            let kept: Vec<&str> = query.split('&').filter(|p| *p != "retry=1").collect();
            if kept.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{}", kept.join("&"))
            }
        }
    }
}

/// 303 to the login form, coming back to `here` afterwards.
pub fn to_login(here: &str) -> Response {
    let next: String =
        serde_urlencoded::to_string([("next", without_retry(here))]).unwrap_or_default();
    Redirect::to(&format!("{BASE}/login?{next}")).into_response()
}

/// The one same-origin retry of a cookie-less GET: a refresh to `here` with
/// `retry=1`, which then carries the Strict cookie if the browser has one.
pub fn retry_page(here: &str) -> Response {
    let sep = if here.contains('?') { '&' } else { '?' };
    let url = format!("{here}{sep}retry=1");
    match page(&RetryPage {
        layout: Layout::anonymous("Signing in"),
        url,
    }) {
        Ok(html) => html.into_response(),
        Err(e) => e.into_response(),
    }
}

impl Session {
    /// The layout of a page this session sees; `current` is its entry in
    /// the navigation.
    pub fn layout(&self, title: impl Into<String>, current: &str) -> Layout {
        Layout::signed_in(title, &self.resumed, &self.csrf, current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cookie_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-keygate-dash=tok; b=2"),
        );
        assert_eq!(cookie_token(&h), Some("tok"));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("__Host-keygate-dash="),
        );
        assert_eq!(cookie_token(&h), None);
    }

    #[test]
    fn cookie_attributes() {
        let c = set_cookie("abc").unwrap_or_else(clear_cookie);
        let c = c.to_str().unwrap_or_default();
        assert_eq!(
            c,
            "__Host-keygate-dash=abc; Path=/; HttpOnly; Secure; SameSite=Strict"
        );
    }

    #[test]
    fn retry_marker_is_dropped() {
        assert_eq!(without_retry("/dashboard/keys?retry=1"), "/dashboard/keys");
        assert_eq!(
            without_retry("/dashboard/keys?a=1&retry=1"),
            "/dashboard/keys?a=1"
        );
    }
}
