//! `keygate keys ...`: the key lifecycle from the shell, against a running
//! server. Tables for people, `--json` for scripts.

use std::borrow::Cow;
use std::io::Read;

use clap::{Args, Subcommand};
use keygate_api::common::RateLimitView;
use keygate_api::keys::{
    CreateKeyRequest, KeyListQuery, KeyUsageQuery, RotateKeyRequest, UpdateKeyRequest,
    VerifyKeyRequest,
};
use keygate_core::KeyId;
use reqwest::Method;
use serde_json::{Map, Value};

use super::checked_id;
use super::client::{Client, ServerArgs, pretty, query_string};
use super::render::{KeyAnswer, Kind};

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
    Create(CreateArgs),
    /// List keys.
    List(ListArgs),
    /// Show one key.
    Show { id: String },
    /// Change a key's name, scopes, metadata, expiry, rate limit or credits.
    Update(UpdateArgs),
    /// Issue a new secret for a key; prints it once.
    Rotate {
        id: String,
        /// How long the old secret keeps working (at most 604800).
        #[arg(long, default_value_t = 0)]
        grace_seconds: i64,
    },
    /// Revoke a key, at once.
    Revoke { id: String },
    /// A key's verifications per hour or day and outcome.
    Usage {
        id: String,
        /// RFC 3339 start (default: 24 hours, or 30 days by day, before --until).
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339 end, exclusive (default: the end of the current hour).
        #[arg(long)]
        until: Option<String>,
        /// `hour` (default) or `day`.
        #[arg(long)]
        granularity: Option<String>,
    },
    /// Verify a key (`-` reads it from standard input, keeping it out of shell history).
    Verify {
        key: String,
        /// A scope the key must have; repeat for several.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
    },
}

#[derive(Args)]
pub struct CreateArgs {
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
}

#[derive(Args)]
pub struct ListArgs {
    #[arg(long)]
    tenant: Option<String>,
    #[arg(long)]
    owner: Option<String>,
    #[arg(long)]
    include_revoked: bool,
    /// A case-insensitive part of the name, prefix, id or owner.
    #[arg(long)]
    search: Option<String>,
    /// active, revoked or expired.
    #[arg(long)]
    status: Option<String>,
    /// Only keys expiring within this long from now: 90s, 30m, 12h, 7d.
    #[arg(long, value_name = "DURATION", value_parser = within_secs)]
    expiring_within: Option<i64>,
    #[arg(long)]
    limit: Option<u32>,
    #[arg(long)]
    cursor: Option<String>,
}

/// A duration such as `90s`, `30m`, `12h` or `7d` (a bare number is
/// seconds), in seconds.
fn within_secs(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(format!("{text:?}: use s, m, h or d, e.g. 7d")),
    };
    digits
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .and_then(|n| n.checked_mul(per))
        .filter(|s| *s <= 100 * 365 * 86_400)
        .ok_or_else(|| format!("{text:?} is not a duration such as 90s, 30m, 12h or 7d"))
}

#[derive(Args)]
pub struct UpdateArgs {
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
}

pub(super) fn rate_limit(text: &str) -> Result<RateLimitView, String> {
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
    Ok(RateLimitView {
        limit,
        period_seconds: period,
    })
}

fn metadata(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err("--metadata must be a JSON object, e.g. '{\"plan\":\"pro\"}'".into()),
    }
}

/// `Some(None)` (send `null`, removing the setting) when `clear`, else the
/// new value if there is one.
fn set_or_clear<T>(value: Option<T>, clear: bool) -> Option<Option<T>> {
    if clear { Some(None) } else { value.map(Some) }
}

impl CreateArgs {
    fn body(self) -> Result<CreateKeyRequest, String> {
        Ok(CreateKeyRequest {
            name: self.name,
            owner: self.owner,
            tenant: self.tenant,
            scopes: self.scopes,
            metadata: self
                .metadata
                .as_deref()
                .map(metadata)
                .transpose()?
                .unwrap_or_default(),
            expires_at: self.expires_at,
            env: self.env,
            rate_limit: self.rate_limit.as_deref().map(rate_limit).transpose()?,
            remaining: self.remaining,
        })
    }
}

impl ListArgs {
    fn query(self) -> Result<KeyListQuery, String> {
        let expires_before = self
            .expiring_within
            .map(|secs| {
                let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(secs);
                at.format(&time::format_description::well_known::Rfc3339)
                    .map_err(|e| format!("--expiring-within: {e}"))
            })
            .transpose()?;
        Ok(KeyListQuery {
            tenant: self.tenant,
            owner: self.owner,
            include_revoked: self.include_revoked,
            q: self.search,
            status: self.status,
            expires_before,
            cursor: self.cursor,
            limit: self.limit,
        })
    }
}

