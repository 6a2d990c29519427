//! `spawn_app`: a whole keygate on a random port, on a fresh SQLite file or a
//! fresh PostgreSQL database, with a test clock. Each app owns its database
//! and drops it at the end, so tests run in parallel and leave nothing behind.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use keygate::config::{Config, ServeArgs};
use keygate::server::{self, StartError};
use keygate_core::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use keygate_test_support::{Backend, PgDatabase, services_required};

fn random_suffix() -> String {
    keygate_core::keys::apikey::random_id("", 12)
        .expect("random")
        .to_ascii_lowercase()
}

/// Writes a secret file as keygate wants it: readable by its owner only.
pub fn write_private(path: &std::path::Path, contents: impl AsRef<[u8]>) {
    std::fs::write(path, contents).expect("write secret file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
    }
}

pub struct TestApp {
    pub backend: Backend,
    pub addr: std::net::SocketAddr,
    pub base: String,
    pub http: reqwest::Client,
    pub root_key: String,
    pub clock: Arc<ManualClock>,
    pub args: ServeArgs,
    /// The running server's HMAC service, for tests that verify signed
    /// requests directly. (Not the whole `AppState`: its audit sender would
    /// keep `run` from finishing at shutdown.)
    pub hmac: Option<Arc<keygate_core::httpsig::HmacService>>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
    pub dir: tempfile::TempDir,
    pub pg: Option<PgDatabase>,
    /// The running server's services, for driving schedules from a test.
    pub state: Option<keygate::http::AppState>,
    /// Its certificate, when TLS is configured.
    pub tls: Option<keygate::tls::Tls>,
    /// The gateway's listener, when the configuration has one.
    pub gateway_addr: Option<std::net::SocketAddr>,
    /// Envoy's gRPC ext_authz listener, when `[ext_authz] listen` is set.
    pub ext_authz_addr: Option<std::net::SocketAddr>,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

/// A running app, or None when the backend is not available here.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// A running app whose settings `configure` adjusted first.
pub async fn spawn_app_with(
    backend: Backend,
    configure: impl FnOnce(&mut ServeArgs),
) -> Option<TestApp> {
    spawn_app_with_toml(backend, None, configure).await
}

/// A running app configured by a TOML file (written into its directory and
/// kept for reloads), then by `configure`.
pub async fn spawn_app_with_toml(
    backend: Backend,
    toml: Option<&str>,
    configure: impl FnOnce(&mut ServeArgs),
) -> Option<TestApp> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (database_url, pepper_file, master_key_file, pg) = match backend {
        Backend::Sqlite => (
            keygate_test_support::sqlite_url(dir.path()),
            None,
            None,
            None,
        ),
        Backend::Postgres => {
            let pg = PgDatabase::create().await?;
            let pepper: PathBuf = dir.path().join("pepper");
            write_private(
                &pepper,
                format!("test-pepper-{}-0123456789abcdefghij", random_suffix()),
            );
            let master: PathBuf = dir.path().join("master-key");
            write_private(
                &master,
                "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            );
            (pg.url.clone(), Some(pepper), Some(master), Some(pg))
        }
    };
    let mut args = ServeArgs {
        listen: Some("127.0.0.1:0".into()),
        database_url: Some(database_url),
        pepper_file,
        master_key_file,
        ..ServeArgs::default()
    };
    args.jwt.issuer = Some("https://auth.keygate.test".into());
    if let Some(text) = toml {
        let path = dir.path().join("keygate.toml");
        std::fs::write(&path, text).expect("config file");
        args.config = Some(path);
    }
    configure(&mut args);
    let clock = Arc::new(ManualClock::starting_now());
    let mut app = TestApp {
        backend,
        addr: "127.0.0.1:0".parse().expect("addr"),
        base: String::new(),
        http: reqwest::Client::new(),
        root_key: String::new(),
        clock,
        args,
        hmac: None,
        shutdown: None,
        handle: None,
        dir,
        pg,
        state: None,
        tls: None,
        gateway_addr: None,
        ext_authz_addr: None,
    };
    app.start().await;
    Some(app)
}

impl TestApp {
    /// keygate's JWKS as a downstream service fetches it.
    pub async fn served_jwks(&self) -> keygate_verify::JwkSet {
        let body = self
            .http
            .get(format!("{}/.well-known/jwks.json", self.base))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        keygate_verify::JwkSet::from_json(&body, &keygate_verify::ImportOptions::remote()).unwrap()
    }

