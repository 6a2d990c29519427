//! The static files, embedded in the binary and served as
//! `/dashboard/static/<name>.<hash8>.<ext>`: a changed file gets a new URL,
//! so every answer may be cached for a year (`immutable`).

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// htmx.org 4.0.1 from npm (`dist/htmx.min.js`, 0BSD), byte for byte; a
/// test pins its sha256.
pub const HTMX_VERSION: &str = "4.0.1";
const HTMX: &[u8] = include_bytes!("../static/htmx.min.js");
const APP_JS: &[u8] = include_bytes!("../static/app.js");
const APP_CSS: &[u8] = include_bytes!("../static/app.css");
const ICON: &[u8] = include_bytes!("../static/icon.svg");

pub struct Asset {
    pub bytes: &'static [u8],
    pub content_type: &'static str,
    /// `htmx.a0abb04f.js`: what URLs name.
    pub file: String,
}

impl Asset {
    fn new(stem: &str, ext: &str, bytes: &'static [u8], content_type: &'static str) -> Self {
        let digest = hex::encode(Sha256::digest(bytes));
        Self {
            bytes,
            content_type,
            file: format!("{stem}.{}.{ext}", &digest[..8]),
        }
    }

    /// The asset's absolute URL.
    pub fn url(&self) -> String {
        format!("{}/static/{}", crate::BASE, self.file)
    }
}

/// Hashed once, at first use (startup, in practice: the login page).
pub static ASSETS: LazyLock<[Asset; 4]> = LazyLock::new(|| {
    [
        Asset::new("htmx", "js", HTMX, "text/javascript; charset=utf-8"),
        Asset::new("app", "js", APP_JS, "text/javascript; charset=utf-8"),
        Asset::new("app", "css", APP_CSS, "text/css; charset=utf-8"),
        Asset::new("icon", "svg", ICON, "image/svg+xml"),
    ]
});

pub fn htmx() -> &'static Asset {
    &ASSETS[0]
}
pub fn app_js() -> &'static Asset {
    &ASSETS[1]
}
pub fn app_css() -> &'static Asset {
    &ASSETS[2]
}
/// The tab icon: without one, browsers ask for /favicon.ico and log a 404.
pub fn icon() -> &'static Asset {
    &ASSETS[3]
}

pub async fn serve(Path(file): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.file == file) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let mut res = asset.bytes.into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored htmx is exactly npm's htmx.org 4.0.1 `dist/htmx.min.js`
    /// (`npm pack htmx.org@4.0.1`); a changed byte fails here.
    #[test]
    fn htmx_is_the_pinned_release() {
        let digest = hex::encode(Sha256::digest(HTMX));
        assert_eq!(
            digest,
            "a0abb04f2f45a1f89d1d4844023245537e5e6014c87b144553e0607b4cc32130"
        );
        assert_eq!(HTMX.len(), 37_448);
    }

    #[test]
    fn names_carry_the_content_hash() {
        assert!(htmx().file.starts_with("htmx.a0abb04f."));
        assert!(app_css().file.ends_with(".css"));
        assert_ne!(app_js().file, htmx().file);
        assert_eq!(
            app_js().url(),
            format!("/dashboard/static/{}", app_js().file)
        );
    }
}
