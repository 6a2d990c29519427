//! `Browser`: one headless Chromium for one test, with the page checks
//! every dashboard page must pass in both colour schemes.

use std::time::Duration;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use serde_json::json;

use super::checks::{self, LogEntry};
use super::driver::{Options, Session, browser_or_skip};

pub struct Browser {
    session: Session,
    opts: Options,
}

/// What one page showed in one colour scheme.
#[derive(Debug)]
pub struct PageReport {
    pub page: String,
    pub errors: Vec<LogEntry>,
    /// None when scripts are off: the observer is a script, and so are
    /// the animation frames it waits for.
    pub layout_shift: Option<f64>,
    pub axe: Vec<String>,
}

impl PageReport {
    /// Fails the test with every problem of the page at once.
    pub fn assert_clean(&self) {
        let mut problems = Vec::new();
        for e in &self.errors {
            let kind = if e.source == "security" {
                "CSP violation"
            } else {
                "console error"
            };
            problems.push(format!("{kind} ({}): {}", e.source, e.message));
        }
        if let Some(shift) = self.layout_shift.filter(|s| *s != 0.0) {
            problems.push(format!("layout shift {shift} (want 0)"));
        }
        problems.extend(self.axe.iter().map(|v| format!("axe: {v}")));
        assert!(
            problems.is_empty(),
            "{}:\n  {}",
            self.page,
            problems.join("\n  ")
        );
    }
}

impl Browser {
    /// A browser with scripts on, or None (after a SKIP line) when Chromium
    /// is not installed and the tests are not required.
    pub async fn start() -> Option<Browser> {
        Browser::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Option<Browser> {
        browser_or_skip()?;
        let session = Session::start(opts).await;
        Some(Browser { session, opts })
    }

    /// The browser's profile directory (its processes name it).
    pub fn profile(&self) -> std::path::PathBuf {
        self.session.profile().to_path_buf()
    }

    pub fn client(&self) -> &Client {
        &self.session.client
    }

    pub async fn goto(&self, url: &str) {
        if let Err(e) = self.client().goto(url).await {
            panic!("open {url}: {e}");
        }
    }

    pub async fn current_url(&self) -> String {
        self.client()
            .current_url()
            .await
            .expect("current url")
            .to_string()
    }

    /// The page's HTML as the browser holds it now.
    pub async fn source(&self) -> String {
        self.client().source().await.expect("page source")
    }

    pub async fn find(&self, css: &str) -> Element {
        match self.client().find(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => panic!("find {css} on {}: {e}", self.current_url().await),
        }
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client()
            .find_all(Locator::Css(css))
            .await
            .expect("find_all")
    }

    /// Waits for an element that appears later (after an htmx swap, say).
    /// Bounded only so that a broken page fails instead of hanging.
    pub async fn wait_for(&self, css: &str) -> Element {
        let found = self
            .client()
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(e) => e,
            Err(e) => panic!(
                "wait for {css} on {}: {e}\npage text: {}",
                self.current_url().await,
                self.page_text().await
            ),
        }
    }

