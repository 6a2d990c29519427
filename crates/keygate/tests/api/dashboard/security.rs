//! The headers, the cookie, the cross-site refusals and the Strict-cookie
//! retry.

use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use super::{Dash, shown_secret};
use crate::helpers::TestApp;

crate::on_both_backends!(
    every_answer_carries_the_security_headers,
    static_files_are_hashed_and_immutable,
    session_cookie_is_host_only_secure_strict,
    cross_site_and_tokenless_posts_are_refused_and_change_nothing,
    cookieless_get_retries_once_then_asks_to_sign_in,
);

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn header<'a>(page: &'a super::Page, name: &str) -> &'a str {
    page.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn every_answer_carries_the_security_headers(app: TestApp) {
    let mut dash = Dash::new(&app);
    let login = dash.get("/dashboard/login").await;
    let mut signed = Dash::signed_in(&app, &app.root_key).await;
    let keys = signed.get("/dashboard/keys").await;
    let missing = signed.get("/dashboard/nope").await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(keys.status, StatusCode::OK);
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    for page in [&login, &keys, &missing] {
        assert_eq!(header(page, "content-security-policy"), CSP);
        assert_eq!(header(page, "x-content-type-options"), "nosniff");
        assert_eq!(header(page, "referrer-policy"), "no-referrer");
        assert_eq!(header(page, "cross-origin-opener-policy"), "same-origin");
        assert_eq!(header(page, "cache-control"), "no-store");
        assert!(header(page, "content-type").starts_with("text/html"));
        // No inline script or style for the CSP to block.
        assert!(!page.body.contains("style=\""), "inline style");
        assert!(!page.body.contains("<script>"), "inline script");
    }
    assert!(login.body.contains("type=\"password\""));
    assert!(login.body.contains("autocomplete=\"off\""));
}

async fn static_files_are_hashed_and_immutable(app: TestApp) {
    let mut dash = Dash::new(&app);
    let login = dash.get("/dashboard/login").await;
    let src = login
        .body
        .split("src=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap_or(""))
        .find(|s| s.contains("/htmx."))
        .expect("htmx script tag")
        .to_owned();
    assert!(src.starts_with("/dashboard/static/htmx.a0abb04f."), "{src}");
    let js = dash.get(&src).await;
    assert_eq!(js.status, StatusCode::OK);
    assert_eq!(
        header(&js, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert!(header(&js, "content-type").starts_with("text/javascript"));
    assert_eq!(
        hex::encode(Sha256::digest(js.body.as_bytes())),
        "a0abb04f2f45a1f89d1d4844023245537e5e6014c87b144553e0607b4cc32130"
    );
    let css_href = login
        .body
        .split("href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap_or(""))
        .find(|s| s.ends_with(".css"))
        .expect("stylesheet")
        .to_owned();
    let css = dash.get(&css_href).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(header(&css, "content-type").starts_with("text/css"));
    let stale = dash.get("/dashboard/static/htmx.00000000.js").await;
    assert_eq!(stale.status, StatusCode::NOT_FOUND);
}

async fn session_cookie_is_host_only_secure_strict(app: TestApp) {
    let mut dash = Dash::new(&app);
    let res = dash.login(&app.root_key).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let cookie = header(&res, "set-cookie");
    let token = dash.cookie.clone().expect("a session cookie");
    assert_eq!(
        cookie,
        format!("__Host-keygate-dash={token}; Path=/; HttpOnly; Secure; SameSite=Strict")
    );
    // 256 random bits, base64url; never the key itself.
    assert_eq!(token.len(), 43);
    assert!(!cookie.contains(&app.root_key));
    assert!(!res.location().contains(&app.root_key));
    assert!(res.location().starts_with("/dashboard"));
}

async fn cross_site_and_tokenless_posts_are_refused_and_change_nothing(app: TestApp) {
    let mut dash = Dash::signed_in(&app, &app.root_key).await;
    let csrf = dash.csrf().await;
    let base = app.base.clone();
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "x"),
        ("owner", "o"),
        ("env", "live"),
    ];
    let cases: [(&str, Vec<(&str, &str)>); 5] = [
        (
            "foreign origin",
            vec![
                ("origin", "http://localhost:1"),
                ("sec-fetch-site", "cross-site"),
            ],
        ),
        (
            "foreign origin, no fetch metadata",
            vec![("origin", "http://evil.example")],
        ),
        (
            "same-site, not same-origin",
            vec![("origin", base.as_str()), ("sec-fetch-site", "same-site")],
        ),
        ("null origin alone", vec![("origin", "null")]),
        ("no origin, no fetch metadata", vec![]),
    ];
    for (what, headers) in cases {
        let res = dash.post_with("/dashboard/keys", &form, &headers).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{what}");
    }
    // Chromium under no-referrer: Origin null, Sec-Fetch-Site same-origin:
    // passes the origin check, then needs the token like any other post.
    let null_ok = [("origin", "null"), ("sec-fetch-site", "same-origin")];
    let no_token = [("name", "x"), ("owner", "o"), ("env", "live")];
    let res = dash.post_with("/dashboard/keys", &no_token, &null_ok).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "missing token");
    let wrong = [
        ("csrf", "0000"),
        ("name", "x"),
        ("owner", "o"),
        ("env", "live"),
    ];
    let res = dash.post_with("/dashboard/keys", &wrong, &null_ok).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "wrong token");
    // Another session's token is wrong too.
    let mut other = Dash::signed_in(&app, &app.root_key).await;
    let theirs = other.csrf().await;
    assert_ne!(theirs, csrf);
    let res = dash
        .post(
            "/dashboard/keys",
            &[("csrf", &theirs), ("name", "x"), ("owner", "o")],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "another session's token");
    let listed = app.get("/v1/keys").await;
    assert_eq!(
        listed.body["data"].as_array().map(Vec::len),
        Some(1),
        "only the root key"
    );
    // The same form with the right token and origin goes through.
    let res = dash.post_with("/dashboard/keys", &form, &null_ok).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert!(shown_secret(&res.body).starts_with("kg_live_"));
}

