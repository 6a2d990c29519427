//! Configuration: defaults < TOML file < `KEYGATE_*` environment < flags.
//!
//! Each setting is declared once, in a `settings!` table (here for the top
//! level, in `jwt.rs` and `cluster.rs` for their tables) with its flag,
//! environment variable, default and meaning; clap layers flags over the
//! environment, the table lays the file and the default underneath, and
//! `Config::load` checks the result once, at start. The same tables
//! generate `docs/reference/configuration.md` (see `reference.rs`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use keygate_core::audit::{AuditConfig, DEFAULT_RETENTION_DAYS};
use keygate_core::httpsig::{DEFAULT_NONCES_PER_KEY, DEFAULT_SKEW_SECS, HmacPolicy};
use keygate_core::jwt::JwtConfig;
use keygate_core::keys::cache::CacheConfig;
use keygate_core::secret::SecretString;
use keygate_core::sessions::SessionConfig;

pub mod audiences;
pub mod cluster;
pub mod dashboard;
mod error;
pub mod ext_authz;
pub(crate) mod jwt;
pub mod mtls;
pub mod reference;
pub(crate) mod settings;
mod sources;
mod tls;
pub use error::ConfigError;
pub use jwt::JwtArgs;
use settings::settings;
pub use sources::{PepperSource, SecretSource, sqlite_path};
use sources::{origin_of, secret_source};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://keygate.db";
pub const DEFAULT_API_BODY_LIMIT: usize = 64 * 1024;
pub const MAX_KEYS_PER_TENANT: u32 = 1_000_000;

// The settings clap cannot take from the table: the file itself, a pair of
// flags that is a `[tls]` table in the file, and a switch (a flag without
// a value). Their help is a constant so the reference reads the same text.
const CONFIG_HELP: &str =
    "TOML configuration file; its settings use the names below in snake_case.";
const TLS_CERT_HELP: &str =
    "TLS certificate chain (PEM) for the listeners; reloaded on SIGHUP. Needs tls_key.";
const TLS_KEY_HELP: &str = "TLS private key (PEM) matching the certificate.";
const ALLOW_PLAIN_HTTP_HELP: &str = "Allow listening on a non-loopback address without TLS \
     (only behind a TLS-terminating proxy).";

