//! Configuration: defaults < TOML file < `KEYGATE_*` environment < flags.
//!
//! clap resolves flags over environment variables; this module lays the TOML
//! file and the defaults underneath and checks the result once, at start.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use keygate_core::audit::{AuditConfig, DEFAULT_RETENTION_DAYS};
use keygate_core::cache::CacheConfig;
use keygate_core::httpsig::{DEFAULT_NONCES_PER_KEY, DEFAULT_SKEW_SECS, HmacPolicy};
use keygate_core::jwt::JwtConfig;
use keygate_core::sessions::SessionConfig;
use serde::Deserialize;

pub mod cluster;
mod jwt;
mod sources;
pub use jwt::JwtArgs;
pub use sources::{PepperSource, SecretSource, sqlite_path};
use sources::{origin_of, secret_source};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://keygate.db";
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// Settings of `keygate serve` (and the storage settings `init` shares).
#[derive(Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file; its settings use the names below in snake_case.
    #[arg(long, env = "KEYGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to listen on [default: 127.0.0.1:8080]. Port 0 picks a free port.
    #[arg(long, env = "KEYGATE_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// Database: sqlite://PATH (the default, sqlite://keygate.db) or postgres://...
    #[arg(long, env = "KEYGATE_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,

    /// The pepper itself, from KEYGATE_PEPPER only: a flag's value would be
    /// visible to every user of the machine in `ps`.
    #[arg(skip)]
    pub pepper: Option<String>,

    /// File holding the secret used to hash API keys (at least 32 bytes;
    /// private to keygate's user: chmod 600). KEYGATE_PEPPER may hold the
    /// value itself. On SQLite one is generated beside the database when
    /// none is set; PostgreSQL requires one, shared by every node.
    #[arg(long, env = "KEYGATE_PEPPER_FILE", value_name = "FILE")]
    pub pepper_file: Option<PathBuf>,

    /// The master key itself, from KEYGATE_MASTER_KEY only (never a flag).
    #[arg(skip)]
    pub master_key: Option<String>,

    /// File holding the master key (32 random bytes, base64 or hex; chmod
    /// 600) sealing the secrets keygate must reuse: JWT signing keys and
    /// HMAC signing secrets. KEYGATE_MASTER_KEY may hold the value itself.
    /// On SQLite one is generated beside the database when none is set;
    /// PostgreSQL requires one, shared by every node.
    #[arg(long, env = "KEYGATE_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,

    /// Version number stored beside each key hash [default: 1]; raise it when
    /// changing the pepper.
    #[arg(long, env = "KEYGATE_PEPPER_VERSION", value_name = "N")]
    pub pepper_version: Option<i32>,

    /// How long a verified key stays cached, in seconds [default: 30].
    #[arg(long, env = "KEYGATE_CACHE_TTL_SECONDS", value_name = "SECS")]
    pub cache_ttl_seconds: Option<u64>,

    /// How long an unknown key is remembered as unknown, in seconds; 0 turns
    /// this off [default: 5, at most 60].
    #[arg(long, env = "KEYGATE_NEGATIVE_CACHE_TTL_SECONDS", value_name = "SECS")]
    pub negative_cache_ttl_seconds: Option<u64>,

    /// Most keys held in the cache [default: 100000].
    #[arg(long, env = "KEYGATE_CACHE_CAPACITY", value_name = "N")]
    pub cache_capacity: Option<usize>,

    /// Largest request body accepted, in bytes [default: 65536].
    #[arg(long, env = "KEYGATE_BODY_LIMIT_BYTES", value_name = "BYTES")]
    pub body_limit_bytes: Option<usize>,

    /// TLS certificate chain (PEM) for the listeners; reloaded on SIGHUP.
    #[arg(
        long,
        env = "KEYGATE_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM) matching --tls-cert.
    #[arg(
        long,
        env = "KEYGATE_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Allow listening on a non-loopback address without TLS (only behind a
    /// TLS-terminating proxy).
    #[arg(long, env = "KEYGATE_ALLOW_PLAIN_HTTP")]
    pub allow_plain_http: bool,

    /// Log format: text or json [default: text].
    #[arg(long, env = "KEYGATE_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// Origins a browser may refresh a session cookie from (the `Origin`
    /// header of `POST /v1/auth/refresh`), comma-separated
    /// [default: the issuer's origin].
    #[arg(
        long = "allowed-origin",
        env = "KEYGATE_ALLOWED_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    #[command(flatten)]
    pub jwt: JwtArgs,
    #[command(flatten)]
    pub cluster: cluster::ClusterArgs,
    /// How far a signed request's `created` may be from the server's time,
    /// either way, in seconds; nonces are remembered as long [default: 300].
    #[arg(long, env = "KEYGATE_HMAC_MAX_SKEW_SECONDS", value_name = "SECS")]
    pub hmac_max_skew_seconds: Option<i64>,

    /// Proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For
    /// names the client, on both listeners [default: none].
    #[arg(
        long = "trusted-proxy",
        env = "KEYGATE_TRUSTED_PROXIES",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// Audit rows older than this many days are deleted (checked at start
    /// and hourly) [default: 90].
    #[arg(long, env = "KEYGATE_AUDIT_RETENTION_DAYS", value_name = "DAYS")]
    pub audit_retention_days: Option<u32>,
    /// Most unexpired signature nonces one key may hold; past it the key's
    /// signed requests get 429 until some expire [default: 100000].
    #[arg(long, env = "KEYGATE_HMAC_NONCES_PER_KEY", value_name = "N")]
    pub hmac_nonces_per_key: Option<u32>,
    /// Whether a signed request with a body must cover its Content-Type and
    /// Content-Encoding (those it sends); a gateway route may override it
    /// [default: true].
    #[arg(long, env = "KEYGATE_HMAC_COVER_CONTENT_HEADERS", value_name = "BOOL")]
    pub hmac_cover_content_headers: Option<bool>,
}

