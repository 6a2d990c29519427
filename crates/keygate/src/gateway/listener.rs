//! The gateway's listener: the connection layer (`listen`) with the proxy
//! as its handler, not axum's router.
//!
//! Every path on this listener belongs to the route table, so axum's router
//! has nothing to route; calling the proxy directly drops its per-request
//! service clones and boxing, and gives each client connection a place for
//! the upstream connection its requests reuse (`Affinity`).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, Request};
use tokio::net::TcpListener;

use super::GatewayState;
use super::upstream::Affinity;
use crate::listen::{Limits, Listen, TlsSource};

/// One client connection, as each of its requests sees it.
pub struct ClientConn {
    pub peer: SocketAddr,
    /// The peer's address as text, for per-address limits.
    pub peer_text: String,
    /// `X-Forwarded-For` and the `for=` of `Forwarded` (RFC 7239), made
    /// once per connection rather than per request.
    pub x_forwarded_for: HeaderValue,
    pub forwarded_for: String,
    pub affinity: Arc<Affinity>,
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
        }
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

/// Serves the gateway on `listener` until `shutdown` resolves, then lets
/// in-flight requests finish (up to `DRAIN`).
pub async fn serve(
    listener: TcpListener,
    gs: GatewayState,
    tls: Option<crate::tls::Tls>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listen = Listen {
        name: "gateway",
        limits,
        tls: tls.map(|t| Arc::new(t) as Arc<dyn TlsSource>),
        // Every path is a route's: none is served on the margin.
        reserved_paths: &[],
    };
    let gs = Arc::new(gs);
    let make = move |peer: SocketAddr| {
        let affinity = Affinity::new(gs.gateway.upstreams.clone());
        let conn = Arc::new(ClientConn::new(peer, affinity));
        let state = gs.clone();
        move |req: Request<Body>| {
            let state = state.clone();
            let conn = conn.clone();
            async move { super::proxy::handle(&state, &conn, req).await }
        }
    };
    crate::listen::serve(listener, listen, make, shutdown).await
}
