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
    match load_file(&config) {
        Err(errors) => {
            let mut out = format!(
                "{}: the gateway configuration has errors:\n",
                config.display()
            );
            for e in errors {
                out.push_str(&format!("  - {e}\n"));
            }
            Ok((out, false))
        }
        Ok(None) => Ok((
            format!("{}: no [gateway] section\n", config.display()),
            false,
        )),
        Ok(Some(gateway)) => {
            let listen = gateway
                .listen
                .map_or_else(|| "none (forward-auth only)".to_owned(), |a| a.to_string());
            let table = RouteTable::new(gateway.routes);
            let rows: Vec<Vec<String>> = table
                .routes()
                .iter()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        r.host.clone().unwrap_or_else(|| "*".into()),
                        r.path_prefix.clone(),
                        r.methods.as_ref().map_or_else(
                            || "*".into(),
                            |m| {
                                m.iter()
                                    .map(ToString::to_string)
                                    .collect::<Vec<_>>()
                                    .join(",")
                            },
                        ),
                        auth_name(r),
                        format!("http://{}{}", r.upstream.authority, r.upstream.base_path),
                        r.scopes
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(" "),
                        r.roles.join(","),
                        r.rate_limit.map_or_else(String::new, |l| {
                            format!("{}/{}s", l.limit, l.period_seconds)
                        }),
                        forward_name(r.forward_token).into(),
                    ]
                })
                .collect();
            let mut out = format!(
                "{}: OK, listen {listen}, {} route(s)\n",
                config.display(),
                rows.len()
            );
            out.push_str(&crate::cli::table::render(
                &[
                    "NAME", "HOST", "PREFIX", "METHODS", "AUTH", "UPSTREAM", "SCOPES", "ROLES",
                    "LIMIT", "TOKEN",
                ],
                &rows,
            ));
            Ok((out, true))
        }
    }
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