impl ServeArgs {
    /// Takes the secrets that have no flag (KEYGATE_PEPPER,
    /// KEYGATE_MASTER_KEY) from the environment.
    pub fn with_secrets_from_env(mut self) -> Self {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        self.pepper = self.pepper.or_else(|| var("KEYGATE_PEPPER"));
        self.master_key = self.master_key.or_else(|| var("KEYGATE_MASTER_KEY"));
        self.cluster.redis_url = self.cluster.redis_url.or_else(|| var("KEYGATE_REDIS_URL"));
        self
    }
}

/// The TOML file's shape; every field optional, unknown fields refused.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    database_url: Option<String>,
    pepper: Option<String>,
    pepper_file: Option<PathBuf>,
    pepper_version: Option<i32>,
    master_key: Option<String>,
    master_key_file: Option<PathBuf>,
    cache_ttl_seconds: Option<u64>,
    negative_cache_ttl_seconds: Option<u64>,
    cache_capacity: Option<usize>,
    body_limit_bytes: Option<usize>,
    allow_plain_http: Option<bool>,
    log_format: Option<String>,
    jwt: Option<jwt::JwtFile>,
    /// Session lifetimes: absolute_lifetime_secs, idle_timeout_secs,
    /// grace_secs, retention_secs.
    sessions: Option<SessionConfig>,
    keys: Option<KeysFile>,
    allowed_origins: Option<Vec<String>>,
    tls: Option<TlsFile>,
    gateway: Option<crate::gateway::config::GatewayFile>,
    hmac_max_skew_seconds: Option<i64>,
    trusted_proxies: Option<Vec<String>>,
    /// Bounds on connections, for both listeners.
    limits: Option<crate::listen::LimitsFile>,
    audit_retention_days: Option<u32>,
    hmac_nonces_per_key: Option<u32>,
    hmac_cover_content_headers: Option<bool>,
    /// Many nodes: node id, S, the shared Redis.
    cluster: Option<cluster::ClusterFile>,
}

/// `[keys]`: limits on API keys.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    /// Live (neither revoked nor expired) keys per tenant; keys without a
    /// tenant count as one more tenant [default: 1000].
    max_per_tenant: Option<u32>,
}

pub const MAX_KEYS_PER_TENANT: u32 = 1_000_000;

/// `[tls]`: both files or neither.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The resolved configuration, passed by value into the server.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub pepper: PepperSource,
    pub pepper_version: i32,
    pub master_key: SecretSource,
    pub cache: CacheConfig,
    pub body_limit: usize,
    pub allow_plain_http: bool,
    pub log_format: LogFormat,
    pub jwt: JwtConfig,
    pub sessions: SessionConfig,
    /// `[keys] max_per_tenant`.
    pub max_keys_per_tenant: u32,
    pub allowed_origins: Vec<String>,
    pub tls: Option<crate::tls::TlsFiles>,
    /// The `[gateway]` section, validated.
    pub gateway: Option<crate::gateway::config::GatewayConfig>,
    /// The file the settings came from, which a SIGHUP reads again.
    pub config_path: Option<PathBuf>,
    pub hmac: HmacPolicy,
    /// Whose `X-Forwarded-For` is believed.
    pub trusted_proxies: crate::client_addr::TrustedProxies,
    /// `[limits]`, for each listener.
    pub limits: crate::listen::Limits,
    pub audit: AuditConfig,
    /// `[cluster]`: used on PostgreSQL (SQLite is one node).
    pub cluster: cluster::ClusterConfig,
}

