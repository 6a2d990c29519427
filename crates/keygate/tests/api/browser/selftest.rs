//! The harness itself: each check fails on a page made to fail it, passes
//! on a clean one, and the browser goes away with the test. Pages served by
//! a small local site with the dashboard's kind of CSP.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::Browser;
use super::driver::Options;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn page(body: &'static str) -> impl IntoResponse {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Fixture</title>\
         <link rel=\"stylesheet\" href=\"/site.css\"></head><body><main><h1>Fixture</h1>{body}</main></body></html>"
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
        ],
        html,
    )
}

fn asset(kind: &'static str, text: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, kind)], text)
}

/// The site on 127.0.0.1:0; answers its base URL. It lives as long as the
/// test's runtime.
async fn fixture_site() -> String {
    const JS: &str = "text/javascript";
    let app = Router::new()
        .route(
            "/good",
            get(|| async {
                page("<form><label for=\"n\">Name</label><input id=\"n\" name=\"n\"></form><script src=\"/ready.js\"></script>")
            }),
        )
        .route("/inline", get(|| async { page("<p>x</p><script>document.title = 'ran'</script>") }))
        .route("/unlabelled", get(|| async { page("<form><input name=\"n\"></form>") }))
        .route("/shift", get(|| async { page("<p>first</p><p>second</p><script src=\"/shift.js\"></script>") }))
        .route("/ready.js", get(|| async { asset(JS, "document.body.dataset.ready = '1';") }))
        .route(
            "/shift.js",
            get(|| async {
                asset(JS, "requestAnimationFrame(() => requestAnimationFrame(() => { \
                    const d = document.createElement('div'); d.style.height = '300px'; \
                    document.querySelector('main').prepend(d); document.body.dataset.shifted = '1'; }));")
            }),
        )
        .route(
            "/site.css",
            get(|| async {
                asset("text/css", "body { background: #fff; color: #111 } \
                    @media (prefers-color-scheme: dark) { body { background: #111; color: #eee } }")
            }),
        )
        // Chromium asks for it on every page; a 404 would be a console error.
        .route("/favicon.ico", get(|| async { axum::http::StatusCode::NO_CONTENT }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn background(browser: &Browser) -> String {
    let v = browser
        .client()
        .execute(
            "return getComputedStyle(document.body).backgroundColor",
            vec![],
        )
        .await
        .expect("computed style");
    v.as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_page_passes_in_both_schemes() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let site = fixture_site().await;
    browser
        .check_both_schemes(&format!("{site}/good"), "selftest/good")
        .await;
    // The scheme really switches, and scripts run.
    browser.goto(&format!("{site}/good")).await;
    assert_eq!(background(&browser).await, "rgb(255, 255, 255)");
    browser.set_dark(true).await;
    assert_eq!(background(&browser).await, "rgb(17, 17, 17)");
    browser.find("body[data-ready='1']").await;
    let shot = super::checks::shots_dir().join("selftest/good-dark.png");
    assert!(std::fs::metadata(&shot).expect("screenshot written").len() > 1000);
    browser.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_check_catches_what_it_looks_for() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let site = fixture_site().await;

    browser.goto(&format!("{site}/inline")).await;
    let report = browser.report("selftest/inline").await;
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.source == "security" && e.message.contains("Content Security Policy")),
        "the blocked inline script is reported: {report:?}"
    );
    assert_eq!(browser.client().title().await.expect("title"), "Fixture");

    browser.goto(&format!("{site}/unlabelled")).await;
    let report = browser.report("selftest/unlabelled").await;
    assert!(report.errors.is_empty(), "{report:?}");
    assert!(
        report.axe.iter().any(|v| v.starts_with("label ")),
        "axe names the missing label: {report:?}"
    );

    browser.goto(&format!("{site}/shift")).await;
    browser.wait_for("body[data-shifted='1']").await;
    let report = browser.report("selftest/shift").await;
    assert!(
        report.layout_shift.is_some_and(|s| s > 0.0),
        "the inserted block shifts the page: {report:?}"
    );
    assert!(
        report.axe.is_empty() && report.errors.is_empty(),
        "{report:?}"
    );
    browser.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_can_be_turned_off() {
    let opts = Options {
        scripts: false,
        ..Options::default()
    };
    let Some(browser) = Browser::start_with(opts).await else {
        return;
    };
    let site = fixture_site().await;
    browser.goto(&format!("{site}/good")).await;
    browser.find("#n").await;
    assert!(browser.source().await.contains("ready.js"));
    assert!(
        browser.find_all("body[data-ready]").await.is_empty(),
        "ready.js must not run"
    );
    browser.finish().await;
}

/// Processes whose command line names `needle`.
fn processes_naming(needle: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let cmdline = std::fs::read(e.ok()?.path().join("cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        cmdline.contains(needle).then_some(cmdline)
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_browser_leaves_no_process() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let profile = browser.profile();
    let needle = profile.to_str().expect("utf-8 path").to_owned();
    assert!(
        !processes_naming(&needle).is_empty(),
        "Chromium runs with its profile"
    );
    // As when a test panics: no polite session end.
    drop(browser);
    // SIGKILL is delivered at once but a process leaves /proc only when it
    // has run its exit; on a loaded machine that takes a moment. A leak is
    // a process still there once the machine has had ample time.
    let mut left = processes_naming(&needle);
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        left = processes_naming(&needle);
    }
    assert_eq!(left, Vec::<String>::new());
}
