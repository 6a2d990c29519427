//! The gateway's listener: its own accept loop on hyper, not axum's.
//!
//! Every path on this listener belongs to the route table, so axum's router
//! has nothing to route; serving hyper connections directly drops its
//! per-request service clones and boxing, and gives each client connection
//! a place for the upstream connection its requests reuse (`Affinity`).

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use super::GatewayState;
use super::upstream::Affinity;
use crate::tls::DRAIN;

/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A timer turns on hyper's 30 s limit for reading a request's headers.
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let gs = Arc::new(gs);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "gateway accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers go out at once rather than waiting for an ACK (Nagle).
        let _ = tcp.set_nodelay(true);
        let affinity = Affinity::new(gs.gateway.upstreams.clone());
        let conn = Arc::new(ClientConn::new(peer, affinity));
        let state = gs.clone();
        let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let state = state.clone();
            let conn = conn.clone();
            async move {
                let res = super::proxy::handle(&state, &conn, req.map(Body::new)).await;
                Ok::<_, Infallible>(res)
            }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        match &tls {
            None => {
                let served = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
                tokio::spawn(watcher.watch(served.into_owned()));
            }
            Some(tls) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config());
                tokio::spawn(async move {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    let served =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    let _ = watcher.watch(served.into_owned()).await;
                });
            }
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => {}
    }
    Ok(())
}