async fn cookieless_get_retries_once_then_asks_to_sign_in(app: TestApp) {
    let mut dash = Dash::new(&app);
    let first = dash.get("/dashboard/keys?status=all").await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(
        first.body.contains(
            "<meta http-equiv=\"refresh\" content=\"0;url=/dashboard/keys?status=all&#38;retry=1\">"
        ),
        "{}",
        first.body
    );
    let second = dash.get("/dashboard/keys?status=all&retry=1").await;
    assert_eq!(second.status, StatusCode::SEE_OTHER);
    assert_eq!(
        second.location(),
        "/dashboard/login?next=%2Fdashboard%2Fkeys%3Fstatus%3Dall"
    );
    // After signing in, `next` leads back; a foreign `next` does not.
    let back = dash
        .post(
            "/dashboard/login",
            &[
                ("key", &app.root_key),
                ("next", "/dashboard/keys?status=all"),
            ],
        )
        .await;
    assert_eq!(back.location(), "/dashboard/keys?status=all");
    let foreign = dash
        .post(
            "/dashboard/login",
            &[("key", &app.root_key), ("next", "//evil.example/")],
        )
        .await;
    assert_eq!(foreign.location(), "/dashboard/");
    // A POST without a session is not retried.
    let mut anon = Dash::new(&app);
    let res = anon.post("/dashboard/keys", &[("name", "x")]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert!(res.location().starts_with("/dashboard/login"));
}

/// `[dashboard] enabled = false`: no page, not even the login form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_can_be_turned_off() {
    let toml = "[dashboard]\nenabled = false\n";
    let backend = crate::helpers::Backend::Sqlite;
    let Some(app) = crate::helpers::spawn_app_with_toml(backend, Some(toml), |_| {}).await else {
        return;
    };
    let mut dash = Dash::new(&app);
    let res = dash.get("/dashboard/login").await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}
