//! `keygate users ...`: user accounts from the shell, against a running
//! server. A password is only ever read from standard input
//! (`--password-stdin`): a flag would show up in `ps` and shell history.

use std::io::Read;

use clap::{Args, Subcommand};
use keygate_api::SecretString;
use keygate_api::users::{CreateUserRequest, UpdateUserRequest, UserListQuery};
use keygate_core::users::UserId;
use reqwest::Method;
use serde_json::{Map, Value};

use super::checked_id;
use super::client::{Client, ServerArgs, parse, pretty, query_string};
use super::render::{user_fields, user_list};

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
    Create(CreateArgs),
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
    Update(UpdateArgs),
    /// End every session of a user now.
    RevokeSessions { id: String },
}

#[derive(Args)]
pub struct CreateArgs {
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
}

#[derive(Args)]
pub struct UpdateArgs {
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
}

/// The password on standard input, without the line ending a pipe or a
/// terminal adds; other whitespace is part of the password.
fn read_password() -> Result<SecretString, String> {
    let mut secret = SecretString::default();
    let text = secret.expose_mut();
    std::io::stdin()
        .read_to_string(text)
        .map_err(|e| format!("reading the password from stdin: {e}"))?;
    let len = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .map_or(text.len(), str::len);
    text.truncate(len);
    if text.is_empty() {
        return Err("no password on standard input".into());
    }
    Ok(secret)
}

fn claims(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err("--claims must be a JSON object, e.g. '{\"department\":\"sales\"}'".into()),
    }
}

impl CreateArgs {
    fn body(self) -> Result<CreateUserRequest, String> {
        if !self.password_stdin {
            return Err("a new user needs a password: pipe it in with --password-stdin".into());
        }
        Ok(CreateUserRequest {
            username: self.username,
            password: read_password()?,
            roles: self.roles,
            tenant: self.tenant,
            claims: self
                .claims
                .as_deref()
                .map(claims)
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

impl UpdateArgs {
    fn body(&self) -> Result<UpdateUserRequest, String> {
        let set_roles = !self.roles.is_empty() || self.clear_roles;
        let body = UpdateUserRequest {
            roles: set_roles.then(|| self.roles.clone()),
            claims: self.claims.as_deref().map(claims).transpose()?,
            disabled: (self.disable || self.enable).then_some(self.disable),
            password: self.password_stdin.then(read_password).transpose()?,
        };
        if body.is_empty() {
            return Err("nothing to update: pass at least one of --role, --clear-roles, --claims, --disable, --enable, --password-stdin (see --help)".into());
        }
        Ok(body)
    }
}

/// Sends the command's request; the answer, and whether it is a list.
async fn send(client: &Client, command: UsersCommand) -> Result<(Value, bool), String> {
    let user_path = |id: &str| checked_id::<UserId>(id).map(|id| format!("/v1/users/{id}"));
    Ok(match command {
        UsersCommand::Create(args) => {
            let body = args.body()?;
            (
                client.call_with(Method::POST, "/v1/users", &body).await?,
                false,
            )
        }
        UsersCommand::List {
            tenant,
            limit,
            cursor,
        } => {
            let query = UserListQuery {
                tenant,
                cursor,
                limit,
            };
            let path = format!("/v1/users{}", query_string(&query));
            (client.call(Method::GET, &path).await?, true)
        }
        UsersCommand::Show { id } => (client.call(Method::GET, &user_path(&id)?).await?, false),
        UsersCommand::Update(args) => {
            let body = args.body()?;
            let path = user_path(&args.id)?;
            (client.call_with(Method::PATCH, &path, &body).await?, false)
        }
        UsersCommand::RevokeSessions { id } => {
            let path = format!("{}/revoke-sessions", user_path(&id)?);
            (client.call(Method::POST, &path).await?, false)
        }
    })
}

/// The output; `--json` prints the server's answer as it came.
pub async fn run(args: UsersArgs) -> Result<(String, bool), String> {
    let client = args.server.client()?;
    let (value, list) = send(&client, args.command).await?;
    if args.server.json {
        return Ok((pretty(&value), true));
    }
    let out = if list {
        user_list(&parse(value)?)
    } else {
        user_fields(&parse(value)?)
    };
    Ok((out, true))
}
