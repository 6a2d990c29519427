//! The `keygate` command. `serve` and `init` exit with the codes in
//! `server::exit` (sysexits.h), so a supervisor can tell a configuration
//! to fix (78) from a database that is down (69); see `keygate serve --help`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use keygate::config::{Config, LogFormat, ServeArgs};
use keygate::server::{self, StartError};
use keygate_core::SystemClock;
use keygate_core::clients::ClientService;
use tracing_subscriber::EnvFilter;

// glibc's malloc took about a tenth of the server's CPU under load (many
// small, short-lived allocations per request); mimalloc serves those from
// thread-local pages.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// No Debug derives on the command line types: they hold secrets (the
// pepper, an admin key) that must never be printed.
#[derive(Parser)]
#[command(
    name = "keygate",
    version,
    about = "API keys, verified and managed: one binary, SQLite by default, PostgreSQL for many nodes."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (creates ./keygate.db on first start).
    #[command(after_help = server::EXIT_CODES_HELP)]
    Serve(ServeArgs),
    /// Create or migrate a database and print a new root admin key.
    #[command(after_help = server::EXIT_CODES_HELP)]
    Init {
        #[command(flatten)]
        serve: ServeArgs,
        /// Print {"admin_key": "..."} instead of a sentence.
        #[arg(long)]
        json: bool,
    },
    /// Manage keys on a running server.
    Keys(keygate::cli::keys::KeysArgs),
    /// Manage users on a running server.
    Users(keygate::cli::users::UsersArgs),
    /// Manage mTLS clients (services with client certificates) on a running server.
    Clients(keygate::cli::clients::ClientsArgs),
    /// Verify or decode a JWT (no server needed).
    Token(keygate::cli::token::TokenArgs),
    /// Check a gateway configuration (no server needed).
    Gateway(keygate::cli::gateway::GatewayArgs),
    /// Sign a request with a key's HMAC secret (RFC 9421): prints the headers
    /// to send, or curl arguments with --curl (no server needed).
    Sign(keygate::cli::sign::SignArgs),
    /// About the configuration itself (no server needed).
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the configuration reference (docs/reference/configuration.md):
    /// every setting with its file key, environment variable, flag and
    /// default.
    Reference,
}

fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // Colour only on a terminal: a log file or journald would otherwise get
    // raw escape sequences. NO_COLOR (no-color.org) turns it off everywhere.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Whatever keygate creates (the database and its -wal and -shm files, a
/// generated pepper or master key, anything SQLite adds) is private to its
/// user, whatever umask it was started with.
fn private_files() {
    #[cfg(unix)]
    let _ = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

#[tokio::main]
async fn main() -> ExitCode {
    private_files();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args.with_secrets_from_env()).await,
        Command::Init { serve, json } => init(serve.with_secrets_from_env(), json).await,
        Command::Keys(args) => return print_and_exit(keygate::cli::keys::run(args).await),
        Command::Users(args) => return print_and_exit(keygate::cli::users::run(args).await),
        Command::Clients(args) => return print_and_exit(keygate::cli::clients::run(args).await),
        Command::Token(args) => return print_and_exit(keygate::cli::token::run(args).await),
        Command::Gateway(args) => return print_and_exit(keygate::cli::gateway::run(args)),
        Command::Sign(args) => {
            return print_and_exit(keygate::cli::sign::run(args).map(|out| (out, true)));
        }
        Command::Config(ConfigCommand::Reference) => {
            return print_and_exit(Ok((keygate::config::reference::markdown(), true)));
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keygate: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// For the client commands: their output on stdout, then exit 0 or 1 (the
/// command ran and said no); an error that kept it from running exits 2.
fn print_and_exit(result: Result<(String, bool), String>) -> ExitCode {
    match result {
        Ok((out, ok)) => {
            print!("{out}");
            let _ = std::io::stdout().flush();
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("keygate: {e}");
            ExitCode::from(2)
        }
    }
}

/// SIGHUP rereads what may change under a running server: the TLS
/// certificate (renewals), the gateway's routes and the `[mtls]` CA and CRL
/// files. A bad new file is logged and the old one stays in use;
/// connections are never dropped.
async fn reload_on_sighup(
    tls: Option<keygate::tls::Tls>,
    gateway: Option<Arc<keygate::gateway::Gateway>>,
    mtls: Option<(keygate::config::mtls::MtlsConfig, Arc<ClientService>)>,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; nothing will be reloaded");
            return;
        };
        while hup.recv().await.is_some() {
            if let Some(tls) = &tls {
                match tls.reload().await {
                    Ok(()) => tracing::info!("reloaded the TLS certificate"),
                    Err(e) => tracing::error!(error = %e, "kept the old TLS certificate"),
                }
            }
            if let Some(gateway) = &gateway {
                // Reports its own outcome in the log.
                let _ = gateway.reload();
            }
            if let Some((config, clients)) = &mtls {
                match config.load() {
                    Ok(cas) => {
                        clients.replace_cas(cas);
                        tracing::info!("reloaded the [mtls] CAs and CRLs");
                    }
                    Err(e) => tracing::error!(error = %e, "kept the old [mtls] CAs and CRLs"),
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (tls, gateway, mtls);
}

async fn serve(args: ServeArgs) -> Result<(), StartError> {
    let config = Config::load(&args)?;
    init_logging(config.log_format);
    let mut app = server::build(&config, Arc::new(SystemClock)).await?;
    if let Some(root) = app.bootstrap_if_empty().await? {
        // Printed straight to stderr, not through the logger, so the secret
        // never reaches a log pipeline's structured fields.
        eprintln!(
            "\nkeygate: created the root admin key. It will not be shown again; store it now:\n\n    {}\n",
            root.key.expose()
        );
    }
    let listen_error = |source| StartError::Listen {
        addr: config.listen.to_string(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(listen_error)?;
    let addr = listener.local_addr().map_err(listen_error)?;
    tracing::info!(%addr, backend = %app.state.storage.backend(), tls = app.tls.is_some(), "keygate listening");
    if let Some(gateway_addr) = app.bind_gateway().await? {
        tracing::info!(addr = %gateway_addr, "gateway listening");
    }
    if let Some(addr) = app.bind_ext_authz().await? {
        tracing::info!(%addr, "ext_authz (gRPC) listening");
    }
    let mtls = (!config.mtls.cas.is_empty() || !config.mtls.crl_files.is_empty())
        .then(|| (config.mtls.clone(), app.state.clients.clone()));
    if app.tls.is_some() || app.state.gateway.is_some() || mtls.is_some() {
        tokio::spawn(reload_on_sighup(
            app.tls.clone(),
            app.state.gateway.clone(),
            mtls,
        ));
    }
    server::run(listener, app, shutdown_signal())
        .await
        .map_err(|e| StartError::Internal(format!("server error: {e}")))?;
    tracing::info!("keygate stopped");
    Ok(())
}

async fn init(args: ServeArgs, json: bool) -> Result<(), StartError> {
    let config = Config::load(&args)?;
    init_logging(config.log_format);
    let app = server::build(&config, Arc::new(SystemClock)).await?;
    let root = app
        .state
        .keys
        .bootstrap_root_key()
        .await
        .map_err(|e| StartError::from_core("cannot create the root key", e))?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "admin_key": root.key.expose(), "key_id": root.record.id.as_str() })
        );
    } else {
        // The backend only: a database URL can carry a password.
        println!(
            "Database ready ({}). New root admin key ({}); it will not be shown again:\n\n    {}\n",
            app.state.storage.backend(),
            root.record.id,
            root.key.expose()
        );
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
