//! Serving one admitted connection: its TLS handshake, HTTP/1 or HTTP/2 on
//! it, and closing it when it idles, stalls or the listener drains.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Request, header};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::DRAIN;
use super::activity::{Activity, Busy, idle};
use super::admission::Slot;
use super::body::{MinRate, Tracked};
use super::guard::{First, Guarded};
use super::peer::Peer;
use super::refuse::too_many_connections;
use super::{Handler, Limits, TlsSource};

/// How long a connection on the reserved margin may wait for its request,
/// and then take to send it.
const RESERVE_WAIT: Duration = Duration::from_secs(2);

/// What every connection of a listener shares.
pub struct Shared {
    pub limits: Arc<Limits>,
    pub builder: auto::Builder<TokioExecutor>,
    pub tls: Option<Arc<dyn TlsSource>>,
    pub reserved_paths: &'static [&'static str],
    pub stop: watch::Receiver<bool>,
}

/// The HTTP/1 and HTTP/2 settings of `limits`.
pub fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .max_pending_accept_reset_streams(limits.http2_max_pending_accept_reset_streams)
        .max_local_error_reset_streams(limits.http2_max_local_error_reset_streams)
        .max_header_list_size(limits.http2_max_header_list_bytes)
        .keep_alive_interval(limits.http2_keep_alive_interval)
        .keep_alive_timeout(limits.http2_keep_alive_timeout);
    builder
}

/// Serves `tcp` from `addr` until it closes, idles out or the listener
/// stops, with the handler `make` gives once the handshake has named the
/// peer. `slot` holds the connection's place in the caps until then.
pub async fn serve<M, H>(
    tcp: TcpStream,
    addr: SocketAddr,
    make: Arc<M>,
    reserve: bool,
    slot: Slot,
    shared: Arc<Shared>,
) where
    M: Fn(Peer) -> H,
    H: Handler,
{
    let _slot = slot;
    match &shared.tls {
        None => {
            let handler = make(Peer::plain(addr));
            drive(tcp, handler, reserve, &shared).await;
        }
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config());
            let handshake = acceptor.accept(tcp);
            let stream =
                match tokio::time::timeout(shared.limits.tls_handshake_timeout, handshake).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        super::peer::handshake_failed(addr, &e, tls.as_ref());
                        return;
                    }
                    Err(_) => return,
                };
            let peer = Peer::after_handshake(addr, stream.get_ref().1, tls.as_ref());
            let handler = make(peer);
            drive(stream, handler, reserve, &shared).await;
        }
    }
}

async fn drive<I, H>(io: I, handler: H, reserve: bool, shared: &Shared)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Handler,
{
    let activity = Activity::new();
    let service = {
        let activity = activity.clone();
        let limits = shared.limits.clone();
        let reserved_paths = shared.reserved_paths;
        service_fn(move |req: Request<hyper::body::Incoming>| {
            let busy = Busy::enter(&activity);
            let req =
                req.map(|b| Body::new(MinRate::new(b, limits.body_min_bytes, limits.body_window)));
            let served = !reserve || reserved_paths.contains(&req.uri().path());
            let answer = served.then(|| handler.call(req));
            async move {
                let mut res = match answer {
                    Some(answer) => answer.await,
                    None => too_many_connections(),
                };
                if reserve {
                    // A margin connection serves one request and makes room.
                    res.headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, Infallible>(res.map(|b| Tracked::new(b, busy)))
            }
        })
    };
    let conn = shared
        .builder
        .serve_connection_with_upgrades(TokioIo::new(io), service);
    let mut stop = shared.stop.clone();
    let limits = &shared.limits;
    let (first_byte, idle_grace) = waits(limits, reserve);
    let watchdog = async {
        tokio::select! {
            () = idle(&activity, first_byte, limits.idle_timeout) => idle_grace,
            _ = stop.wait_for(|stopped| *stopped) => DRAIN,
        }
    };
    let mut guarded = Guarded::new(Box::pin(conn), watchdog);
    let grace = match (&mut guarded).await {
        First::Main(_) => return,
        First::Watchdog(grace) => grace,
    };
    // Lets a request being answered finish; one still being sent (a
    // trickled HTTP/2 header) is cut when the grace ends.
    let mut conn = guarded.into_main();
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(grace, conn).await;
}

/// How long a connection may wait for its first request, and how long a
/// request still arriving when it idles out may take to finish.
fn waits(limits: &Limits, reserve: bool) -> (Duration, Duration) {
    // A margin connection is for a health check, which asks at once: one
    // that waits, or trickles, is making room for nobody.
    if reserve {
        (
            limits.first_byte_timeout.min(RESERVE_WAIT),
            limits.header_read_timeout.min(RESERVE_WAIT),
        )
    } else {
        (limits.first_byte_timeout, limits.header_read_timeout)
    }
}
