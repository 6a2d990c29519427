//! Debian's chromedriver on a free loopback port, and a headless Chromium
//! session through it (fantoccini). One browser at a time: the machine has
//! two cores and the rest of the suite runs beside these tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder};
use serde_json::json;
use tokio::sync::{Mutex, MutexGuard};

/// Held by each `Browser` for its whole life: tests in this binary run in
/// parallel, browsers here run one after another.
static TURN: Mutex<()> = Mutex::const_new(());

pub fn chromium() -> String {
    std::env::var("KEYGATE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

pub fn chromedriver() -> String {
    std::env::var("KEYGATE_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

/// Whether the browser tests must run (CI, or asked for): then a missing
/// browser fails the test instead of skipping it.
pub fn required() -> bool {
    std::env::var_os("CI").is_some()
        || std::env::var("KEYGATE_BROWSER_TESTS").as_deref() == Ok("require")
}

/// `Some(())` when Chromium and chromedriver are installed; otherwise a
/// clear SKIP line (or a failure when the tests are required).
pub fn browser_or_skip() -> Option<()> {
    installed(&chromium(), &chromedriver(), required())
}

fn installed(chromium: &str, driver: &str, required: bool) -> Option<()> {
    if Path::new(chromium).exists() && Path::new(driver).exists() {
        return Some(());
    }
    assert!(
        !required,
        "browser tests are required (CI or KEYGATE_BROWSER_TESTS=require) but {chromium} or {driver} \
         is missing: apt-get install chromium chromium-driver"
    );
    eprintln!(
        "SKIP browser test: {chromium} or {driver} not installed \
         (apt-get install chromium chromium-driver, or set KEYGATE_CHROMIUM/KEYGATE_CHROMEDRIVER)"
    );
    None
}

/// How a session's browser starts.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// false: Chromium with scripts disabled (`--blink-settings=scriptEnabled=false`).
    pub scripts: bool,
    pub width: u32,
    pub height: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            scripts: true,
            width: 1280,
            height: 800,
        }
    }
}

/// A running chromedriver. Dropping it ends the driver and every browser it
/// started (its own process group), even when the test panicked.
pub struct Driver {
    child: Child,
    pub url: String,
    log: PathBuf,
}

impl Driver {
    fn spawn(dir: &Path) -> Driver {
        let log = dir.join("chromedriver.log");
        // The port is free when asked; if another process takes it first,
        // the driver exits at once and `ready` tries another.
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(chromedriver());
            cmd.arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            #[cfg(unix)]
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            let child = cmd.spawn().expect("start chromedriver");
            let mut driver = Driver {
                child,
                url: format!("http://127.0.0.1:{port}"),
                log: log.clone(),
            };
            if driver.ready(port) {
                return driver;
            }
        }
        panic!("chromedriver did not start; its log: {}", log.display());
    }

    /// Polls the port until the driver answers; false if the driver exited.
    /// Bounded (30 s) only so that a broken install fails instead of hanging.
    fn ready(&mut self, port: u16) -> bool {
        for _ in 0..300 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the Chromium processes it forked.
        #[cfg(unix)]
        {
            let pid = rustix::process::Pid::from_child(&self.child);
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// Chromium's flags: headless, as root (no sandbox), and with nothing that
/// phones home (this machine's network is closed; without these flags
/// Chromium retries Google's hosts at every start).
fn capabilities(profile: &Path, opts: Options) -> Capabilities {
    let mut args = vec![
        "--headless=new".to_owned(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-extensions".into(),
        "--force-device-scale-factor=1".into(),
        format!("--window-size={},{}", opts.width, opts.height),
        format!("--user-data-dir={}", profile.display()),
    ];
    if !opts.scripts {
        args.push("--blink-settings=scriptEnabled=false".into());
    }
    let caps = json!({
        "browserName": "chrome",
        "goog:loggingPrefs": { "browser": "ALL" },
        "goog:chromeOptions": { "binary": chromium(), "args": args },
    });
    match caps {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// A WebDriver session in a fresh profile. Fields drop in order: the
/// session's client, the driver (killing the browser), the profile, and
/// last the turn, so the next browser starts only after this one is gone.
pub struct Session {
    pub client: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl Session {
    pub async fn start(opts: Options) -> Session {
        let turn = TURN.lock().await;
        let profile = tempfile::tempdir().expect("profile dir");
        let driver = Driver::spawn(profile.path());
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(capabilities(&profile.path().join("chromium"), opts));
        let client = match builder.connect(&driver.url).await {
            Ok(client) => client,
            Err(e) => panic!(
                "new browser session: {e}\nchromedriver log:\n{}",
                driver.log_tail()
            ),
        };
        Session {
            client,
            _driver: driver,
            _profile: profile,
            _turn: turn,
        }
    }

    pub fn profile(&self) -> &Path {
        self._profile.path()
    }
}

#[test]
fn a_missing_browser_is_skipped_unless_required() {
    let here = std::env::current_exe().expect("test binary");
    let here = here.to_str().expect("utf-8 path");
    assert_eq!(installed(here, here, false), Some(()));
    assert_eq!(installed("/nonexistent/chromium", here, false), None);
    assert_eq!(installed(here, "/nonexistent/chromedriver", false), None);
    let required = std::panic::catch_unwind(|| installed("/nonexistent/chromium", here, true));
    assert!(
        required.is_err(),
        "a required browser that is missing must fail the test"
    );
}