settings! {
    table: None;
    /// Settings of `keygate serve` (and the storage settings `init` shares).
    pub struct ServeArgs {
        #[arg(long, env = "KEYGATE_CONFIG", value_name = "FILE", help = CONFIG_HELP)]
        pub config: Option<PathBuf>,
        #[arg(long, env = "KEYGATE_TLS_CERT", value_name = "FILE", requires = "tls_key",
              help = TLS_CERT_HELP)]
        pub tls_cert: Option<PathBuf>,
        #[arg(long, env = "KEYGATE_TLS_KEY", value_name = "FILE", requires = "tls_cert",
              help = TLS_KEY_HELP)]
        pub tls_key: Option<PathBuf>,
        #[arg(long, env = "KEYGATE_ALLOW_PLAIN_HTTP", help = ALLOW_PLAIN_HTTP_HELP)]
        pub allow_plain_http: bool,
        #[command(flatten)]
        pub jwt: JwtArgs,
        #[command(flatten)]
        pub cluster: cluster::ClusterArgs,
    }
    /// The TOML file's shape; every field optional, unknown fields refused.
    struct FileConfig {
        allow_plain_http: Option<bool>,
        jwt: Option<jwt::JwtFile>,
        /// Session lifetimes: absolute_lifetime_secs, idle_timeout_secs,
        /// grace_secs, retention_secs, max_per_user.
        sessions: Option<SessionConfig>,
        keys: Option<KeyLimitsFile>,
        tls: Option<tls::TlsFile>,
        gateway: Option<crate::gateway::config::GatewayFile>,
        /// Bounds on connections, for both listeners.
        limits: Option<keygate_http::listen::LimitsFile>,
        /// Many nodes: node id, S, the shared Redis.
        cluster: Option<cluster::ClusterFile>,
        /// The admin dashboard: enabled, idle_secs, absolute_secs.
        dashboard: Option<dashboard::DashboardConfig>,
        /// Client CAs and CRLs for mTLS clients: cas, crl_files.
        mtls: Option<mtls::MtlsFile>,
        /// Forward-auth: the header a trusted proxy passes the client
        /// certificate in.
        forward_auth: Option<crate::gateway::forward_auth::ForwardAuthFile>,
        /// Envoy's ext_authz over gRPC: listen, tls, max_message_bytes.
        ext_authz: Option<ext_authz::ExtAuthzFile>,
    }
    /// The top-level settings layered, before they are checked.
    pub struct ServeLayered;
    fixed {
        /// Address to listen on. Port 0 picks a free port.
        listen: String = DEFAULT_LISTEN.to_owned(),
            flag "listen", env "KEYGATE_LISTEN", value "ADDR";
        /// Database: sqlite://PATH or postgres://...
        database_url: String = DEFAULT_DATABASE_URL.to_owned(),
            flag "database-url", env "KEYGATE_DATABASE_URL", value "URL";
        /// Version number stored beside each key hash; raise it when
        /// changing the pepper.
        pepper_version: i32 = 1,
            flag "pepper-version", env "KEYGATE_PEPPER_VERSION", value "N";
        /// How long a verified key stays cached, in seconds, at most 3600.
        cache_ttl_seconds: u64 = 30,
            flag "cache-ttl-seconds", env "KEYGATE_CACHE_TTL_SECONDS", value "SECS";
        /// How long an unknown key is remembered as unknown, in seconds, at
        /// most 60; 0 turns this off.
        negative_cache_ttl_seconds: u64 = 5,
            flag "negative-cache-ttl-seconds", env "KEYGATE_NEGATIVE_CACHE_TTL_SECONDS",
            value "SECS";
        /// Most keys held in the cache.
        cache_capacity: usize = 100_000,
            flag "cache-capacity", env "KEYGATE_CACHE_CAPACITY", value "N";
        /// Largest request body accepted, in bytes, 1024 to 16777216.
        body_limit_bytes: usize = DEFAULT_API_BODY_LIMIT,
            flag "body-limit-bytes", env "KEYGATE_BODY_LIMIT_BYTES", value "BYTES";
        /// Log format: text or json.
        log_format: String = "text".to_owned(),
            flag "log-format", env "KEYGATE_LOG_FORMAT", value "FORMAT";
        /// How far a signed request's `created` may be from the server's
        /// time, either way, in seconds; nonces are remembered as long.
        hmac_max_skew_seconds: i64 = DEFAULT_SKEW_SECS,
            flag "hmac-max-skew-seconds", env "KEYGATE_HMAC_MAX_SKEW_SECONDS", value "SECS";
        /// Audit rows older than this many days are deleted (checked at
        /// start and hourly).
        audit_retention_days: u32 = DEFAULT_RETENTION_DAYS,
            flag "audit-retention-days", env "KEYGATE_AUDIT_RETENTION_DAYS", value "DAYS";
        /// Most unexpired signature nonces one key may hold; past it the
        /// key's signed requests get 429 until some expire.
        hmac_nonces_per_key: u32 = DEFAULT_NONCES_PER_KEY,
            flag "hmac-nonces-per-key", env "KEYGATE_HMAC_NONCES_PER_KEY", value "N";
        /// Whether a signed request with a body must cover its Content-Type
        /// and Content-Encoding (those it sends); a gateway route may
        /// override it.
        hmac_cover_content_headers: bool = true,
            flag "hmac-cover-content-headers", env "KEYGATE_HMAC_COVER_CONTENT_HEADERS",
            value "BOOL";
    }
    derived {
        /// File holding the secret used to hash API keys (at least 32
        /// bytes; private to keygate's user: chmod 600). KEYGATE_PEPPER may
        /// hold the value itself.
        pepper_file: PathBuf = "SQLite: generated beside the database; PostgreSQL: required, \
            shared by every node",
            flag "pepper-file", env "KEYGATE_PEPPER_FILE", value "FILE";
        /// File holding the master key (32 random bytes, base64 or hex;
        /// chmod 600) sealing the secrets keygate must reuse: JWT signing
        /// keys and HMAC signing secrets. KEYGATE_MASTER_KEY may hold the
        /// value itself.
        master_key_file: PathBuf = "SQLite: generated beside the database; PostgreSQL: \
            required, shared by every node",
            flag "master-key-file", env "KEYGATE_MASTER_KEY_FILE", value "FILE";
        /// Origins a browser may refresh a session cookie from (the
        /// `Origin` header of `POST /v1/auth/refresh`), comma-separated.
        allowed_origins: Vec<String> = "the issuer's origin",
            flag "allowed-origin", env "KEYGATE_ALLOWED_ORIGINS", value "ORIGIN",
            value_delimiter = ',';
        /// Proxies (addresses or CIDRs, comma-separated) whose
        /// X-Forwarded-For names the client, on both listeners.
        trusted_proxies: Vec<String> = "none",
            flag "trusted-proxy", env "KEYGATE_TRUSTED_PROXIES", value "CIDR",
            value_delimiter = ',';
    }
    secret {
        /// The pepper itself (beats pepper_file); a file holding it must be
        /// private (chmod 600).
        pepper: String, env "KEYGATE_PEPPER";
        /// The master key itself (beats master_key_file); a file holding it
        /// must be private (chmod 600).
        master_key: String, env "KEYGATE_MASTER_KEY";
    }
    file_only {}
}