impl UpdateArgs {
    fn body(self) -> Result<UpdateKeyRequest, String> {
        let set_scopes = !self.scopes.is_empty() || self.clear_scopes;
        let body = UpdateKeyRequest {
            name: self.name,
            scopes: set_scopes.then_some(self.scopes),
            metadata: self.metadata.as_deref().map(metadata).transpose()?,
            expires_at: set_or_clear(self.expires_at, self.no_expiry),
            rate_limit: set_or_clear(
                self.rate_limit.as_deref().map(rate_limit).transpose()?,
                self.no_rate_limit,
            ),
            remaining: set_or_clear(self.remaining, self.unlimited),
        };
        if body.is_empty() {
            return Err("nothing to update: pass at least one of --name, --scope, --metadata, --expires-at, --rate-limit, --remaining (see --help)".into());
        }
        Ok(body)
    }
}

/// The key to verify: the argument, or standard input for `-`.
fn verify_body(key: String, scopes: Vec<String>) -> Result<VerifyKeyRequest<'static>, String> {
    let key = if key == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("reading the key from stdin: {e}"))?;
        text.trim().to_owned()
    } else {
        key
    };
    Ok(VerifyKeyRequest {
        key: Cow::Owned(key),
        required_scopes: scopes.into_iter().map(Cow::Owned).collect(),
    })
}

/// `GET /v1/keys/{id}/usage` with the window asked for.
fn usage_path(
    key_path: &str,
    since: Option<String>,
    until: Option<String>,
    granularity: Option<String>,
) -> String {
    let q = KeyUsageQuery {
        since,
        until,
        granularity,
    };
    format!("{key_path}/usage{}", query_string(&q))
}

/// Sends the command's request; the answer, and which type it is.
async fn send(client: &Client, command: KeysCommand) -> Result<(Value, Kind), String> {
    let key_path = |id: &str| checked_id::<KeyId>(id).map(|id| format!("/v1/keys/{id}"));
    Ok(match command {
        KeysCommand::Create(args) => {
            let body = args.body()?;
            (
                client.call_with(Method::POST, "/v1/keys", &body).await?,
                Kind::Issued,
            )
        }
        KeysCommand::List(args) => {
            let path = format!("/v1/keys{}", query_string(&args.query()?));
            (client.call(Method::GET, &path).await?, Kind::List)
        }
        KeysCommand::Show { id } => (client.call(Method::GET, &key_path(&id)?).await?, Kind::Key),
        KeysCommand::Update(args) => {
            let id = args.id.clone();
            let body = args.body()?;
            let path = key_path(&id)?;
            (
                client.call_with(Method::PATCH, &path, &body).await?,
                Kind::Key,
            )
        }
        KeysCommand::Rotate { id, grace_seconds } => {
            let path = format!("{}/rotate", key_path(&id)?);
            let body = RotateKeyRequest { grace_seconds };
            (
                client.call_with(Method::POST, &path, &body).await?,
                Kind::Issued,
            )
        }
        KeysCommand::Revoke { id } => {
            let path = format!("{}/revoke", key_path(&id)?);
            (client.call(Method::POST, &path).await?, Kind::Key)
        }
        KeysCommand::Usage {
            id,
            since,
            until,
            granularity,
        } => {
            let path = usage_path(&key_path(&id)?, since, until, granularity);
            (client.call(Method::GET, &path).await?, Kind::Usage)
        }
        KeysCommand::Verify { key, scopes } => {
            let body = verify_body(key, scopes)?;
            (
                client
                    .call_with(Method::POST, "/v1/keys/verify", &body)
                    .await?,
                Kind::Verify,
            )
        }
    })
}

/// The output, and whether the command succeeded (a refused key exits 1).
/// `--json` prints the server's answer as it came.
pub async fn run(args: KeysArgs) -> Result<(String, bool), String> {
    let client = args.server.client()?;
    let (value, kind) = send(&client, args.command).await?;
    if args.server.json {
        let ok = KeyAnswer::parse(kind, value.clone())?.ok();
        return Ok((pretty(&value), ok));
    }
    let answer = KeyAnswer::parse(kind, value)?;
    Ok((answer.render(), answer.ok()))
}
