//! The `[gateway]` TOML section: its file shape (unknown fields refused)
//! and the validated `GatewayConfig` with its routes. `validate` turns one
//! into the other, reporting every problem at once with the route it
//! belongs to, so `keygate gateway check` can list them.

mod encryption;
mod upstream;
mod validate;
pub use encryption::{EncryptionFile, TokenEncryption, parse as parse_encryption};
pub use validate::validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, Method};
use keygate_core::jwt::AcceptedKinds;
use keygate_core::model::{RateLimitSpec, Scope};
use keygate_core::ratelimit::Unavailable;
use serde::Deserialize;

pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_ROUTE_BODY_LIMIT: u64 = 10 * 1024 * 1024;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayFile {
    /// The gateway's own listener; without it the routes serve forward-auth only.
    pub listen: Option<String>,
    /// Seconds to wait for an upstream's response headers, for every route
    /// that sets none.
    pub timeout_seconds: Option<u64>,
    pub body_limit_bytes: Option<u64>,
    /// A PEM bundle of the CAs https upstreams' certificates must chain
    /// to, for every route that names none; without it, the system's roots.
    pub upstream_ca_file: Option<PathBuf>,
    /// Threads the listener serves its connections on, each its own
    /// runtime; 0 or absent: one per core the process may use.
    pub workers: Option<usize>,
    /// Whether the listener's TLS handshake asks for a client certificate,
    /// over `[tls] client_auth` (which the binary reads with it: the
    /// certificates are the TLS configuration's; a reload cannot change it).
    pub client_auth: Option<keygate_http::listen::ClientAuthMode>,
    #[serde(default)]
    pub routes: Vec<RouteFile>,
}

/// A route's `rate_limit`: `limit` per `period_seconds`, and how many of
/// them may come at once (`burst`, 1 to `limit`, default `limit`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRateLimitFile {
    pub limit: u32,
    pub period_seconds: u32,
    pub burst: Option<u32>,
    /// What the limit does while the shared limiter (Redis) cannot answer:
    /// `local_share`, `deny` or `allow`; default: `[cluster]`'s.
    pub on_limiter_unavailable: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub name: String,
    #[serde(rename = "match")]
    pub matcher: MatchFile,
    pub upstream: String,
    /// https upstreams: the PEM bundle of CAs its certificate must chain
    /// to, in place of the section's `upstream_ca_file` or the system's roots.
    pub upstream_ca_file: Option<PathBuf>,
    /// https upstreams: `false` skips every certificate check; refused
    /// unless the upstream is loopback (a local test set-up).
    pub upstream_tls_verify: Option<bool>,
    pub auth: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    pub rate_limit: Option<RouteRateLimitFile>,
    pub forward_token: Option<String>,
    #[serde(default)]
    pub strip_prefix: bool,
    pub timeout_seconds: Option<u64>,
    pub body_limit_bytes: Option<u64>,
    /// Match the prefix ignoring ASCII case, for upstreams that do.
    #[serde(default)]
    pub case_insensitive: bool,
    /// `refuse` (default) or `keep` paths with `;params` in a segment.
    pub path_params: Option<String>,
    /// Let WebSocket upgrades through to the upstream.
    #[serde(default)]
    pub websocket: bool,
    /// Requests this route may have in flight to its upstream at once;
    /// beyond it, 503 `upstream_busy`.
    pub max_connections: Option<usize>,
    /// Which JWTs count: `users` (default), `clients` or `any`.
    pub jwt_subjects: Option<String>,
    /// The `aud` the route's JWTs must carry: `[jwt] audience` by default,
    /// or one of `[[jwt.audiences]]`.
    pub audience: Option<String>,
    /// `hmac` routes: whether a body's Content-Type and Content-Encoding
    /// must be signed (default: the `hmac_cover_content_headers` setting).
    pub hmac_cover_content_headers: Option<bool>,
    /// Encrypt the internal token to the upstream's public key.
    pub internal_token_encryption: Option<EncryptionFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchFile {
    pub path_prefix: String,
    pub host: Option<String>,
    pub methods: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    ApiKey,
    Jwt,
    ApiKeyOrJwt,
    ApiKeyAndJwt,
    /// An RFC 9421 signature made with a key's signing secret: the key is
    /// the identity, as with `ApiKey`, and the body is checked while it
    /// streams.
    Hmac,
    /// A client certificate naming a registered client (`[mtls]`): the
    /// client is the identity, with its scopes and rate limit, as a key.
    Mtls,
    /// The certificate names the calling service, a user JWT the user,
    /// who is the principal (as `ApiKeyAndJwt`).
    MtlsAndJwt,
    None,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::ApiKey => "api_key",
            AuthMode::Jwt => "jwt",
            AuthMode::ApiKeyOrJwt => "api_key_or_jwt",
            AuthMode::ApiKeyAndJwt => "api_key_and_jwt",
            AuthMode::Hmac => "hmac",
            AuthMode::Mtls => "mtls",
            AuthMode::MtlsAndJwt => "mtls_and_jwt",
            AuthMode::None => "none",
        }
    }

    /// Whether a key or a registered client names the caller: its scopes
    /// and rate limit apply.
    pub fn takes_keys(self) -> bool {
        matches!(
            self,
            AuthMode::ApiKey
                | AuthMode::ApiKeyOrJwt
                | AuthMode::ApiKeyAndJwt
                | AuthMode::Hmac
                | AuthMode::Mtls
                | AuthMode::MtlsAndJwt
        )
    }

    /// Whether the caller is a client certificate's registered client.
    pub fn takes_certificates(self) -> bool {
        matches!(self, AuthMode::Mtls | AuthMode::MtlsAndJwt)
    }

    pub fn takes_jwts(self) -> bool {
        matches!(
            self,
            AuthMode::Jwt | AuthMode::ApiKeyOrJwt | AuthMode::ApiKeyAndJwt | AuthMode::MtlsAndJwt
        )
    }
}