    async fn start(&mut self) {
        self.try_start().await.expect("build");
    }

    async fn try_start(&mut self) -> Result<(), StartError> {
        let config = Config::load(&self.args).expect("config");
        let mut built = server::build(&config, self.clock.clone()).await?;
        self.gateway_addr = built.bind_gateway().await.expect("gateway listener");
        self.ext_authz_addr = built.bind_ext_authz().await.expect("ext_authz listener");
        if let Some(root) = built.bootstrap_if_empty().await.expect("bootstrap") {
            self.root_key = root.key.expose().to_owned();
        }
        self.state = Some(built.state.clone());
        self.tls = built.tls.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        self.addr = listener.local_addr().expect("addr");
        self.base = format!("http://{}", self.addr);
        self.hmac = Some(built.state.hmac.clone());
        let (tx, rx) = oneshot::channel::<()>();
        self.shutdown = Some(tx);
        self.handle = Some(tokio::spawn(server::run(listener, built, async {
            let _ = rx.await;
        })));
        Ok(())
    }

    pub fn state(&self) -> &keygate::http::AppState {
        self.state.as_ref().expect("started")
    }

    pub async fn stop(&mut self) {
        self.state = None;
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("join").expect("server ran");
        }
    }

    /// Stops the server and starts a new one on the same database and pepper.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start().await;
    }

    /// Another node: a second server on the same database, pepper, master
    /// key and configuration, sharing the clock. It owns no database (this
    /// app drops it) and has a directory of its own.
    pub async fn second_node(&self) -> TestApp {
        self.try_second_node().await.expect("build")
    }

    /// As `second_node`, answering why the server refused to start.
    pub async fn try_second_node(&self) -> Result<TestApp, StartError> {
        self.second_node_with(|_| {}).await
    }

    /// As `try_second_node`, with its settings adjusted by `configure`.
    pub async fn second_node_with(
        &self,
        configure: impl FnOnce(&mut ServeArgs),
    ) -> Result<TestApp, StartError> {
        let mut args = self.args.clone();
        configure(&mut args);
        let mut node = TestApp {
            backend: self.backend,
            addr: "127.0.0.1:0".parse().expect("addr"),
            base: String::new(),
            http: self.http.clone(),
            root_key: self.root_key.clone(),
            clock: self.clock.clone(),
            args,
            hmac: None,
            shutdown: None,
            handle: None,
            dir: tempfile::tempdir().expect("tempdir"),
            pg: None,
            state: None,
            tls: None,
            gateway_addr: None,
            ext_authz_addr: None,
        };
        node.try_start().await?;
        Ok(node)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Self::collect(req.send().await.expect("send")).await
    }

    pub async fn raw(&self, req: reqwest::RequestBuilder) -> Response {
        Self::collect(req.send().await.expect("send")).await
    }

    async fn collect(res: reqwest::Response) -> Response {
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Response {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path, Some(&self.root_key.clone()), None)
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.request(Method::POST, path, Some(&self.root_key.clone()), Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Response {
        self.request(
            Method::PATCH,
            path,
            Some(&self.root_key.clone()),
            Some(body),
        )
        .await
    }

    /// Creates a key as root and returns (id, secret).
    pub async fn create_key(&self, body: Value) -> (String, String) {
        let res = self.post("/v1/keys", body).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        (
            res.body["id"].as_str().expect("id").to_owned(),
            res.body["key"].as_str().expect("key").to_owned(),
        )
    }

    /// Verifies `key` with the root key as the caller.
    pub async fn verify(&self, key: &str, scopes: &[&str]) -> Value {
        let res = self
            .post(
                "/v1/keys/verify",
                serde_json::json!({ "key": key, "required_scopes": scopes }),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        res.body
    }

    pub async fn verify_code(&self, key: &str) -> String {
        self.verify(key, &[]).await["code"]
            .as_str()
            .expect("code")
            .to_owned()
    }

    pub async fn metric(&self, name_and_labels: &str) -> f64 {
        let res = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics");
        let text = res.text().await.expect("text");
        text.lines()
            .find(|l| l.starts_with(name_and_labels))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
