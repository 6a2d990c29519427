//! `keygate clients ...`: mTLS clients from the shell, against a running
//! server. Tables for people, `--json` for scripts.

use clap::{Args, Subcommand};
use keygate_api::clients::{ClientListQuery, ClientView, CreateClientRequest, UpdateClientRequest};
use keygate_api::common::Page;
use keygate_core::clients::ClientId;
use reqwest::Method;
use serde_json::Value;

use super::checked_id;
use super::client::{Client, ServerArgs, parse, pretty, query_string};
use super::keys::rate_limit;
use super::table;

#[derive(Args)]
pub struct ClientsArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub command: ClientsCommand,
}

#[derive(Subcommand)]
pub enum ClientsCommand {
    /// Register a client: --thumbprint, or --ca with one of --spiffe-id, --dns, --subject.
    Create(CreateArgs),
    /// List clients.
    List(ListArgs),
    /// Show one client.
    Show { id: String },
    /// Change a client's name, owner, scopes, rate limit or certificate matcher.
    Update(UpdateArgs),
    /// Revoke a client, at once.
    Revoke { id: String },
}

/// How a certificate names the client (the server checks the combination).
#[derive(Args, Default)]
pub struct MatcherArgs {
    /// Pin one certificate: its SHA-256, base64url (x5t#S256) or hex.
    #[arg(long)]
    thumbprint: Option<String>,
    /// The [mtls] CA the certificate must chain to.
    #[arg(long)]
    ca: Option<String>,
    /// spiffe://domain/path, or a prefix ending in /*.
    #[arg(long)]
    spiffe_id: Option<String>,
    /// A DNS name, or *.name.
    #[arg(long)]
    dns: Option<String>,
    /// The subject, exactly: "CN=api, O=Example".
    #[arg(long)]
    subject: Option<String>,
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
    /// LIMIT/SECONDS, e.g. 100/60.
    #[arg(long)]
    rate_limit: Option<String>,
    #[command(flatten)]
    matcher: MatcherArgs,
}

#[derive(Args)]
pub struct ListArgs {
    #[arg(long)]
    tenant: Option<String>,
    #[arg(long)]
    owner: Option<String>,
    /// Only clients matched under this CA.
    #[arg(long)]
    ca: Option<String>,
    #[arg(long)]
    include_revoked: bool,
    #[arg(long)]
    limit: Option<u32>,
    #[arg(long)]
    cursor: Option<String>,
}

#[derive(Args)]
pub struct UpdateArgs {
    id: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    owner: Option<String>,
    /// Replaces the scopes; repeat for several.
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// Remove every scope.
    #[arg(long, conflicts_with = "scopes")]
    clear_scopes: bool,
    #[arg(long, conflicts_with = "no_rate_limit")]
    rate_limit: Option<String>,
    #[arg(long)]
    no_rate_limit: bool,
    /// Any of these replaces the whole matcher (a new certificate to pin, say).
    #[command(flatten)]
    matcher: MatcherArgs,
}

impl CreateArgs {
    fn body(self) -> Result<CreateClientRequest, String> {
        let m = self.matcher;
        Ok(CreateClientRequest {
            name: self.name,
            owner: self.owner,
            tenant: self.tenant,
            scopes: self.scopes,
            rate_limit: self.rate_limit.as_deref().map(rate_limit).transpose()?,
            thumbprint: m.thumbprint,
            ca: m.ca,
            spiffe_id: m.spiffe_id,
            dns: m.dns,
            subject: m.subject,
        })
    }
}

impl UpdateArgs {
    fn body(self) -> Result<UpdateClientRequest, String> {
        let set_scopes = !self.scopes.is_empty() || self.clear_scopes;
        let limit = self.rate_limit.as_deref().map(rate_limit).transpose()?;
        let m = self.matcher;
        let body = UpdateClientRequest {
            name: self.name,
            owner: self.owner,
            scopes: set_scopes.then_some(self.scopes),
            rate_limit: if self.no_rate_limit {
                Some(None)
            } else {
                limit.map(Some)
            },
            thumbprint: m.thumbprint,
            ca: m.ca,
            spiffe_id: m.spiffe_id,
            dns: m.dns,
            subject: m.subject,
        };
        if body.is_empty() {
            return Err("nothing to update: pass at least one of --name, --owner, --scope, --clear-scopes, --rate-limit, --no-rate-limit, or a matcher (see --help)".into());
        }
        Ok(body)
    }
}

