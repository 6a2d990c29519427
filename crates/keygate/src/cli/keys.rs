//! `keygate keys ...`: the key lifecycle from the shell, against a running
//! server. Tables for people, `--json` for scripts.

use std::io::Read;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::client::ServerArgs;
use super::render::{Kind, render};

#[derive(Args)]
pub struct KeysArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key; prints its secret once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        owner: String,
        #[arg(long)]
        tenant: Option<String>,
        /// A scope; repeat for several.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// A JSON object.
        #[arg(long)]
        metadata: Option<String>,
        /// RFC 3339, e.g. 2030-01-31T00:00:00Z.
        #[arg(long)]
        expires_at: Option<String>,
        /// live or test.
        #[arg(long)]
        env: Option<String>,
        /// LIMIT/SECONDS, e.g. 100/60.
        #[arg(long)]
        rate_limit: Option<String>,
        /// Usage credits.
        #[arg(long)]
        remaining: Option<i64>,
    },
    /// List keys.
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        include_revoked: bool,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one key.
    Show { id: String },
    /// Change a key's name, scopes, metadata, expiry, rate limit or credits.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// Replaces the scopes; repeat for several.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Remove every scope.
        #[arg(long, conflicts_with = "scopes")]
        clear_scopes: bool,
        #[arg(long)]
        metadata: Option<String>,
        #[arg(long, conflicts_with = "no_expiry")]
        expires_at: Option<String>,
        #[arg(long)]
        no_expiry: bool,
        #[arg(long, conflicts_with = "no_rate_limit")]
        rate_limit: Option<String>,
        #[arg(long)]
        no_rate_limit: bool,
        #[arg(long, conflicts_with = "unlimited")]
        remaining: Option<i64>,
        /// Remove the usage-credit limit.
        #[arg(long)]
        unlimited: bool,
    },
    /// Issue a new secret for a key; prints it once.
    Rotate {
        id: String,
        /// How long the old secret keeps working (at most 604800).
        #[arg(long, default_value_t = 0)]
        grace_seconds: i64,
    },
    /// Revoke a key, at once.
    Revoke { id: String },
    /// Verify a key (`-` reads it from standard input, keeping it out of shell history).
    Verify {
        key: String,
        /// A scope the key must have; repeat for several.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
    },
}

fn rate_limit(text: &str) -> Result<Value, String> {
    let (limit, period) = text
        .split_once('/')
        .ok_or_else(|| format!("--rate-limit {text:?}: write LIMIT/SECONDS, e.g. 100/60"))?;
    let limit: u32 = limit
        .trim()
        .parse()
        .map_err(|_| format!("--rate-limit: {limit:?} is not a number"))?;
    let period: u32 = period
        .trim()
        .parse()
        .map_err(|_| format!("--rate-limit: {period:?} is not a number"))?;
    Ok(json!({ "limit": limit, "period_seconds": period }))
}

fn metadata(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err("--metadata must be a JSON object, e.g. '{\"plan\":\"pro\"}'".into()),
    }
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let present: Vec<(&str, String)> = pairs
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| (*k, v)))
        .collect();
    if present.is_empty() {
        return String::new();
    }
    format!(
        "?{}",
        serde_urlencoded::to_string(present).unwrap_or_default()
    )
}

