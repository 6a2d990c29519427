//! What every dashboard answer carries, and the cross-site check every
//! request that may change something passes before its handler runs.
//!
//! CSRF has three layers: the cookie is `SameSite=Strict` (a cross-site
//! form arrives without it), this Origin / `Sec-Fetch-Site` check, and the
//! per-session form token (`session::SessionForm`).

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::PageError;

/// No inline script or style, not even a `style=""` attribute: htmx 4 runs
/// under it (its indicator CSS uses `adoptedStyleSheets`).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Sets the security headers; `Cache-Control: no-store` unless the handler
/// chose a policy (the hashed static files).
pub async fn headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Refuses a request that may change state unless it provably comes from a
/// dashboard page: `Sec-Fetch-Site`, when sent, must be `same-origin`, and
/// an `Origin`, when sent, must name this host. One of the two must be
/// there. `Origin: null` counts as absent: Chromium sends it on same-origin
/// form posts under `Referrer-Policy: no-referrer`.
pub async fn check_origin(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || same_origin(req.headers()) {
        return next.run(req).await;
    }
    // A page, like every other refusal: the person who followed a forged
    // form sees why nothing happened and can navigate on.
    PageError::Forbidden(
        "this request did not come from a dashboard page (cross-site request)".into(),
    )
    .into_response()
}

fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let fetch_site = text("sec-fetch-site");
    let origin = text("origin").filter(|o| *o != "null");
    let host = text("host");
    if fetch_site.is_some_and(|s| s != "same-origin") {
        return false;
    }
    match origin {
        Some(origin) => host.is_some_and(|h| origin_names_host(origin, h)),
        None => fetch_site == Some("same-origin"),
    }
}

/// `http://127.0.0.1:8080` names host `127.0.0.1:8080`. The scheme is not
/// compared (the dashboard does not know whether TLS ends in front of it);
/// a browser that sends Origin also sends `Sec-Fetch-Site`, which tells an
/// http page from an https one apart.
fn origin_names_host(origin: &str, host: &str) -> bool {
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    authority.is_some_and(|a| a.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_origin_posts_pass() {
        let host = ("host", "127.0.0.1:8080");
        assert!(same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin")
        ])));
        // Chromium under no-referrer: Origin null, Sec-Fetch-Site decides.
        assert!(same_origin(&headers(&[
            host,
            ("origin", "null"),
            ("sec-fetch-site", "same-origin")
        ])));
    }

    #[test]
    fn cross_site_and_unprovable_posts_fail() {
        let host = ("host", "127.0.0.1:8080");
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "http://localhost:8080")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:8081")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:8080"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("sec-fetch-site", "same-site")
        ])));
        assert!(!same_origin(&headers(&[host, ("origin", "null")])));
        assert!(!same_origin(&headers(&[host])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "127.0.0.1:8080")
        ])));
    }
}