settings! {
    table: Some("keys");
    /// `[keys]` has no flags; the struct only carries the declaration.
    pub struct KeyLimitsArgs {}
    /// `[keys]`: limits on API keys.
    struct KeyLimitsFile {}
    pub struct KeyLimitsLayered;
    fixed {}
    derived {}
    secret {}
    file_only {
        /// Live (neither revoked nor expired) keys per tenant, 1 to
        /// 1000000; keys without a tenant count as one more tenant.
        max_per_tenant: u32 = keygate_core::keys::service::DEFAULT_MAX_KEYS_PER_TENANT;
        /// Seconds between writes of the verification counts per key
        /// (1 to 3600); they are also written at shutdown.
        usage_flush_secs: u64 = DEFAULT_USAGE_FLUSH_SECS;
        /// Days verification counts per key are kept (1 to 3650).
        usage_retention_days: u32 = keygate_core::keys::usage_query::DEFAULT_USAGE_RETENTION_DAYS;
    }
}

/// `[keys] usage_flush_secs` unless configured.
pub const DEFAULT_USAGE_FLUSH_SECS: u64 = 10;

impl ServeArgs {
    /// Takes the secrets that have no flag (KEYGATE_PEPPER,
    /// KEYGATE_MASTER_KEY, KEYGATE_REDIS_URL) from the environment.
    pub fn with_secrets_from_env(mut self) -> Self {
        self.secrets_from_env();
        self.cluster = self.cluster.with_secrets_from_env();
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The resolved configuration, passed by value into the server. Its
/// `Debug` prints no secret: the database URL may hold a password, the
/// pepper and master key sources and the Redis settings redact themselves.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: SecretString,
    pub pepper: PepperSource,
    pub pepper_version: i32,
    pub master_key: SecretSource,
    pub cache: CacheConfig,
    pub body_limit: usize,
    pub allow_plain_http: bool,
    pub log_format: LogFormat,
    pub jwt: JwtConfig,
    /// `[[jwt.audiences]]` whose tokens are encrypted, with their keys.
    pub audience_encryption: audiences::AudienceEncryption,
    pub sessions: SessionConfig,
    /// `[keys] max_per_tenant`.
    pub max_keys_per_tenant: u32,
    /// `[keys] usage_flush_secs` and `usage_retention_days`.
    pub key_usage: KeyUsageConfig,
    pub allowed_origins: Vec<String>,
    pub tls: Option<crate::tls::TlsFiles>,
    /// The `[gateway]` section, validated.
    pub gateway: Option<crate::gateway::config::GatewayConfig>,
    /// The file the settings came from, which a SIGHUP reads again.
    pub config_path: Option<PathBuf>,
    pub hmac: HmacPolicy,
    /// Whose `X-Forwarded-For` is believed.
    pub trusted_proxies: keygate_http::client_addr::TrustedProxies,
    /// `[limits]`, for each listener.
    pub limits: keygate_http::listen::Limits,
    pub audit: AuditConfig,
    /// `[cluster]`: used on PostgreSQL (SQLite is one node).
    pub cluster: cluster::ClusterConfig,
    /// `[dashboard]`, validated.
    pub dashboard: dashboard::DashboardConfig,
    /// `[mtls]`: the named client CAs and CRLs (files, read at start).
    pub mtls: mtls::MtlsConfig,
    /// `[forward_auth] client_cert_header`: where a trusted proxy passes
    /// the client certificate.
    pub forward_auth: crate::gateway::forward_auth::ProxyCertHeader,
    /// `[ext_authz]`, validated; None when not served.
    pub ext_authz: Option<ext_authz::ExtAuthzConfig>,
}

/// Where the server listens and whether it may do so in clear text.
struct Transport {
    listen: SocketAddr,
    tls: Option<crate::tls::TlsFiles>,
    allow_plain_http: bool,
    gateway: Option<crate::gateway::config::GatewayConfig>,
}

impl Config {
    /// Layers the settings and checks them, in the order they are listed
    /// in the reference, so the first error named is the first bad one.
    pub fn load(args: &ServeArgs) -> Result<Self, ConfigError> {
        let mut file = read_file(args.config.as_deref())?;
        let (pepper, master_key) = secrets(args, &file);
        let l = args.layer(&mut file);
        let listen = parse_listen(&l.listen)?;
        let cache = cache(&l)?;
        let body_limit = body_limit(l.body_limit_bytes)?;
        let log_format = log_format(&l.log_format)?;
        let mtls = mtls_config(&mut file)?;
        let transport = transport(args, &mut file, listen, &mtls)?;
        let mut jwt_file = file.jwt.take().unwrap_or_default();
        let audience_files = std::mem::take(&mut jwt_file.audiences);
        let mut jwt = jwt::resolve(&args.jwt, jwt_file, default_issuer(&transport))?;
        let audience_encryption = audiences::resolve(audience_files, &mut jwt)?;
        let sessions = sessions(&mut file)?;
        let (max_keys_per_tenant, key_usage) = keys_config(file.keys.take().unwrap_or_default())?;
        let allowed_origins = allowed_origins(l.allowed_origins.clone(), &jwt.issuer)?;
        let trusted_proxies = keygate_http::client_addr::TrustedProxies::parse(
            l.trusted_proxies.as_deref().unwrap_or_default(),
        )
        .map_err(ConfigError::Invalid)?;
        let limits = limits_config(&mut file)?;
        let cluster = cluster::resolve(&args.cluster, file.cluster.take().unwrap_or_default())?;
        let hmac = hmac(&l)?;
        let audit = audit(l.audit_retention_days)?;
        let dashboard = dashboard_config(&mut file)?;
        let forward_auth = tls::forward_auth(file.forward_auth.take())?;
        let ext_authz = ext_authz_config(&mut file, &transport, &trusted_proxies)?;
        Ok(Self {
            forward_auth,
            dashboard,
            mtls,
            ext_authz,
            cluster,
            trusted_proxies,
            limits,
            tls: transport.tls,
            gateway: transport.gateway,
            config_path: args.config.clone(),
            jwt,
            audience_encryption,
            sessions,
            max_keys_per_tenant,
            key_usage,
            allowed_origins,
            listen,
            database_url: l.database_url.into(),
            pepper,
            pepper_version: l.pepper_version,
            master_key,
            cache,
            body_limit,
            allow_plain_http: transport.allow_plain_http,
            log_format,
            hmac,
            audit,
        })
    }
}

fn sessions(file: &mut FileConfig) -> Result<SessionConfig, ConfigError> {
    file.sessions
        .take()
        .unwrap_or_default()
        .validate()
        .map_err(|e| ConfigError::invalid(e.to_string()))
}

fn ext_authz_config(
    file: &mut FileConfig,
    transport: &Transport,
    trusted_proxies: &keygate_http::client_addr::TrustedProxies,
) -> Result<Option<ext_authz::ExtAuthzConfig>, ConfigError> {
    let context = ext_authz::Context {
        gateway: transport.gateway.is_some(),
        tls: transport.tls.is_some(),
        trusted_proxies: !trusted_proxies.is_empty(),
        allow_plain_http: transport.allow_plain_http,
    };
    let section = file.ext_authz.take().unwrap_or_default();
    section.validate(&context).map_err(ConfigError::Invalid)
}

fn limits_config(file: &mut FileConfig) -> Result<keygate_http::listen::Limits, ConfigError> {
    file.limits
        .take()
        .unwrap_or_default()
        .resolve()
        .map_err(ConfigError::Invalid)
}

fn dashboard_config(file: &mut FileConfig) -> Result<dashboard::DashboardConfig, ConfigError> {
    file.dashboard
        .take()
        .unwrap_or_default()
        .validate()
        .map_err(ConfigError::Invalid)
}

fn mtls_config(file: &mut FileConfig) -> Result<mtls::MtlsConfig, ConfigError> {
    file.mtls
        .take()
        .unwrap_or_default()
        .resolve()
        .map_err(ConfigError::Invalid)
}

/// The TOML file, or nothing; a file holding a secret must be private.
fn read_file(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let file = toml::from_str::<FileConfig>(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })?;
    if file.pepper.is_some()
        || file.master_key.is_some()
        || file.cluster.as_ref().is_some_and(|c| c.holds_secret())
    {
        crate::file_mode::check_private(path, "config file").map_err(ConfigError::Invalid)?;
    }
    Ok(file)
}

