//! The connection layer both listeners use: accepting, TLS, HTTP/1 and
//! HTTP/2, and the bounds on every connection (caps, timeouts, HTTP/2
//! limits). It knows nothing of what is served: a listener hands it one
//! handler per connection.
//!
//! - `limits`: the `[limits]` settings; `client_auth`: whether a
//!   handshake asks for a client certificate.
//! - `admission`: the connection caps, global and per client address.
//! - `conn`: one connection, from its TLS handshake to its close.
//! - `peer`: who is on the other end: the address, and the client
//!   certificate chain the handshake took.
//! - `body`: request bodies held to a minimum rate.
//! - `refuse`: the canned 503 over the cap.
//! - `fdlimit`: RLIMIT_NOFILE raised, and the caps fitted under it.
//! - `activity`, `guard`: when a connection is idle, and its watchdog.
//! - `workers`: the runtimes, one per thread, a listener may serve its
//!   connections on.

mod activity;
mod admission;
mod body;
pub mod client_auth;
mod conn;
pub mod fdlimit;
mod guard;
pub mod limits;
mod peer;
mod refuse;
pub mod workers;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use keygate_core::clients::CertSource;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::rustls::pki_types::CertificateDer;

use admission::{Admission, Admit};
pub use body::BodyTooSlow;
pub use client_auth::ClientAuthMode;
pub use limits::{Limits, LimitsFile};
pub use peer::Peer;
use refuse::Refusals;
use workers::Workers;

/// How long in-flight requests may take to finish after a shutdown signal.
pub(crate) const DRAIN: Duration = Duration::from_secs(30);

/// What answers a connection's requests.
pub trait Handler: Send + Sync + 'static {
    type Future: Future<Output = Response<Body>> + Send + 'static;
    fn call(&self, req: Request<Body>) -> Self::Future;
}

impl<F, Fut> Handler for F
where
    F: Fn(Request<Body>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    type Future = Fut;
    fn call(&self, req: Request<Body>) -> Fut {
        self(req)
    }
}

/// A TLS configuration read again for every connection, so a reload
/// applies to the next handshake.
pub trait TlsSource: Send + Sync + 'static {
    fn server_config(&self) -> Arc<tokio_rustls::rustls::ServerConfig>;

    /// What the handshake that took `chain` vouched for: `Tls` when the
    /// verifier checked it against a CA, `TlsUnverified` when it took a
    /// chain no CA vouches for (a self-signed certificate, pinned later).
    /// Asked once per connection that presented a certificate.
    fn certificate_source(&self, _chain: &[CertificateDer<'_>]) -> CertSource {
        CertSource::Tls
    }

    /// Told of each handshake that refused a client certificate, with the
    /// refusal's code (`client_certificate_missing`, ...), for a metric.
    fn refused_client_certificate(&self, _code: &'static str) {}
}

/// A listener's settings.
pub struct Listen {
    /// For logs.
    pub name: &'static str,
    pub limits: Limits,
    pub tls: Option<Arc<dyn TlsSource>>,
    /// Paths a connection on the reserved margin still serves (health).
    pub reserved_paths: &'static [&'static str],
    /// Worker threads to serve connections on (`workers`); 0: the
    /// caller's runtime.
    pub workers: usize,
}

/// Serves `listener` until `shutdown` resolves, with `make(peer)` as the
/// handler of each admitted connection (made once its TLS handshake is
/// done, so it knows the client certificate); then lets in-flight
/// requests finish (up to `DRAIN`).
pub async fn serve<M, H>(
    listener: TcpListener,
    listen: Listen,
    make: M,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    M: Fn(Peer) -> H + Send + Sync + 'static,
    H: Handler,
{
    let make = Arc::new(make);
    let (admission, shared, stop_tx) = prepare(&listen);
    let workers = match listen.workers {
        0 => None,
        n => Some(Workers::start(n, listen.name)?),
    };
    let refusals = Refusals::default();
    let mut report = RefusalReport::default();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors, say: wait rather than spin.
                    tracing::warn!(listener = listen.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (slot, reserve) = match admission.admit(peer.ip()) {
            Admit::Served(slot) => (slot, false),
            Admit::Reserve(slot) => (slot, true),
            Admit::Refused => {
                refusals.refuse(tcp, shared.tls.is_some());
                report.refused(listen.name, admission.open());
                continue;
            }
        };
        // Answers go out at once rather than waiting for an ACK (Nagle).
        let _ = tcp.set_nodelay(true);
        let make = make.clone();
        let each = shared.clone();
        let serve = move |tcp| conn::serve(tcp, peer, make, reserve, slot, each);
        match &workers {
            None => drop(tokio::spawn(serve(tcp))),
            Some(workers) => hand_off(workers, tcp, serve),
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    admission.drained(DRAIN).await;
    // Only now: the workers' connections have closed, or the drain is over.
    drop(workers);
    Ok(())
}

/// The listener's caps, what its connections share, and the switch that
/// tells them to drain.
fn prepare(listen: &Listen) -> (Arc<Admission>, Arc<conn::Shared>, watch::Sender<bool>) {
    let limits = Arc::new(listen.limits.clone());
    let admission = Admission::new(
        limits.max_connections,
        limits.reserved_connections,
        limits.max_connections_per_address,
    );
    let (stop_tx, stop) = watch::channel(false);
    let shared = Arc::new(conn::Shared {
        builder: conn::builder(&limits),
        limits,
        tls: listen.tls.clone(),
        reserved_paths: listen.reserved_paths,
        stop,
    });
    (admission, shared, stop_tx)
}

/// Moves `tcp` to the next worker and serves it there: the socket leaves
/// this runtime's I/O driver and joins the worker's.
fn hand_off<S, F>(workers: &Workers, tcp: TcpStream, serve: S)
where
    S: FnOnce(TcpStream) -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let tcp = match tcp.into_std() {
        Ok(tcp) => tcp,
        Err(e) => {
            tracing::debug!(error = %e, "a connection could not be handed to a worker");
            return;
        }
    };
    workers.spawn(async move {
        // Still non-blocking: `into_std` leaves the mode as tokio set it.
        match TcpStream::from_std(tcp) {
            Ok(tcp) => serve(tcp).await,
            Err(e) => tracing::debug!(error = %e, "a worker could not take a connection"),
        }
    });
}

/// Says that connections are being refused, at most once per `EVERY`, so
/// an operator learns the caps are reached without a flood writing the log.
#[derive(Default)]
struct RefusalReport {
    since: u64,
    last: Option<tokio::time::Instant>,
}

impl RefusalReport {
    const EVERY: Duration = Duration::from_secs(10);

    fn refused(&mut self, listener: &str, open: usize) {
        self.since += 1;
        if self.last.is_some_and(|t| t.elapsed() < Self::EVERY) {
            return;
        }
        tracing::warn!(
            listener,
            refused = self.since,
            open,
            "connections refused: the listener is at its connection caps ([limits])"
        );
        self.since = 0;
        self.last = Some(tokio::time::Instant::now());
    }
}
