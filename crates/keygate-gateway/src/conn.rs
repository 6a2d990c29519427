//! The client connection as each of its requests sees it, and the client
//! as the upstream is told of it.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue};
use keygate_core::clients::PeerCertificate;

use super::upstream::Affinity;
use keygate_http::client_addr::TrustedProxies;

/// One client connection, as each of its requests sees it.
pub struct ClientConn {
    pub peer: SocketAddr,
    /// The peer's address as text, for per-address limits.
    pub peer_text: String,
    /// `X-Forwarded-For` and the `for=` of `Forwarded` (RFC 7239), made
    /// once per connection rather than per request.
    pub x_forwarded_for: HeaderValue,
    pub forwarded_for: String,
    /// The upstream connection this client's requests reuse.
    pub affinity: Arc<Affinity>,
    /// The client certificate chain the TLS handshake took, shared by
    /// every request on the connection.
    pub certificate: Option<PeerCertificate>,
}

impl ClientConn {
    pub fn new(peer: SocketAddr, affinity: Arc<Affinity>) -> Self {
        let (peer_text, x_forwarded_for, forwarded_for) = Self::describe(peer.ip());
        Self {
            peer,
            x_forwarded_for,
            peer_text,
            forwarded_for,
            affinity,
            certificate: None,
        }
    }

    pub fn with_certificate(mut self, certificate: Option<PeerCertificate>) -> Self {
        self.certificate = certificate;
        self
    }

    /// An address as text, as `X-Forwarded-For` and as `Forwarded`'s `for=`.
    pub fn describe(ip: IpAddr) -> (String, HeaderValue, String) {
        let text = ip.to_string();
        let forwarded_for = match ip {
            IpAddr::V4(v4) => format!("for={v4}"),
            IpAddr::V6(v6) => format!("for=\"[{v6}]\""),
        };
        let xff = HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("unknown"));
        (text, xff, forwarded_for)
    }
}

/// The client as the upstream is told of it: the peer, or the client a
/// trusted proxy in front names (`trusted_proxies`).
pub struct Client<'a> {
    pub ip: Cow<'a, str>,
    pub x_forwarded_for: Cow<'a, HeaderValue>,
    pub forwarded_for: Cow<'a, str>,
}

impl<'a> Client<'a> {
    pub fn of(trusted: &TrustedProxies, conn: &'a ClientConn, headers: &HeaderMap) -> Self {
        if trusted.is_empty() || !trusted.contains(conn.peer.ip()) {
            return Self {
                ip: Cow::Borrowed(&conn.peer_text),
                x_forwarded_for: Cow::Borrowed(&conn.x_forwarded_for),
                forwarded_for: Cow::Borrowed(&conn.forwarded_for),
            };
        }
        let ip = trusted.client_ip(conn.peer.ip(), headers);
        let peer = ClientConn::describe(ip);
        Self {
            ip: Cow::Owned(peer.0),
            x_forwarded_for: Cow::Owned(peer.1),
            forwarded_for: Cow::Owned(peer.2),
        }
    }
}
