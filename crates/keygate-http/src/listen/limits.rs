//! What bounds a connection: the `[limits]` settings, their defaults, and
//! their fit under the process's file-descriptor limit.

use std::time::Duration;

use serde::Deserialize;

/// `[limits]` as written in the TOML file; every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    pub max_connections: Option<usize>,
    pub max_connections_per_address: Option<usize>,
    pub reserved_connections: Option<usize>,
    pub tls_handshake_timeout_seconds: Option<u64>,
    pub first_byte_timeout_seconds: Option<u64>,
    pub header_read_timeout_seconds: Option<u64>,
    pub idle_timeout_seconds: Option<u64>,
    pub body_min_bytes: Option<u64>,
    pub body_window_seconds: Option<u64>,
    pub http2_max_concurrent_streams: Option<u32>,
    pub http2_max_pending_accept_reset_streams: Option<usize>,
    pub http2_max_local_error_reset_streams: Option<usize>,
    pub http2_max_header_list_bytes: Option<u32>,
    pub http2_keep_alive_interval_seconds: Option<u64>,
    pub http2_keep_alive_timeout_seconds: Option<u64>,
    pub upstream_max_requests: Option<usize>,
}

/// The bounds every connection of one listener lives under. Each listener
/// counts its own connections against them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections served normally at once.
    pub max_connections: usize,
    /// Connections one client address may hold at once; 0: no such cap.
    pub max_connections_per_address: usize,
    /// Connections beyond `max_connections` that are still accepted, but
    /// serve only the listener's reserved paths (health checks).
    pub reserved_connections: usize,
    pub tls_handshake_timeout: Duration,
    /// How long a new connection (after its TLS handshake) may wait before
    /// its first request starts.
    pub first_byte_timeout: Duration,
    /// How long a request's header may take to arrive (HTTP/1; hyper also
    /// runs this timer while a keep-alive connection waits for its next
    /// request).
    pub header_read_timeout: Duration,
    /// How long a connection may stay without a request in flight.
    pub idle_timeout: Duration,
    /// A request body must deliver at least `body_min_bytes` in each
    /// `body_window` the server spends waiting for it.
    pub body_min_bytes: u64,
    pub body_window: Duration,
    pub http2_max_concurrent_streams: u32,
    pub http2_max_pending_accept_reset_streams: usize,
    pub http2_max_local_error_reset_streams: usize,
    pub http2_max_header_list_bytes: u32,
    pub http2_keep_alive_interval: Duration,
    pub http2_keep_alive_timeout: Duration,
    /// Upstream requests the gateway has in flight at once, over all routes.
    pub upstream_max_requests: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_address: 512,
            reserved_connections: 16,
            tls_handshake_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            body_min_bytes: 1024,
            body_window: Duration::from_secs(10),
            http2_max_concurrent_streams: 64,
            http2_max_pending_accept_reset_streams: 20,
            http2_max_local_error_reset_streams: 64,
            http2_max_header_list_bytes: 16 * 1024,
            http2_keep_alive_interval: Duration::from_secs(30),
            http2_keep_alive_timeout: Duration::from_secs(20),
            upstream_max_requests: 4096,
        }
    }
}

fn secs(name: &str, value: Option<u64>, default: Duration) -> Result<Duration, String> {
    match value {
        None => Ok(default),
        Some(s) if (1..=3600).contains(&s) => Ok(Duration::from_secs(s)),
        Some(_) => Err(format!("limits.{name}: between 1 and 3600")),
    }
}

fn at_least_one<T: PartialOrd + From<u8> + Copy>(
    name: &str,
    value: Option<T>,
    default: T,
) -> Result<T, String> {
    match value {
        Some(v) if v < T::from(1) => Err(format!("limits.{name}: at least 1")),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

impl LimitsFile {
    /// The settings over the defaults, each checked.
    pub fn resolve(&self) -> Result<Limits, String> {
        let d = Limits::default();
        let header_list = at_least_one(
            "http2_max_header_list_bytes",
            self.http2_max_header_list_bytes,
            d.http2_max_header_list_bytes,
        )?;
        if header_list > 1024 * 1024 {
            return Err("limits.http2_max_header_list_bytes: at most 1048576".into());
        }
        Ok(Limits {
            max_connections: at_least_one(
                "max_connections",
                self.max_connections,
                d.max_connections,
            )?,
            max_connections_per_address: self
                .max_connections_per_address
                .unwrap_or(d.max_connections_per_address),
            reserved_connections: self.reserved_connections.unwrap_or(d.reserved_connections),
            tls_handshake_timeout: secs(
                "tls_handshake_timeout_seconds",
                self.tls_handshake_timeout_seconds,
                d.tls_handshake_timeout,
            )?,
            first_byte_timeout: secs(
                "first_byte_timeout_seconds",
                self.first_byte_timeout_seconds,
                d.first_byte_timeout,
            )?,
            header_read_timeout: secs(
                "header_read_timeout_seconds",
                self.header_read_timeout_seconds,
                d.header_read_timeout,
            )?,
            idle_timeout: secs(
                "idle_timeout_seconds",
                self.idle_timeout_seconds,
                d.idle_timeout,
            )?,
            body_min_bytes: self.body_min_bytes.unwrap_or(d.body_min_bytes),
            body_window: secs(
                "body_window_seconds",
                self.body_window_seconds,
                d.body_window,
            )?,
            http2_max_concurrent_streams: at_least_one(
                "http2_max_concurrent_streams",
                self.http2_max_concurrent_streams,
                d.http2_max_concurrent_streams,
            )?,
            http2_max_pending_accept_reset_streams: at_least_one(
                "http2_max_pending_accept_reset_streams",
                self.http2_max_pending_accept_reset_streams,
                d.http2_max_pending_accept_reset_streams,
            )?,
            http2_max_local_error_reset_streams: at_least_one(
                "http2_max_local_error_reset_streams",
                self.http2_max_local_error_reset_streams,
                d.http2_max_local_error_reset_streams,
            )?,
            http2_max_header_list_bytes: header_list,
            http2_keep_alive_interval: secs(
                "http2_keep_alive_interval_seconds",
                self.http2_keep_alive_interval_seconds,
                d.http2_keep_alive_interval,
            )?,
            http2_keep_alive_timeout: secs(
                "http2_keep_alive_timeout_seconds",
                self.http2_keep_alive_timeout_seconds,
                d.http2_keep_alive_timeout,
            )?,
            upstream_max_requests: at_least_one(
                "upstream_max_requests",
                self.upstream_max_requests,
                d.upstream_max_requests,
            )?,
        })
    }
}
