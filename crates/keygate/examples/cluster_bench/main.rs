//! The load driver of `scripts/bench-cluster`: it talks HTTP to nodes the
//! script started (three keygate processes on one PostgreSQL and Redis) and
//! prints what it measured. No assertions: the script reports the figures
//! against the targets.
//!
//!   cluster_bench --nodes http://A,http://B,http://C --admin-key-file F propagation
//!   ... rate --seconds 30 --limit 1200 --period 60
//!   ... throughput --seconds 10 --concurrency 32
//!   ... latency --samples 2000

mod cost;
mod propagation;
mod rate;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::{Value, json};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser)]
struct Cli {
    /// The nodes' base URLs, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    nodes: Vec<String>,
    /// A file holding a root admin key (it also authorizes /v1/keys/verify).
    #[arg(long)]
    admin_key_file: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Revocations of keys warm on every node, under background verifies:
    /// the time from the revoke's answer to the last node refusing.
    Propagation {
        #[arg(long, default_value_t = 1000)]
        revokes: usize,
        /// Background verifies per second, on other keys, over all nodes.
        #[arg(long, default_value_t = 200)]
        background: u32,
    },
    /// One key limited to `limit` per `period` seconds, drained, then driven
    /// at 3x its rate round-robin for `seconds`; admitted against a
    /// single-node GCRA fed the same send times.
    Rate {
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[arg(long, default_value_t = 1200)]
        limit: u32,
        #[arg(long, default_value_t = 60)]
        period: u64,
    },
    /// Verifies per second of cached keys on the first node.
    Throughput {
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
    /// Latency of a verify of a rate-limited key against a plain one.
    Latency {
        #[arg(long, default_value_t = 2000)]
        samples: usize,
    },
}

/// What every part needs: the nodes, a client and the admin key.
#[derive(Clone)]
pub struct Ctx {
    pub nodes: Vec<String>,
    pub http: reqwest::Client,
    pub admin: String,
}

impl Ctx {
    /// Creates a key through the first node; (secret, id).
    pub async fn create_key(&self, body: Value) -> Result<(String, String), Error> {
        let v: Value = self
            .http
            .post(format!("{}/v1/keys", self.nodes[0]))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let key = v["key"].as_str().ok_or("no key in the answer")?.to_owned();
        let id = v["id"].as_str().ok_or("no id in the answer")?.to_owned();
        Ok((key, id))
    }

    /// `n` plain keys, created 8 at a time.
    pub async fn create_keys(&self, n: usize, name: &str) -> Result<Vec<(String, String)>, Error> {
        let mut out = Vec::with_capacity(n);
        for start in (0..n).step_by(8) {
            let mut set = tokio::task::JoinSet::new();
            for i in start..(start + 8).min(n) {
                let (ctx, body) = (
                    self.clone(),
                    json!({ "name": format!("{name}{i}"), "owner": "bench" }),
                );
                set.spawn(async move { ctx.create_key(body).await });
            }
            while let Some(made) = set.join_next().await {
                out.push(made??);
            }
        }
        Ok(out)
    }

    /// Verifies every key on every node, 8 at a time, so every cache holds them.
    pub async fn warm(&self, keys: &[String]) -> Result<(), Error> {
        for chunk in keys.chunks(8) {
            let mut set = tokio::task::JoinSet::new();
            for key in chunk {
                let (ctx, key) = (self.clone(), key.clone());
                set.spawn(async move {
                    for node in 0..ctx.nodes.len() {
                        let code = ctx.verify(node, &key).await;
                        if code != "VALID" {
                            return Err(format!("warming on node {node}: {code}"));
                        }
                    }
                    Ok(())
                });
            }
            while let Some(done) = set.join_next().await {
                done??;
            }
        }
        Ok(())
    }

    /// The verify answer's `code`, or "HTTP <status>" / "ERROR".
    pub async fn verify(&self, node: usize, key: &str) -> String {
        let res = self
            .http
            .post(format!("{}/v1/keys/verify", self.nodes[node]))
            .bearer_auth(&self.admin)
            .json(&json!({ "key": key }))
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                Ok(v) => v["code"].as_str().unwrap_or("?").to_owned(),
                Err(_) => "ERROR".to_owned(),
            },
            Ok(r) => format!("HTTP {}", r.status().as_u16()),
            Err(_) => "ERROR".to_owned(),
        }
    }
}

/// The p-th percentile (0..=100) of sorted samples, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

fn main() -> Result<(), Error> {
    let cli = Cli::parse();
    let admin = std::fs::read_to_string(&cli.admin_key_file)?
        .trim()
        .to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(64)
        .build()?;
    let ctx = Ctx {
        nodes: cli.nodes,
        http,
        admin,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.cmd {
            Cmd::Propagation {
                revokes,
                background,
            } => propagation::run(&ctx, revokes, background).await,
            Cmd::Rate {
                seconds,
                limit,
                period,
            } => rate::run(&ctx, seconds, limit, period).await,
            Cmd::Throughput {
                seconds,
                concurrency,
            } => cost::throughput(&ctx, seconds, concurrency).await,
            Cmd::Latency { samples } => cost::latency(&ctx, samples).await,
        }
    })
}