/// The output, and whether the command succeeded (a refused key exits 1).
pub async fn run(args: KeysArgs) -> Result<(String, bool), String> {
    let client = args.server.client()?;
    let (value, kind) = match args.command {
        KeysCommand::Create {
            name,
            owner,
            tenant,
            scopes,
            metadata: md,
            expires_at,
            env,
            rate_limit: rl,
            remaining,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            body.insert("owner".into(), json!(owner));
            body.insert("scopes".into(), json!(scopes));
            if let Some(t) = tenant {
                body.insert("tenant".into(), json!(t));
            }
            if let Some(m) = md {
                body.insert("metadata".into(), metadata(&m)?);
            }
            if let Some(e) = expires_at {
                body.insert("expires_at".into(), json!(e));
            }
            if let Some(e) = env {
                body.insert("env".into(), json!(e));
            }
            if let Some(r) = rl {
                body.insert("rate_limit".into(), rate_limit(&r)?);
            }
            if let Some(r) = remaining {
                body.insert("remaining".into(), json!(r));
            }
            (
                client
                    .call(Method::POST, "/v1/keys", Some(&Value::Object(body)))
                    .await?,
                Kind::Issued,
            )
        }
        KeysCommand::List {
            tenant,
            owner,
            include_revoked,
            limit,
            cursor,
        } => {
            let q = query(&[
                ("tenant", tenant),
                ("owner", owner),
                (
                    "include_revoked",
                    include_revoked.then(|| "true".to_owned()),
                ),
                ("limit", limit.map(|l| l.to_string())),
                ("cursor", cursor),
            ]);
            (
                client
                    .call(Method::GET, &format!("/v1/keys{q}"), None)
                    .await?,
                Kind::List,
            )
        }
        KeysCommand::Show { id } => (
            client
                .call(Method::GET, &format!("/v1/keys/{}", path_id(&id)?), None)
                .await?,
            Kind::Key,
        ),
        KeysCommand::Update {
            id,
            name,
            scopes,
            clear_scopes,
            metadata: md,
            expires_at,
            no_expiry,
            rate_limit: rl,
            no_rate_limit,
            remaining,
            unlimited,
        } => {
            let mut body = Map::new();
            if let Some(n) = name {
                body.insert("name".into(), json!(n));
            }
            if !scopes.is_empty() || clear_scopes {
                body.insert("scopes".into(), json!(scopes));
            }
            if let Some(m) = md {
                body.insert("metadata".into(), metadata(&m)?);
            }
            if let Some(e) = expires_at {
                body.insert("expires_at".into(), json!(e));
            }
            if no_expiry {
                body.insert("expires_at".into(), Value::Null);
            }
            if let Some(r) = rl {
                body.insert("rate_limit".into(), rate_limit(&r)?);
            }
            if no_rate_limit {
                body.insert("rate_limit".into(), Value::Null);
            }
            if let Some(r) = remaining {
                body.insert("remaining".into(), json!(r));
            }
            if unlimited {
                body.insert("remaining".into(), Value::Null);
            }
            if body.is_empty() {
                return Err("nothing to update: pass at least one of --name, --scope, --metadata, --expires-at, --rate-limit, --remaining (see --help)".into());
            }
            (
                client
                    .call(
                        Method::PATCH,
                        &format!("/v1/keys/{}", path_id(&id)?),
                        Some(&Value::Object(body)),
                    )
                    .await?,
                Kind::Key,
            )
        }
        KeysCommand::Rotate { id, grace_seconds } => {
            let body = json!({ "grace_seconds": grace_seconds });
            (
                client
                    .call(
                        Method::POST,
                        &format!("/v1/keys/{}/rotate", path_id(&id)?),
                        Some(&body),
                    )
                    .await?,
                Kind::Issued,
            )
        }
        KeysCommand::Revoke { id } => (
            client
                .call(
                    Method::POST,
                    &format!("/v1/keys/{}/revoke", path_id(&id)?),
                    None,
                )
                .await?,
            Kind::Key,
        ),
        KeysCommand::Verify { key, scopes } => {
            let key = if key == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| format!("reading the key from stdin: {e}"))?;
                text.trim().to_owned()
            } else {
                key
            };
            let body = json!({ "key": key, "required_scopes": scopes });
            (
                client
                    .call(Method::POST, "/v1/keys/verify", Some(&body))
                    .await?,
                Kind::Verify,
            )
        }
    };
    let ok = !matches!(kind, Kind::Verify) || value.get("valid") == Some(&Value::Bool(true));
    if args.server.json {
        return Ok((
            format!(
                "{}\n",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            ),
            ok,
        ));
    }
    Ok((render(kind, &value), ok))
}

/// Refuses anything that is not a key id before it becomes part of a URL path.
fn path_id(id: &str) -> Result<&str, String> {
    if id.starts_with("key_")
        && id.len() == 20
        && id[4..].bytes().all(|b| b.is_ascii_alphanumeric())
    {
        Ok(id)
    } else {
        Err(format!(
            "{id:?} is not a key id (key_ followed by 16 letters or digits)"
        ))
    }
}