impl Config {
    pub fn load(args: &ServeArgs) -> Result<Self, String> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
                let file = toml::from_str::<FileConfig>(&text)
                    .map_err(|e| format!("config file {}: {e}", path.display()))?;
                if file.pepper.is_some()
                    || file.master_key.is_some()
                    || file.cluster.as_ref().is_some_and(|c| c.holds_secret())
                {
                    crate::file_mode::check_private(path, "config file")?;
                }
                file
            }
            None => FileConfig::default(),
        };
        let listen_text = args
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            format!("listen: {listen_text:?} is not an address such as 127.0.0.1:8080")
        })?;
        let database_url = args
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let sqlite_db = sqlite_path(&database_url);
        let pepper = secret_source(
            (args.pepper.clone(), args.pepper_file.clone()),
            (file.pepper, file.pepper_file),
            sqlite_db.as_deref(),
            "pepper",
        );
        let master_key = secret_source(
            (args.master_key.clone(), args.master_key_file.clone()),
            (file.master_key, file.master_key_file),
            sqlite_db.as_deref(),
            "master-key",
        );
        let ttl = args
            .cache_ttl_seconds
            .or(file.cache_ttl_seconds)
            .unwrap_or(30);
        if ttl > 3600 {
            return Err("cache_ttl_seconds: at most 3600".into());
        }
        let negative_ttl = args
            .negative_cache_ttl_seconds
            .or(file.negative_cache_ttl_seconds)
            .unwrap_or(5);
        if negative_ttl > 60 {
            return Err("negative_cache_ttl_seconds: at most 60".into());
        }
        let capacity = args
            .cache_capacity
            .or(file.cache_capacity)
            .unwrap_or(100_000);
        let body_limit = args
            .body_limit_bytes
            .or(file.body_limit_bytes)
            .unwrap_or(DEFAULT_BODY_LIMIT);
        if !(1024..=16 * 1024 * 1024).contains(&body_limit) {
            return Err("body_limit_bytes: between 1024 and 16777216".into());
        }
        let log_format = match args
            .log_format
            .clone()
            .or(file.log_format)
            .as_deref()
            .unwrap_or("text")
        {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(format!("log_format: {other:?} is not text or json")),
        };
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => file.tls.map(|t| crate::tls::TlsFiles {
                cert: t.cert,
                key: t.key,
            }),
        };
        let allow_plain_http = args.allow_plain_http || file.allow_plain_http.unwrap_or(false);
        if !listen.ip().is_loopback() && !allow_plain_http && tls.is_none() {
            return Err(format!(
                "refusing to serve plain HTTP on the non-loopback address {listen}: API keys \
                 would cross the network in clear text. Configure TLS ([tls] cert and key, or \
                 --tls-cert and --tls-key); or, behind a TLS-terminating proxy, pass \
                 --allow-plain-http (KEYGATE_ALLOW_PLAIN_HTTP=true, or allow_plain_http = true \
                 in the config file); or listen on 127.0.0.1"
            ));
        }
        let gateway = file
            .gateway
            .as_ref()
            .map(crate::gateway::config::validate)
            .transpose()
            .map_err(|errors| format!("[gateway]:\n  {}", errors.join("\n  ")))?;
        if let Some(addr) = gateway.as_ref().and_then(|g| g.listen)
            && !addr.ip().is_loopback()
            && !allow_plain_http
        {
            return Err(format!(
                "refusing to serve the gateway over plain HTTP on the non-loopback address \
                 {addr}: credentials would cross the network in clear text. Put keygate behind \
                 a TLS-terminating proxy and set allow_plain_http = true, or listen on 127.0.0.1"
            ));
        }
        let jwt = jwt::resolve(
            &args.jwt,
            file.jwt.unwrap_or_default(),
            format!(
                "{}://{listen}",
                if tls.is_some() { "https" } else { "http" }
            ),
        )?;
        let sessions = file
            .sessions
            .unwrap_or_default()
            .validate()
            .map_err(|e| e.to_string())?;
        let max_keys_per_tenant = file
            .keys
            .and_then(|k| k.max_per_tenant)
            .unwrap_or(keygate_core::service::DEFAULT_MAX_KEYS_PER_TENANT);
        if !(1..=MAX_KEYS_PER_TENANT).contains(&max_keys_per_tenant) {
            return Err(format!(
                "keys.max_per_tenant: between 1 and {MAX_KEYS_PER_TENANT}"
            ));
        }
        let mut allowed_origins = if args.allowed_origins.is_empty() {
            file.allowed_origins.unwrap_or_default()
        } else {
            args.allowed_origins.clone()
        };
        if allowed_origins.is_empty() {
            allowed_origins.push(origin_of(&jwt.issuer));
        }
        for origin in &allowed_origins {
            if !is_origin(origin) {
                return Err(format!(
                    "allowed_origins: {origin:?} is not an origin such as https://app.example.com"
                ));
            }
        }
        let trusted_proxies =
            crate::client_addr::TrustedProxies::parse(if args.trusted_proxies.is_empty() {
                file.trusted_proxies.as_deref().unwrap_or_default()
            } else {
                &args.trusted_proxies
            })?;
        let limits = file.limits.unwrap_or_default().resolve()?;
        let cluster = cluster::resolve(&args.cluster, file.cluster.unwrap_or_default())?;
        Ok(Self {
            cluster,
            trusted_proxies,
            limits,
            tls,
            gateway,
            config_path: args.config.clone(),
            jwt,
            sessions,
            max_keys_per_tenant,
            allowed_origins,
            listen,
            database_url,
            pepper,
            pepper_version: args.pepper_version.or(file.pepper_version).unwrap_or(1),
            master_key,
            cache: CacheConfig {
                capacity,
                ttl_ms: i64::try_from(ttl).unwrap_or(30) * 1000,
                negative_ttl_ms: i64::try_from(negative_ttl).unwrap_or(5) * 1000,
            },
            body_limit,
            allow_plain_http,
            log_format,
            hmac: HmacPolicy {
                max_skew_secs: args
                    .hmac_max_skew_seconds
                    .or(file.hmac_max_skew_seconds)
                    .unwrap_or(DEFAULT_SKEW_SECS),
                nonces_per_key: args
                    .hmac_nonces_per_key
                    .or(file.hmac_nonces_per_key)
                    .unwrap_or(DEFAULT_NONCES_PER_KEY),
                cover_content_headers: args
                    .hmac_cover_content_headers
                    .or(file.hmac_cover_content_headers)
                    .unwrap_or(true),
            }
            .validate()
            .map_err(|e| e.to_string())?,
            audit: AuditConfig {
                retention_days: args
                    .audit_retention_days
                    .or(file.audit_retention_days)
                    .unwrap_or(DEFAULT_RETENTION_DAYS),
                ..AuditConfig::default()
            }
            .validate()
            .map_err(|e| e.to_string())?,
        })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_need_nothing() {
        let c = Config::load(&ServeArgs::default()).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(
            c.pepper,
            PepperSource::BesideDatabase("keygate.db.pepper".into())
        );
        assert_eq!(c.body_limit, DEFAULT_BODY_LIMIT);
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\ncache_ttl_seconds = 10\n",
        )
        .unwrap();
        let mut args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        let c = Config::load(&args).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.cache.ttl_ms, 10_000);
        args.listen = Some("127.0.0.1:9001".into());
        assert_eq!(Config::load(&args).unwrap().listen.port(), 9001);
    }

    #[test]
    fn bad_settings_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let err = Config::load(&ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.contains("lisen"), "{err}");
        let err = Config::load(&ServeArgs {
            listen: Some("0.0.0.0:8080".into()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.contains("--allow-plain-http"), "{err}");
        // With TLS a public address needs no exception, and the default
        // issuer is https.
        let c = Config::load(&ServeArgs {
            listen: Some("0.0.0.0:8443".into()),
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(c.jwt.issuer, "https://0.0.0.0:8443");
        let err = Config::load(&ServeArgs {
            database_url: Some("postgres://db/keygate".into()),
            ..ServeArgs::default()
        })
        .map(|c| c.pepper)
        .unwrap();
        assert_eq!(err, PepperSource::Missing);
        let err = Config::load(&ServeArgs {
            hmac_max_skew_seconds: Some(0),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.contains("hmac_max_skew_seconds"), "{err}");
        let ok = Config::load(&ServeArgs {
            hmac_max_skew_seconds: Some(60),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(ok.hmac.max_skew_secs, 60);
        let err = Config::load(&ServeArgs {
            audit_retention_days: Some(0),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.contains("audit_retention_days"), "{err}");
        assert_eq!(
            Config::load(&ServeArgs::default())
                .unwrap()
                .audit
                .retention_days,
            90
        );
        assert_eq!(ok.hmac.nonces_per_key, DEFAULT_NONCES_PER_KEY);
        assert!(ok.hmac.cover_content_headers);
        let err = Config::load(&ServeArgs {
            hmac_nonces_per_key: Some(0),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.contains("hmac_nonces_per_key"), "{err}");
    }

    #[test]
    fn origins_are_checked_by_their_parts_never_sliced_mid_character() {
        for good in [
            "https://app.example.com",
            "http://localhost:3000",
            "http://é.example",
        ] {
            assert!(super::is_origin(good), "{good}");
        }
        for bad in [
            "https://app.example.com/",
            "https://app.example.com/path",
            "http://",
            "ftp://x",
            "app.example.com",
            "http://é/x",
            "http:/é",
        ] {
            assert!(!super::is_origin(bad), "{bad}");
        }
    }
}