/// The pepper and the master key. Not layered setting by setting: a value
/// beats a file within one layer, but any flag or environment variable
/// beats the config file, so KEYGATE_PEPPER_FILE wins over `pepper` in it.
fn secrets(args: &ServeArgs, file: &FileConfig) -> (PepperSource, SecretSource) {
    let database_url = args
        .database_url
        .as_deref()
        .or(file.database_url.as_deref())
        .unwrap_or(DEFAULT_DATABASE_URL);
    let sqlite_db = sqlite_path(database_url);
    let pepper = secret_source(
        (args.pepper.clone(), args.pepper_file.clone()),
        (file.pepper.clone(), file.pepper_file.clone()),
        sqlite_db.as_deref(),
        "pepper",
    );
    let master_key = secret_source(
        (args.master_key.clone(), args.master_key_file.clone()),
        (file.master_key.clone(), file.master_key_file.clone()),
        sqlite_db.as_deref(),
        "master-key",
    );
    (pepper, master_key)
}

fn parse_listen(text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|_| {
        ConfigError::invalid(format!(
            "listen: {text:?} is not an address such as 127.0.0.1:8080"
        ))
    })
}

fn cache(l: &ServeLayered) -> Result<CacheConfig, ConfigError> {
    let ttl = l.cache_ttl_seconds;
    if ttl > 3600 {
        return Err(ConfigError::invalid("cache_ttl_seconds: at most 3600"));
    }
    let negative_ttl = l.negative_cache_ttl_seconds;
    if negative_ttl > 60 {
        return Err(ConfigError::invalid(
            "negative_cache_ttl_seconds: at most 60",
        ));
    }
    Ok(CacheConfig {
        capacity: l.cache_capacity,
        ttl_ms: i64::try_from(ttl).unwrap_or(30) * 1000,
        negative_ttl_ms: i64::try_from(negative_ttl).unwrap_or(5) * 1000,
    })
}

