//! A private PostgreSQL (and Redis), a root admin key from `keygate init`,
//! and N nodes sharing one pepper and master key, each with its own id.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::node::{Node, NodeSpec, command};
use super::pg::PrivatePg;
use super::random_hex;
use keygate_test_support::redis::PrivateRedis;

pub struct ClusterSpec {
    pub nodes: usize,
    pub redis: bool,
    /// Appended to every node's TOML file (a `[cluster]` table, say).
    pub extra_toml: String,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        Self {
            nodes: 3,
            redis: false,
            extra_toml: String::new(),
        }
    }
}

/// What a node said about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 200 with this `code` (VALID, REVOKED, RATE_LIMITED, ...).
    Code(String),
    /// 503: the node would not answer from a cache it cannot confirm.
    Unavailable,
    Status(u16),
    /// No answer (refused connection, timeout).
    NoAnswer,
}

impl Verdict {
    pub fn is_valid(&self) -> bool {
        matches!(self, Verdict::Code(c) if c == "VALID")
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub redis: Option<PrivateRedis>,
    pub pg: PrivatePg,
    pub root_key: String,
    pub http: reqwest::Client,
    // Last: the nodes' files go after the nodes.
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// None when PostgreSQL (or a requested Redis) is not installed here and
    /// services are not required.
    pub async fn start(spec: ClusterSpec) -> Option<Self> {
        let pg = PrivatePg::start()?;
        let redis = if spec.redis {
            Some(PrivateRedis::start()?)
        } else {
            None
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        write_private(&d.join("pepper"), random_hex(32));
        write_private(&d.join("master.key"), random_hex(32));
        let base_toml = format!(
            "listen = \"127.0.0.1:0\"\ndatabase_url = \"{}\"\npepper_file = \"{}\"\n\
             master_key_file = \"{}\"\nlog_format = \"json\"\n",
            pg.url(),
            d.join("pepper").display(),
            d.join("master.key").display()
        );
        let root_key = init(d, &base_toml);
        let mut nodes = Vec::new();
        for i in 0..spec.nodes {
            let node_spec = NodeSpec {
                id: format!("node-{i}"),
                config: format!("{base_toml}{}", spec.extra_toml),
                redis_url: redis.as_ref().map(PrivateRedis::url),
            };
            nodes.push(Node::start(node_spec, d).unwrap_or_else(|e| panic!("{e}")));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("http client");
        Some(Self {
            nodes,
            redis,
            pg,
            root_key,
            http,
            dir,
        })
    }

    pub fn url(&self, node: usize, path: &str) -> String {
        format!("{}{path}", self.nodes[node].base)
    }

    /// An admin call; (status, JSON body or Null). Err: no answer.
    pub async fn call(
        &self,
        node: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), String> {
        let mut req = self
            .http
            .request(method, self.url(node, path))
            .bearer_auth(&self.root_key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.map_err(|e| e.to_string())?;
        let status = res.status();
        let body = res.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// Creates a key through `node`; (secret, id).
    pub async fn create_key(&self, node: usize, body: Value) -> (String, String) {
        let (status, v) = self
            .call(node, reqwest::Method::POST, "/v1/keys", Some(body))
            .await
            .expect("create key");
        assert_eq!(status, StatusCode::CREATED, "{v}");
        let key = v["key"].as_str().expect("key").to_owned();
        let id = v["id"].as_str().expect("id").to_owned();
        (key, id)
    }

    /// `n` plain keys, created on node 0 and verified VALID on every node
    /// (so every node's cache holds them).
    pub async fn warm_keys(&self, n: usize) -> Vec<(String, String)> {
        let mut keys = Vec::with_capacity(n);
        for i in 0..n {
            keys.push(
                self.create_key(
                    0,
                    json!({ "name": format!("k{i}"), "owner": "cluster-test" }),
                )
                .await,
            );
        }
        for (key, _) in &keys {
            for node in 0..self.nodes.len() {
                let v = self.verify(node, key).await;
                assert!(v.is_valid(), "warming on node {node}: {v:?}");
            }
        }
        keys
    }

    pub async fn verify(&self, node: usize, key: &str) -> Verdict {
        verify_at(&self.http, &self.nodes[node].base, &self.root_key, key).await
    }

    /// POST /v1/keys/{id}/revoke (with `?wait=all` when asked).
    pub async fn revoke(
        &self,
        node: usize,
        id: &str,
        wait_all: bool,
    ) -> Result<(StatusCode, Value), String> {
        let q = if wait_all { "?wait=all" } else { "" };
        let path = format!("/v1/keys/{id}/revoke{q}");
        self.call(node, reqwest::Method::POST, &path, Some(json!({})))
            .await
    }

    /// The ids of the keys the database holds as revoked: the truth.
    pub async fn revoked_in_db(&self) -> HashSet<String> {
        let mut conn = self.pg.connect().await;
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM api_keys WHERE revoked_at IS NOT NULL")
                .fetch_all(&mut conn)
                .await
                .expect("read api_keys");
        rows.into_iter().map(|(id,)| id).collect()
    }

    /// Every node's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            out += &format!("--- {} ---\n{}\n", n.spec.id, tail(&n.log(), 40));
        }
        out
    }
}

/// POST /v1/keys/verify of `key`, authorized by `bearer` (an admin key).
pub async fn verify_at(http: &reqwest::Client, base: &str, bearer: &str, key: &str) -> Verdict {
    let res = http
        .post(format!("{base}/v1/keys/verify"))
        .bearer_auth(bearer)
        .json(&json!({ "key": key }))
        .send()
        .await;
    let Ok(res) = res else {
        return Verdict::NoAnswer;
    };
    match res.status().as_u16() {
        200 => {
            let v: Value = res.json().await.unwrap_or(Value::Null);
            Verdict::Code(v["code"].as_str().unwrap_or("?").to_owned())
        }
        503 => Verdict::Unavailable,
        s => Verdict::Status(s),
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn write_private(path: &std::path::Path, contents: String) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).expect("write secret file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

/// `keygate init --json` on the fresh database: migrations and the root key.
fn init(dir: &std::path::Path, toml: &str) -> String {
    let path = dir.join("init.toml");
    std::fs::write(&path, toml).expect("write init config");
    let out = command(dir)
        .args(["init", "--json", "--config"])
        .arg(&path)
        .output()
        .expect("run keygate init");
    assert!(
        out.status.success(),
        "init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("init --json output");
    v["admin_key"].as_str().expect("admin_key").to_owned()
}