/// Refuses anything that is not a client id before it becomes part of a URL path.
fn path_id(id: &str) -> Result<String, String> {
    checked_id::<ClientId>(id).map(|id| format!("/v1/clients/{id}"))
}

/// The matcher as one cell: `thumbprint …` or `ca/kind pattern`.
fn matcher_cell(c: &ClientView) -> String {
    let m = &c.matcher;
    let ca = m.ca.as_deref().unwrap_or("-");
    match (&m.thumbprint, &m.spiffe_id, &m.dns, &m.subject) {
        (Some(t), ..) => format!("thumbprint {t}"),
        (_, Some(p), ..) => format!("{ca} spiffe_id {p}"),
        (_, _, Some(p), _) => format!("{ca} dns {p}"),
        (_, _, _, Some(p)) => format!("{ca} subject {p}"),
        _ => "-".into(),
    }
}

fn fields(c: &ClientView) -> String {
    let opt = |v: Option<&str>| v.unwrap_or("-").to_owned();
    table::fields(&[
        ("id", c.id.clone()),
        ("name", c.name.clone()),
        ("owner", c.owner.clone()),
        ("tenant", opt(c.tenant.as_deref())),
        ("scopes", c.scopes.join(", ")),
        (
            "rate_limit",
            c.rate_limit
                .map_or("-".into(), |r| format!("{}/{}s", r.limit, r.period_seconds)),
        ),
        ("matcher", matcher_cell(c)),
        ("status", c.status.clone()),
        ("created_at", c.created_at.clone()),
        ("updated_at", c.updated_at.clone()),
        ("revoked_at", opt(c.revoked_at.as_deref())),
    ])
}

fn list(page: &Page<ClientView>) -> String {
    let rows: Vec<Vec<String>> = page
        .data
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                c.name.clone(),
                c.owner.clone(),
                matcher_cell(c),
                c.status.clone(),
            ]
        })
        .collect();
    let mut out = table::render(&["ID", "NAME", "OWNER", "MATCHER", "STATUS"], &rows);
    if let Some(cursor) = &page.next_cursor {
        out.push_str(&format!("\nmore: --cursor {cursor}\n"));
    }
    out
}

/// Sends the command's request; the answer, and whether it is a list.
async fn send(client: &Client, command: ClientsCommand) -> Result<(Value, bool), String> {
    Ok(match command {
        ClientsCommand::Create(args) => {
            let body = args.body()?;
            (
                client.call_with(Method::POST, "/v1/clients", &body).await?,
                false,
            )
        }
        ClientsCommand::List(a) => {
            let q = ClientListQuery {
                tenant: a.tenant,
                owner: a.owner,
                ca: a.ca,
                include_revoked: a.include_revoked,
                cursor: a.cursor,
                limit: a.limit,
            };
            let path = format!("/v1/clients{}", query_string(&q));
            (client.call(Method::GET, &path).await?, true)
        }
        ClientsCommand::Show { id } => (client.call(Method::GET, &path_id(&id)?).await?, false),
        ClientsCommand::Update(args) => {
            let path = path_id(&args.id)?;
            let body = args.body()?;
            (client.call_with(Method::PATCH, &path, &body).await?, false)
        }
        ClientsCommand::Revoke { id } => {
            let path = format!("{}/revoke", path_id(&id)?);
            (client.call(Method::POST, &path).await?, false)
        }
    })
}

/// The output; `--json` prints the server's answer as it came.
pub async fn run(args: ClientsArgs) -> Result<(String, bool), String> {
    let client = args.server.client()?;
    let (value, is_list) = send(&client, args.command).await?;
    if args.server.json {
        return Ok((pretty(&value), true));
    }
    let out = if is_list {
        list(&parse(value)?)
    } else {
        fields(&parse(value)?)
    };
    Ok((out, true))
}