fn body_limit(bytes: usize) -> Result<usize, ConfigError> {
    if (1024..=16 * 1024 * 1024).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(ConfigError::invalid(
            "body_limit_bytes: between 1024 and 16777216",
        ))
    }
}

fn log_format(name: &str) -> Result<LogFormat, ConfigError> {
    match name {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(ConfigError::invalid(format!(
            "log_format: {other:?} is not text or json"
        ))),
    }
}

/// TLS, the plain-HTTP exception and the gateway's listener: API keys
/// must not cross the network in clear text unless the operator says a
/// proxy in front terminates TLS.
fn transport(
    args: &ServeArgs,
    file: &mut FileConfig,
    listen: SocketAddr,
    mtls: &mtls::MtlsConfig,
) -> Result<Transport, ConfigError> {
    let flags = args.tls_cert.clone().zip(args.tls_key.clone());
    let gateway_client_auth = file.gateway.as_ref().and_then(|g| g.client_auth);
    let tls = tls::resolve(flags, file.tls.take(), gateway_client_auth, mtls)?;
    let allow_plain_http = args.allow_plain_http || file.allow_plain_http.unwrap_or(false);
    if !listen.ip().is_loopback() && !allow_plain_http && tls.is_none() {
        return Err(ConfigError::invalid(format!(
            "refusing to serve plain HTTP on the non-loopback address {listen}: API keys \
             would cross the network in clear text. Configure TLS ([tls] cert and key, or \
             --tls-cert and --tls-key); or, behind a TLS-terminating proxy, pass \
             --allow-plain-http (KEYGATE_ALLOW_PLAIN_HTTP=true, or allow_plain_http = true \
             in the config file); or listen on 127.0.0.1"
        )));
    }
    let gateway = file
        .gateway
        .as_ref()
        .map(crate::gateway::config::validate)
        .transpose()
        .map_err(|errors| ConfigError::invalid(format!("[gateway]:\n  {}", errors.join("\n  "))))?;
    if gateway_client_auth.is_some() && gateway.as_ref().and_then(|g| g.listen).is_none() {
        return Err(ConfigError::invalid(
            "[gateway] client_auth needs [gateway] listen: without its own listener the \
             gateway serves forward-auth, where the proxy passes the client certificate",
        ));
    }
    // The gateway's listener serves TLS whenever `[tls]` is configured.
    if let Some(addr) = gateway.as_ref().and_then(|g| g.listen)
        && !addr.ip().is_loopback()
        && !allow_plain_http
        && tls.is_none()
    {
        return Err(ConfigError::invalid(format!(
            "refusing to serve the gateway over plain HTTP on the non-loopback address \
             {addr}: credentials would cross the network in clear text. Put keygate behind \
             a TLS-terminating proxy and set allow_plain_http = true, or listen on 127.0.0.1"
        )));
    }
    Ok(Transport {
        listen,
        tls,
        allow_plain_http,
        gateway,
    })
}

