//! The gateway's listener: the connection layer (`listen`) with the proxy
//! as its handler, not axum's router.
//!
//! Every path on this listener belongs to the route table, so axum's router
//! has nothing to route; calling the proxy directly drops its per-request
//! service clones and boxing, and gives each client connection a place for
//! the upstream connection its requests reuse (`Affinity`).

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use tokio::net::TcpListener;

use super::Gateway;
use super::conn::ClientConn;
use super::proxy::Proxy;
use super::upstream::Affinity;
use keygate_http::listen::{Limits, Listen, Peer, TlsSource, workers};

/// Serves the gateway on `listener` until `shutdown` resolves, then lets
/// in-flight requests finish (up to `DRAIN`).
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    tls: Option<Arc<dyn TlsSource>>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The listener's own scheme: how clients reached keygate, what a
    // signature covers and what `X-Forwarded-Proto` says upstream.
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listen = Listen {
        name: "gateway",
        limits,
        tls,
        // Every path is a route's: none is served on the margin.
        reserved_paths: &[],
        // A connection and the upstream connection its requests reuse
        // (`Affinity`) stay on one worker thread.
        workers: workers::count(gateway.workers()),
    };
    let proxy = Arc::new(Proxy { gateway, scheme });
    let make = move |peer: Peer| {
        let affinity = Affinity::new(proxy.gateway.upstreams.clone());
        let conn =
            Arc::new(ClientConn::new(peer.addr, affinity).with_certificate(peer.certificate));
        let proxy = proxy.clone();
        move |req: Request<Body>| {
            let proxy = proxy.clone();
            let conn = conn.clone();
            // The request's state (its phases' futures, a few kB) goes to
            // the heap once, when it starts: hyper moves the future it is
            // handed several times per request, and this one is small.
            async move { Box::pin(proxy.handle(&conn, req)).await }
        }
    };
    keygate_http::listen::serve(listener, listen, make, shutdown).await
}
