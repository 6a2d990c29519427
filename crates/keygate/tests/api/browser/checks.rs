//! What every page must pass in the browser: no console error (Chromium
//! reports CSP violations there, source "security"), no axe-core WCAG 2 A/AA
//! violation, no layout shift; plus a screenshot for people to look at.

use std::path::PathBuf;

use fantoccini::Client;
use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::{Value, json};

/// axe-core 4.14.1, unmodified (`npm pack axe-core@4.14.1`, MPL-2.0).
pub const AXE: &str = include_str!("../../assets/axe.min.js");
/// sha256 of that file; `axe_is_the_pinned_release` checks it.
pub const AXE_SHA256: &str = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c";

/// chromedriver's extension commands: `POST /session/{id}/{path}` with a
/// JSON body (the browser log, Chrome DevTools calls).
#[derive(Debug)]
struct SessionPost {
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for SessionPost {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let id = session_id.unwrap_or_default();
        base_url.join(&format!("session/{id}/{}", self.path))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

/// One entry of Chromium's console log.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub level: String,
    pub source: String,
    pub message: String,
}

/// The console entries since the last call (the driver hands each out once).
pub async fn console(client: &Client) -> Vec<LogEntry> {
    let cmd = SessionPost {
        path: "se/log",
        body: json!({ "type": "browser" }),
    };
    let value = client.issue_cmd(cmd).await.expect("read the browser log");
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    value
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| LogEntry {
                    level: text(e, "level"),
                    source: text(e, "source"),
                    message: text(e, "message"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The console's errors since the last call: anything at SEVERE, which is
/// where Chromium puts script errors, failed loads and CSP violations.
pub async fn console_errors(client: &Client) -> Vec<LogEntry> {
    console(client)
        .await
        .into_iter()
        .filter(|e| e.level == "SEVERE")
        .collect()
}

/// Runs a Chrome DevTools Protocol command in the session's page.
pub async fn cdp(client: &Client, cmd: &str, params: Value) -> Value {
    let post = SessionPost {
        path: "goog/cdp/execute",
        body: json!({ "cmd": cmd, "params": params }),
    };
    match client.issue_cmd(post).await {
        Ok(v) => v,
        Err(e) => panic!("DevTools {cmd}: {e}"),
    }
}

/// Light or dark: what `prefers-color-scheme` answers from now on in this
/// tab (kept across navigations).
pub async fn color_scheme(client: &Client, dark: bool) {
    let value = if dark { "dark" } else { "light" };
    cdp(
        client,
        "Emulation.setEmulatedMedia",
        json!({ "features": [{ "name": "prefers-color-scheme", "value": value }] }),
    )
    .await;
}

/// axe-core's WCAG 2 A and AA violations on the current page, one line each
/// (rule, impact, help, the first few offending nodes).
pub async fn axe_violations(client: &Client) -> Vec<String> {
    // Injected through WebDriver, which the page's CSP does not govern.
    client.execute(AXE, vec![]).await.expect("inject axe-core");
    let script = r#"
        const done = arguments[arguments.length - 1];
        axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa"] } })
          .then(r => done(r.violations.map(v =>
              `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 4).map(n => n.target.join(" ")).join(", ")}`)),
            e => done([`axe failed: ${e}`]));
    "#;
    let value = client.execute_async(script, vec![]).await.expect("run axe");
    strings(&value)
}

/// Cumulative layout shift of the current page since it loaded (shifts
/// right after user input excluded, as CLS defines). The first call installs
/// an observer that also replays the shifts before it; later calls on the
/// same page add what happened since (after an htmx swap, say).
pub async fn layout_shift(client: &Client) -> f64 {
    // Two animation frames first: a shift is reported after the frame that
    // painted it.
    let script = r#"
        const done = arguments[arguments.length - 1];
        if (!window.__kgCls) {
          window.__kgCls = { total: 0, obs: null };
          window.__kgCls.obs = new PerformanceObserver(l => {
            for (const e of l.getEntries()) if (!e.hadRecentInput) window.__kgCls.total += e.value;
          });
          window.__kgCls.obs.observe({ type: "layout-shift", buffered: true });
        }
        requestAnimationFrame(() => requestAnimationFrame(() => {
          for (const e of window.__kgCls.obs.takeRecords())
            if (!e.hadRecentInput) window.__kgCls.total += e.value;
          done(window.__kgCls.total);
        }));
    "#;
    let value = client
        .execute_async(script, vec![])
        .await
        .expect("read layout shift");
    value.as_f64().unwrap_or(f64::NAN)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_else(|| vec![format!("unexpected answer: {value}")])
}

/// `<target dir>/dashboard-shots`, beside the test binary's build.
pub fn shots_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let target = tmp.parent().map(PathBuf::from).unwrap_or(tmp);
    target.join("dashboard-shots")
}

/// Saves the viewport as `<shots_dir>/<name>.png` (`name` may hold a
/// subdirectory) and answers the path.
pub async fn screenshot(client: &Client, name: &str) -> PathBuf {
    let png = client.screenshot().await.expect("screenshot");
    let path = shots_dir().join(format!("{name}.png"));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("shots dir");
    }
    std::fs::write(&path, png).expect("write screenshot");
    path
}

#[test]
fn axe_is_the_pinned_release() {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(AXE.as_bytes()));
    assert_eq!(
        digest, AXE_SHA256,
        "tests/assets/axe.min.js is not axe-core 4.14.1"
    );
    assert!(AXE.starts_with("/*! axe v4.14.1"));
}