fn default_issuer(t: &Transport) -> String {
    let scheme = if t.tls.is_some() { "https" } else { "http" };
    format!("{scheme}://{}", t.listen)
}

/// How verification counts per key are written and kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUsageConfig {
    pub flush_secs: u64,
    pub retention_days: u32,
}

fn keys_config(mut file: KeyLimitsFile) -> Result<(u32, KeyUsageConfig), ConfigError> {
    let l = KeyLimitsArgs::default().layer(&mut file);
    if !(1..=MAX_KEYS_PER_TENANT).contains(&l.max_per_tenant) {
        return Err(ConfigError::invalid(format!(
            "keys.max_per_tenant: between 1 and {MAX_KEYS_PER_TENANT}"
        )));
    }
    if !(1..=3600).contains(&l.usage_flush_secs) {
        return Err(ConfigError::invalid(
            "keys.usage_flush_secs: between 1 and 3600",
        ));
    }
    if !(1..=3650).contains(&l.usage_retention_days) {
        return Err(ConfigError::invalid(
            "keys.usage_retention_days: between 1 and 3650",
        ));
    }
    let usage = KeyUsageConfig {
        flush_secs: l.usage_flush_secs,
        retention_days: l.usage_retention_days,
    };
    Ok((l.max_per_tenant, usage))
}

fn allowed_origins(
    configured: Option<Vec<String>>,
    issuer: &str,
) -> Result<Vec<String>, ConfigError> {
    let mut origins = configured.unwrap_or_default();
    if origins.is_empty() {
        origins.push(origin_of(issuer));
    }
    match origins.iter().find(|o| !is_origin(o)) {
        Some(bad) => Err(ConfigError::invalid(format!(
            "allowed_origins: {bad:?} is not an origin such as https://app.example.com"
        ))),
        None => Ok(origins),
    }
}

/// `scheme://host[:port]` with an http(s) scheme and nothing after the
/// authority. Cut at the scheme's end rather than at a byte offset: a
/// non-ASCII origin must be refused, not split mid-character (a panic).
fn is_origin(origin: &str) -> bool {
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    authority.is_some_and(|a| !a.is_empty() && !a.contains('/'))
}

fn hmac(l: &ServeLayered) -> Result<HmacPolicy, ConfigError> {
    HmacPolicy {
        max_skew_secs: l.hmac_max_skew_seconds,
        nonces_per_key: l.hmac_nonces_per_key,
        cover_content_headers: l.hmac_cover_content_headers,
    }
    .validate()
    .map_err(|e| ConfigError::invalid(e.to_string()))
}

fn audit(retention_days: u32) -> Result<AuditConfig, ConfigError> {
    AuditConfig {
        retention_days,
        ..AuditConfig::default()
    }
    .validate()
    .map_err(|e| ConfigError::invalid(e.to_string()))
}

#[cfg(test)]
mod tests;
