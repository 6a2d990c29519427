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
    /// The settings over the defaults, each checked (in the order of
    /// `Limits`' fields, the HTTP/2 header list first).
    pub fn resolve(&self) -> Result<Limits, String> {
        let mut limits = Limits::default();
        let header_list = at_least_one(
            "http2_max_header_list_bytes",
            self.http2_max_header_list_bytes,
            limits.http2_max_header_list_bytes,
        )?;
        if header_list > 1024 * 1024 {
            return Err("limits.http2_max_header_list_bytes: at most 1048576".into());
        }
        self.connections(&mut limits)?;
        self.timeouts(&mut limits)?;
        self.http2(&mut limits)?;
        limits.http2_max_header_list_bytes = header_list;
        limits.upstream_max_requests = at_least_one(
            "upstream_max_requests",
            self.upstream_max_requests,
            limits.upstream_max_requests,
        )?;
        Ok(limits)
    }

    /// How many connections, overall and per address; `l` holds defaults.
    fn connections(&self, l: &mut Limits) -> Result<(), String> {
        l.max_connections =
            at_least_one("max_connections", self.max_connections, l.max_connections)?;
        l.max_connections_per_address = self
            .max_connections_per_address
            .unwrap_or(l.max_connections_per_address);
        l.reserved_connections = self.reserved_connections.unwrap_or(l.reserved_connections);
        Ok(())
    }

    /// The timeouts and the body's minimum rate; `l` holds defaults.
    fn timeouts(&self, l: &mut Limits) -> Result<(), String> {
        l.tls_handshake_timeout = secs(
            "tls_handshake_timeout_seconds",
            self.tls_handshake_timeout_seconds,
            l.tls_handshake_timeout,
        )?;
        l.first_byte_timeout = secs(
            "first_byte_timeout_seconds",
            self.first_byte_timeout_seconds,
            l.first_byte_timeout,
        )?;
        l.header_read_timeout = secs(
            "header_read_timeout_seconds",
            self.header_read_timeout_seconds,
            l.header_read_timeout,
        )?;
        l.idle_timeout = secs(
            "idle_timeout_seconds",
            self.idle_timeout_seconds,
            l.idle_timeout,
        )?;
        l.body_min_bytes = self.body_min_bytes.unwrap_or(l.body_min_bytes);
        l.body_window = secs(
            "body_window_seconds",
            self.body_window_seconds,
            l.body_window,
        )?;
        Ok(())
    }

    /// HTTP/2's streams and keep-alive; `l` holds defaults.
    fn http2(&self, l: &mut Limits) -> Result<(), String> {
        l.http2_max_concurrent_streams = at_least_one(
            "http2_max_concurrent_streams",
            self.http2_max_concurrent_streams,
            l.http2_max_concurrent_streams,
        )?;
        l.http2_max_pending_accept_reset_streams = at_least_one(
            "http2_max_pending_accept_reset_streams",
            self.http2_max_pending_accept_reset_streams,
            l.http2_max_pending_accept_reset_streams,
        )?;
        l.http2_max_local_error_reset_streams = at_least_one(
            "http2_max_local_error_reset_streams",
            self.http2_max_local_error_reset_streams,
            l.http2_max_local_error_reset_streams,
        )?;
        l.http2_keep_alive_interval = secs(
            "http2_keep_alive_interval_seconds",
            self.http2_keep_alive_interval_seconds,
            l.http2_keep_alive_interval,
        )?;
        l.http2_keep_alive_timeout = secs(
            "http2_keep_alive_timeout_seconds",
            self.http2_keep_alive_timeout_seconds,
            l.http2_keep_alive_timeout,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_setting_lands_in_its_own_field_and_unset_ones_keep_their_default() {
        let file = LimitsFile {
            max_connections: Some(101),
            max_connections_per_address: Some(102),
            reserved_connections: Some(103),
            tls_handshake_timeout_seconds: Some(104),
            first_byte_timeout_seconds: Some(105),
            header_read_timeout_seconds: Some(106),
            idle_timeout_seconds: Some(107),
            body_min_bytes: Some(108),
            body_window_seconds: Some(109),
            http2_max_concurrent_streams: Some(110),
            http2_max_pending_accept_reset_streams: Some(111),
            http2_max_local_error_reset_streams: Some(112),
            http2_max_header_list_bytes: Some(113),
            http2_keep_alive_interval_seconds: Some(114),
            http2_keep_alive_timeout_seconds: Some(115),
            upstream_max_requests: Some(116),
        };
        let s = Duration::from_secs;
        let want = Limits {
            max_connections: 101,
            max_connections_per_address: 102,
            reserved_connections: 103,
            tls_handshake_timeout: s(104),
            first_byte_timeout: s(105),
            header_read_timeout: s(106),
            idle_timeout: s(107),
            body_min_bytes: 108,
            body_window: s(109),
            http2_max_concurrent_streams: 110,
            http2_max_pending_accept_reset_streams: 111,
            http2_max_local_error_reset_streams: 112,
            http2_max_header_list_bytes: 113,
            http2_keep_alive_interval: s(114),
            http2_keep_alive_timeout: s(115),
            upstream_max_requests: 116,
        };
        assert_eq!(file.resolve(), Ok(want));
        assert_eq!(LimitsFile::default().resolve(), Ok(Limits::default()));
    }

    #[test]
    fn a_value_out_of_range_is_refused_by_name() {
        let refused = |file: LimitsFile| file.resolve().err().unwrap_or_default();
        let zero_streams = LimitsFile {
            http2_max_concurrent_streams: Some(0),
            ..LimitsFile::default()
        };
        assert_eq!(
            refused(zero_streams),
            "limits.http2_max_concurrent_streams: at least 1"
        );
        let long_idle = LimitsFile {
            idle_timeout_seconds: Some(3601),
            ..LimitsFile::default()
        };
        assert_eq!(
            refused(long_idle),
            "limits.idle_timeout_seconds: between 1 and 3600"
        );
        // The header list is checked first, whatever else is wrong.
        let both = LimitsFile {
            max_connections: Some(0),
            http2_max_header_list_bytes: Some(1024 * 1024 + 1),
            ..LimitsFile::default()
        };
        assert_eq!(
            refused(both),
            "limits.http2_max_header_list_bytes: at most 1048576"
        );
    }
}
