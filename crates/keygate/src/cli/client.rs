//! A small client for the admin API, used by the `keygate keys` and
//! `keygate users` commands: bodies and answers are keygate-api's types, so
//! the CLI and the server cannot disagree on a field's name. Every failure
//! becomes one readable sentence.

use clap::Args;
use keygate_api::SecretString;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Where the admin API is and how to call it; shared by the admin commands.
#[derive(Args)]
pub struct ServerArgs {
    /// keygate's admin API.
    #[arg(
        long,
        env = "KEYGATE_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// File holding an admin key, `-` for stdin. Without it, the key is
    /// read from KEYGATE_ADMIN_KEY (never from a flag: `ps` shows flags to
    /// every user of the machine).
    #[arg(long, value_name = "FILE", global = true)]
    pub admin_key_file: Option<std::path::PathBuf>,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ServerArgs {
    pub fn client(&self) -> Result<Client, String> {
        Client::new(&self.url, self.admin_key()?)
    }

    fn admin_key(&self) -> Result<Option<String>, String> {
        let Some(path) = &self.admin_key_file else {
            return Ok(std::env::var("KEYGATE_ADMIN_KEY").ok());
        };
        let text = if path.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin())
        } else {
            crate::file_mode::check_private(path, "admin key file")?;
            std::fs::read_to_string(path)
        }
        .map_err(|e| format!("cannot read the admin key file {}: {e}", path.display()))?;
        Ok(Some(text.trim().to_owned()))
    }
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    admin_key: SecretString,
}

impl Client {
    pub fn new(url: &str, admin_key: Option<String>) -> Result<Self, String> {
        let admin_key = admin_key.filter(|k| !k.trim().is_empty()).ok_or(
            "no admin key: set KEYGATE_ADMIN_KEY (or pass --admin-key-file) to the key printed \
             by `keygate init` or by the first `keygate serve`",
        )?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("keygate-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot create an HTTP client: {e}"))?;
        Ok(Self {
            http,
            base: url.trim_end_matches('/').to_owned(),
            admin_key: admin_key.into(),
        })
    }

    /// A request without a body.
    pub async fn call(&self, method: Method, path: &str) -> Result<Value, String> {
        self.send(method, path, None::<&()>).await
    }

    /// A request with one of keygate-api's bodies.
    pub async fn call_with<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<Value, String> {
        self.send(method, path, Some(body)).await
    }

    /// The answer as the server sent it: `--json` prints exactly that, and
    /// `parse` reads it into keygate-api's types for the tables.
    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Value, String> {
        let url = format!("{}{}", self.base, path);
        let mut req = self
            .http
            .request(method, &url)
            .bearer_auth(self.admin_key.expose());
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = req.send().await.map_err(|e| {
            if e.is_connect() {
                format!("cannot reach keygate at {}: is `keygate serve` running? (set --url or KEYGATE_URL)", self.base)
            } else {
                format!("request to {url} failed: {e}")
            }
        })?;
        let status = res.status();
        let text = res
            .text()
            .await
            .map_err(|e| format!("reading the response failed: {e}"))?;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(json);
        }
        Err(describe_problem(status, &json))
    }
}

/// A successful answer read as the keygate-api type the route returns.
pub fn parse<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|e| {
        format!("keygate answered in an unexpected shape ({e}): is it the same version?")
    })
}

/// `?a=1&b=2` from one of keygate-api's query types, or nothing.
pub fn query_string<Q: Serialize>(query: &Q) -> String {
    match serde_urlencoded::to_string(query) {
        Ok(q) if !q.is_empty() => format!("?{q}"),
        _ => String::new(),
    }
}

/// The whole answer, pretty-printed, for `--json`.
pub fn pretty(value: &Value) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(value).unwrap_or_default()
    )
}

fn describe_problem(status: StatusCode, body: &Value) -> String {
    let detail = body.get("detail").and_then(Value::as_str);
    let code = body.get("code").and_then(Value::as_str);
    match (detail, code) {
        (Some(d), Some(c)) => format!("{d} ({c}, HTTP {})", status.as_u16()),
        _ => format!("keygate answered HTTP {}", status.as_u16()),
    }
}