/// What a route does with `;params` in a path segment (`/a;v=1/b`). Either
/// way the route was matched without them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathParams {
    /// 400 (403 at forward-auth): the upstream may read them otherwise.
    Refuse,
    /// Forwarded as sent, for upstreams that use them.
    Keep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardToken {
    Internal,
    Passthrough,
    None,
}

/// An upstream `http(s)://host:port[/base]`.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub authority: String,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// `host:port` to connect to (port 80 or 443 when the URL names none),
    /// and for https the TLS to open with the route's trust.
    pub endpoint: crate::upstream::Endpoint,
    /// The `Host` header upstream requests carry: the URL's authority.
    pub host_header: HeaderValue,
    /// Without a trailing slash; empty for the root.
    pub base_path: String,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    /// Lower case, without a port.
    pub host: Option<String>,
    /// Starts with `/`, no trailing slash except for `/` itself.
    pub path_prefix: String,
    /// None: every method.
    pub methods: Option<Vec<Method>>,
    pub upstream: Upstream,
    pub auth: AuthMode,
    /// The kinds of JWT (`kg_kind`) that `jwt`, `api_key_or_jwt` and the
    /// user half of `api_key_and_jwt` take.
    pub jwt_subjects: AcceptedKinds,
    /// The `aud` its JWTs must carry; None: `[jwt] audience`.
    pub audience: Option<String>,
    pub scopes: Vec<Scope>,
    pub roles: Vec<String>,
    pub rate_limit: Option<RateLimitSpec>,
    /// Requests admitted at once under `rate_limit` (GCRA's burst).
    pub rate_limit_burst: u32,
    /// The fallback while the shared limiter cannot answer; None: the
    /// limiter's default (`[cluster] on_limiter_unavailable`).
    pub on_limiter_unavailable: Option<Unavailable>,
    pub forward_token: ForwardToken,
    pub strip_prefix: bool,
    pub timeout: Duration,
    pub body_limit: u64,
    /// The prefix matches ignoring ASCII case.
    pub case_insensitive: bool,
    pub path_params: PathParams,
    /// WebSocket upgrades pass; every other upgrade is refused.
    pub websocket: bool,
    /// Requests in flight to the upstream at once, counted per upstream
    /// address; None: only the global `[limits] upstream_max_requests`.
    pub max_connections: Option<usize>,
    /// Overrides `HmacPolicy::cover_content_headers` for this route.
    pub hmac_cover_content_headers: Option<bool>,
    /// The internal token is a nested JWT encrypted with this (to the
    /// upstream's key) when set.
    pub internal_token_encryption: Option<Arc<TokenEncryption>>,
    /// This route's metric handles (a reload starts new ones, which find
    /// the same series).
    pub metrics: Arc<crate::metrics::RouteMetrics>,
}

#[derive(Debug, Clone, Default)]
pub struct GatewayConfig {
    pub listen: Option<SocketAddr>,
    /// As set: 0 is one per core, resolved when the listener starts (see
    /// `listener::workers`). Like `listen`, a reload cannot change it.
    pub workers: usize,
    pub routes: Vec<Route>,
}

/// Reads only the `[gateway]` table of a configuration file: a reload must not
/// depend on settings that need a restart anyway.
pub fn load_file(path: &Path) -> Result<Option<GatewayConfig>, Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
    parse_text(&text)
}

pub fn parse_text(text: &str) -> Result<Option<GatewayConfig>, Vec<String>> {
    #[derive(Deserialize)]
    struct Outer {
        gateway: Option<GatewayFile>,
    }
    let outer: Outer = toml::from_str(text).map_err(|e| vec![without_source(&e.to_string())])?;
    outer.gateway.map(|g| validate(&g)).transpose()
}

/// A TOML error without the quoted source lines: the same file may hold the
/// pepper or the master key, and a reload's error goes to the log.
fn without_source(message: &str) -> String {
    message
        .lines()
        .filter(|line| {
            let t = line.trim_start();
            let numbered = t
                .split_once(" |")
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            !t.is_empty() && !t.starts_with('|') && !numbered
        })
        .collect::<Vec<_>>()
        .join(": ")
}