    /// The start of the page's visible text, for failure messages.
    pub async fn page_text(&self) -> String {
        let body = match self.client().find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(e) => format!("(no body: {e})"),
        };
        body.chars().take(800).collect()
    }

    /// Presses keys on whatever has the focus, as a keyboard does.
    pub async fn keys(&self, keys: &[char]) {
        let mut seq = KeyActions::new("keyboard".into());
        for &k in keys {
            seq = seq
                .then(KeyAction::Down { value: k })
                .then(KeyAction::Up { value: k });
        }
        self.client()
            .perform_actions(seq)
            .await
            .expect("key presses");
    }

    pub async fn press(&self, key: Key) {
        self.keys(&[key.into()]).await;
    }

    pub async fn type_text(&self, text: &str) {
        let chars: Vec<char> = text.chars().collect();
        self.keys(&chars).await;
    }

    /// The focused element's `id` (empty when it has none).
    pub async fn focused_id(&self) -> String {
        let e = self
            .client()
            .active_element()
            .await
            .expect("active element");
        e.attr("id").await.expect("id").unwrap_or_default()
    }

    /// Presses Tab until the focused element matches `css`; fails after
    /// `max` presses.
    pub async fn tab_to(&self, css: &str, max: usize) {
        let script = "return document.activeElement.matches(arguments[0])";
        for _ in 0..max {
            self.press(Key::Tab).await;
            let hit = self
                .client()
                .execute(script, vec![json!(css)])
                .await
                .expect("matches");
            if hit.as_bool() == Some(true) {
                return;
            }
        }
        panic!(
            "{css} not reached with {max} Tab presses on {}",
            self.current_url().await
        );
    }

    /// An input's current value.
    pub async fn value(&self, css: &str) -> String {
        self.find(css)
            .await
            .prop("value")
            .await
            .expect("value")
            .unwrap_or_default()
    }

    pub async fn click(&self, css: &str) {
        if let Err(e) = self.find(css).await.click().await {
            panic!("click {css} on {}: {e}", self.current_url().await);
        }
    }

    /// Lets pages of `origin` read and write the clipboard without asking.
    pub async fn grant_clipboard(&self, origin: &str) {
        let params = json!({
            "origin": origin,
            "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
        });
        checks::cdp(self.client(), "Browser.grantPermissions", params).await;
    }

    pub async fn clipboard(&self) -> String {
        let script = "const done = arguments[0]; \
            navigator.clipboard.readText().then(done, e => done('clipboard: ' + e))";
        let v = self
            .client()
            .execute_async(script, vec![])
            .await
            .expect("read clipboard");
        v.as_str().unwrap_or_default().to_owned()
    }

    pub async fn set_dark(&self, dark: bool) {
        checks::color_scheme(self.client(), dark).await;
    }

    /// Checks the page as it is now: console errors and CSP violations since
    /// the last check, layout shift and axe (when scripts run), and saves a
    /// screenshot `<name>.png`.
    pub async fn report(&self, name: &str) -> PageReport {
        let client = self.client();
        let (layout_shift, axe) = if self.opts.scripts {
            (
                Some(checks::layout_shift(client).await),
                checks::axe_violations(client).await,
            )
        } else {
            (None, Vec::new())
        };
        checks::screenshot(client, name).await;
        let errors = checks::console_errors(client).await;
        PageReport {
            page: format!("{name} ({})", self.current_url().await),
            errors,
            layout_shift,
            axe,
        }
    }

    /// Opens `url` in light and then in dark, asserting each is clean;
    /// screenshots `<name>-light.png` and `<name>-dark.png`.
    pub async fn check_both_schemes(&self, url: &str, name: &str) {
        self.check_schemes(url, name, None).await;
    }

    /// As `check_both_schemes`, for a page answered with an error status
    /// on purpose: Chromium logs the document's own status as a network
    /// error, and that one entry (naming `url` and `status`) is allowed.
    pub async fn check_both_schemes_of_error(&self, url: &str, name: &str, status: u16) {
        self.check_schemes(url, name, Some(status)).await;
    }

    async fn check_schemes(&self, url: &str, name: &str, status: Option<u16>) {
        for (dark, scheme) in [(false, "light"), (true, "dark")] {
            self.set_dark(dark).await;
            // Whatever an earlier page logged is not this page's.
            checks::console(self.client()).await;
            self.goto(url).await;
            let mut report = self.report(&format!("{name}-{scheme}")).await;
            if let Some(status) = status {
                let own = format!(
                    "{url} - Failed to load resource: the server responded with a status of {status}"
                );
                report
                    .errors
                    .retain(|e| !(e.source == "network" && e.message.starts_with(&own)));
            }
            report.assert_clean();
        }
        self.set_dark(false).await;
    }

    /// Ends the WebDriver session politely; dropping the browser instead
    /// (a failed test) kills it.
    pub async fn finish(self) {
        let Browser { session, .. } = self;
        let _ = session.client.clone().close().await;
        drop(session);
    }
}
