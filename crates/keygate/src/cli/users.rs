//! `keygate users ...`: user accounts from the shell, against a running
//! server. A password is only ever read from standard input
//! (`--password-stdin`): a flag would show up in `ps` and shell history.

use std::io::Read;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::client::ServerArgs;
use super::table;

#[derive(Args)]
pub struct UsersArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub command: UsersCommand,
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create a user; the password is read from standard input.
    Create {
        #[arg(long)]
        username: String,
        /// Read the password from standard input (required).
        #[arg(long)]
        password_stdin: bool,
        /// A role; repeat for several.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        #[arg(long)]
        tenant: Option<String>,
        /// A JSON object of extra token claims.
        #[arg(long)]
        claims: Option<String>,
    },
    /// List users.
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one user.
    Show { id: String },
    /// Change roles, claims, disabled or the password (which ends sessions).
    Update {
        id: String,
        /// Replaces the roles; repeat for several.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// Remove every role.
        #[arg(long, conflicts_with = "roles")]
        clear_roles: bool,
        #[arg(long)]
        claims: Option<String>,
        /// Disable the user (ends its sessions).
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
        /// Read a new password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// End every session of a user now.
    RevokeSessions { id: String },
}

/// The password on standard input, without the line ending a pipe or a
/// terminal adds; other whitespace is part of the password.
fn read_password() -> Result<Zeroizing<String>, String> {
    let mut text = Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| format!("reading the password from stdin: {e}"))?;
    let len = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .map_or(text.len(), str::len);
    text.truncate(len);
    if text.is_empty() {
        return Err("no password on standard input".into());
    }
    Ok(text)
}

fn claims(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err("--claims must be a JSON object, e.g. '{\"department\":\"sales\"}'".into()),
    }
}

/// Refuses anything that is not a user id before it becomes part of a URL path.
fn path_id(id: &str) -> Result<&str, String> {
    if id.starts_with("usr_")
        && id.len() == 20
        && id[4..].bytes().all(|b| b.is_ascii_alphanumeric())
    {
        Ok(id)
    } else {
        Err(format!(
            "{id:?} is not a user id (usr_ followed by 16 letters or digits)"
        ))
    }
}

fn cell(v: &Value, field: &str) -> String {
    match v.get(field) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}

fn render(v: &Value, list: bool) -> String {
    if list {
        let empty = Vec::new();
        let rows: Vec<Vec<String>> = v["data"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .map(|u| {
                ["id", "username", "tenant", "roles", "disabled"]
                    .iter()
                    .map(|f| cell(u, f))
                    .collect()
            })
            .collect();
        let mut out = table::render(&["ID", "USERNAME", "TENANT", "ROLES", "DISABLED"], &rows);
        if let Some(next) = v["next_cursor"].as_str() {
            out.push_str(&format!("\nmore: --cursor {next}\n"));
        }
        return out;
    }
    let names = [
        "id",
        "username",
        "tenant",
        "roles",
        "disabled",
        "sessions_cutoff_ms",
        "created_at",
        "updated_at",
        "claims",
    ];
    let pairs: Vec<(&str, String)> = names.iter().map(|n| (*n, cell(v, n))).collect();
    table::fields(&pairs)
}

pub async fn run(args: UsersArgs) -> Result<(String, bool), String> {
    let client = args.server.client()?;
    let (value, list) = match args.command {
        UsersCommand::Create {
            username,
            password_stdin,
            roles,
            tenant,
            claims: c,
        } => {
            if !password_stdin {
                return Err("a new user needs a password: pipe it in with --password-stdin".into());
            }
            let password = read_password()?;
            let mut body = Map::new();
            body.insert("username".into(), json!(username));
            body.insert("password".into(), json!(password.as_str()));
            body.insert("roles".into(), json!(roles));
            if let Some(t) = tenant {
                body.insert("tenant".into(), json!(t));
            }
            if let Some(c) = c {
                body.insert("claims".into(), claims(&c)?);
            }
            let body = Value::Object(body);
            (
                client.call(Method::POST, "/v1/users", Some(&body)).await?,
                false,
            )
        }
        UsersCommand::List {
            tenant,
            limit,
            cursor,
        } => {
            let pairs: Vec<(&str, String)> = [
                ("tenant", tenant),
                ("limit", limit.map(|l| l.to_string())),
                ("cursor", cursor),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
            let q = if pairs.is_empty() {
                String::new()
            } else {
                format!(
                    "?{}",
                    serde_urlencoded::to_string(pairs).unwrap_or_default()
                )
            };
            (
                client
                    .call(Method::GET, &format!("/v1/users{q}"), None)
                    .await?,
                true,
            )
        }
        UsersCommand::Show { id } => (
            client
                .call(Method::GET, &format!("/v1/users/{}", path_id(&id)?), None)
                .await?,
            false,
        ),
        UsersCommand::Update {
            id,
            roles,
            clear_roles,
            claims: c,
            disable,
            enable,
            password_stdin,
        } => {
            let mut body = Map::new();
            if !roles.is_empty() || clear_roles {
                body.insert("roles".into(), json!(roles));
            }
            if let Some(c) = c {
                body.insert("claims".into(), claims(&c)?);
            }
            if disable || enable {
                body.insert("disabled".into(), json!(disable));
            }
            if password_stdin {
                body.insert("password".into(), json!(read_password()?.as_str()));
            }
            if body.is_empty() {
                return Err("nothing to update: pass at least one of --role, --clear-roles, --claims, --disable, --enable, --password-stdin (see --help)".into());
            }
            let body = Value::Object(body);
            let path = format!("/v1/users/{}", path_id(&id)?);
            (client.call(Method::PATCH, &path, Some(&body)).await?, false)
        }
        UsersCommand::RevokeSessions { id } => {
            let path = format!("/v1/users/{}/revoke-sessions", path_id(&id)?);
            (client.call(Method::POST, &path, None).await?, false)
        }
    };
    if args.server.json {
        return Ok((
            format!(
                "{}\n",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            ),
            true,
        ));
    }
    Ok((render(&value, list), true))
}
