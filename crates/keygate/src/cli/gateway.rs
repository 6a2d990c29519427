//! `keygate gateway check`: validates a configuration's `[gateway]` section
//! offline and prints its routes, or every problem found.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use keygate_core::jwt::AcceptedKinds;

use crate::gateway::config::{ForwardToken, Route, load_file};
use crate::gateway::routes::RouteTable;

#[derive(Args)]
pub struct GatewayArgs {
    #[command(subcommand)]
    command: GatewayCommand,
}

#[derive(Subcommand)]
enum GatewayCommand {
    /// Validate the [gateway] section of a configuration file and print its
    /// routes in matching order; exits 1 when the section has errors.
    Check {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

pub fn run(args: GatewayArgs) -> Result<(String, bool), String> {
    let GatewayCommand::Check { config } = args.command;
    let path = config.display();
    Ok(match load_file(&config) {
        Err(errors) => {
            let mut out = format!("{path}: the gateway configuration has errors:\n");
            for e in errors {
                out.push_str(&format!("  - {e}\n"));
            }
            (out, false)
        }
        Ok(None) => (format!("{path}: no [gateway] section\n"), false),
        Ok(Some(gateway)) => {
            let listen = gateway
                .listen
                .map_or_else(|| "none (forward-auth only)".to_owned(), |a| a.to_string());
            let table = RouteTable::new(gateway.routes);
            let rows: Vec<Vec<String>> = table.routes().iter().map(|r| route_row(r)).collect();
            let mut out = format!("{path}: OK, listen {listen}, {} route(s)\n", rows.len());
            out.push_str(&crate::cli::table::render(
                &[
                    "NAME", "HOST", "PREFIX", "METHODS", "AUTH", "UPSTREAM", "SCOPES", "ROLES",
                    "LIMIT", "TOKEN",
                ],
                &rows,
            ));
            (out, true)
        }
    })
}

/// One route as a row of the table, in the columns' order.
fn route_row(r: &Route) -> Vec<String> {
    let methods = r.methods.as_ref().map_or_else(
        || "*".into(),
        |m| {
            m.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        },
    );
    let scopes = r.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>();
    vec![
        r.name.clone(),
        r.host.clone().unwrap_or_else(|| "*".into()),
        r.path_prefix.clone(),
        methods,
        auth_name(r),
        format!(
            "{}://{}{}",
            r.upstream.scheme, r.upstream.authority, r.upstream.base_path
        ),
        scopes.join(" "),
        r.roles.join(","),
        r.rate_limit.map_or_else(String::new, |l| {
            format!("{}/{}s", l.limit, l.period_seconds)
        }),
        forward_name(r.forward_token).into(),
    ]
}

/// The mode, and the kinds of JWT it takes when not only users'.
fn auth_name(r: &Route) -> String {
    if r.auth.takes_jwts() && r.jwt_subjects != AcceptedKinds::Users {
        format!("{} ({})", r.auth.as_str(), r.jwt_subjects.as_str())
    } else {
        r.auth.as_str().to_owned()
    }
}

fn forward_name(f: ForwardToken) -> &'static str {
    match f {
        ForwardToken::Internal => "internal",
        ForwardToken::Passthrough => "passthrough",
        ForwardToken::None => "none",
    }
}
