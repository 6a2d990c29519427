//! Connections to upstreams, kept open and reused.
//!
//! hyper-util's pooled client was the single largest cost of a proxied
//! request after the kernel's: it spawns a task per request to notice when
//! the connection is free again, and races every checkout against a
//! connect. Measured with `examples/bare_proxy` in the bench's setup, a
//! proxy holding one upstream connection per client connection (hyper's
//! connection-level client) forwarded 15% more requests per second than the
//! same proxy through the pooled client. So:
//!
//! - an HTTP/1 client connection keeps the upstream connection its last
//!   request used (`Affinity`): its requests come one after another, so
//!   that connection is free again by the next one;
//! - otherwise (a second concurrent HTTP/2 stream, another upstream, a new
//!   client) a connection comes from the idle list of the worker thread
//!   that drives it (`Driver`: a connection never serves a client on
//!   another worker), or is opened;
//! - a connection goes back (to the client connection first, else to the
//!   idle list) when its response body has been read to the end and the
//!   request body has been sent whole: only then can it carry another
//!   request. An upstream may answer before reading the request body (a 401
//!   or 413 to an upload), and a response body may be dropped early; either
//!   leaves the connection mid-message, so it is closed instead of waiting
//!   for a next request to find it busy.
//!
//! Connections are filed under their `Endpoint`'s key (scheme, address,
//! trust): an https route's connections, opened over rustls with the
//! route's trust (`tls`), serve only routes that trust alike (`connect`).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, Response};
use hyper::body::{Body as _, Bytes, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use parking_lot::Mutex;

mod connect;
mod in_flight;
pub mod tls;

pub use connect::Endpoint;
use in_flight::{InFlight, Permit};
use tls::TlsFailure;

/// Idle connections older than this are closed rather than reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per endpoint.
const MAX_IDLE: usize = 512;

type Sender = SendRequest<Body>;

/// The thread whose runtime drives a connection's task, when that runtime
/// is a gateway worker's (current-thread: the task never moves); `None` on
/// a multi-thread runtime, whose connections any of its threads may take.
/// A connection is only ever taken from the idle list by its own driver:
/// a client on another worker would cross threads twice per request (its
/// task wakes the connection's, which wakes it back, each through the
/// other runtime's eventfd). Measured under callgrind before this, a
/// proxied request cost 3 eventfd writes and 3 more epoll waits.
type Driver = Option<std::thread::ThreadId>;

fn driver_here() -> Driver {
    let handle = tokio::runtime::Handle::try_current().ok()?;
    (handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
        .then(|| std::thread::current().id())
}

/// Why an upstream request failed.
#[derive(Debug)]
pub enum SendError {
    /// The upstream (its route's `max_connections`) or the gateway
    /// (`upstream_max_requests`) has as many requests in flight as it may.
    Busy,
    /// No connection could be opened.
    Connect(std::io::Error),
    /// The TLS handshake failed: the certificate did not verify, or the
    /// upstream speaks no TLS (or not HTTP/1.1 over it).
    Tls(TlsFailure),
    /// The connection failed during the exchange (our request body's own
    /// errors are in `source()`).
    Exchange(hyper::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Busy => f.write_str("too many upstream requests in flight"),
            SendError::Connect(e) => write!(f, "cannot connect: {e}"),
            SendError::Tls(e) => write!(f, "{e}"),
            SendError::Exchange(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Busy | SendError::Tls(_) => None,
            SendError::Connect(e) => Some(e),
            SendError::Exchange(e) => Some(e),
        }
    }
}

impl SendError {
    pub fn is_connect(&self) -> bool {
        matches!(self, SendError::Connect(_))
    }

    /// Why the TLS handshake failed, when it did.
    pub fn tls_failure(&self) -> Option<&TlsFailure> {
        match self {
            SendError::Tls(e) => Some(e),
            _ => None,
        }
    }
}

struct Idle {
    sender: Sender,
    since: Instant,
}

/// An endpoint's key and the connections' driver.
type IdleKey = (Arc<str>, Driver);

/// A connection and what it is filed under.
struct Pooled {
    key: Arc<str>,
    driver: Driver,
    sender: Sender,
}

/// Idle upstream connections, by their endpoint's key and their driver,
/// and the requests in flight.
#[derive(Default)]
pub struct Upstreams {
    idle: Mutex<HashMap<IdleKey, Vec<Idle>>>,
    in_flight: Arc<InFlight>,
}

/// A connection kept for a client connection, and since when.
struct Held {
    conn: Pooled,
    since: Instant,
}

/// The upstream connection an HTTP/1 client connection's requests reuse.
/// Dropped with the client connection; its upstream connection then joins
/// the idle list for other clients.
pub struct Affinity {
    pool: Arc<Upstreams>,
    held: Mutex<Option<Held>>,
}

impl Affinity {
    pub fn new(pool: Arc<Upstreams>) -> Arc<Self> {
        Arc::new(Self {
            pool,
            held: Mutex::new(None),
        })
    }
}

impl Drop for Affinity {
    fn drop(&mut self) {
        if let Some(held) = self.held.get_mut().take() {
            self.pool.put(held.conn);
        }
    }
}

/// Where a connection goes back when its response has been read.
struct Home {
    pool: Arc<Upstreams>,
    affinity: Option<Arc<Affinity>>,
    conn: Pooled,
    /// Set once the request body has been sent whole; None for a request
    /// without a body.
    sent: Option<Arc<AtomicBool>>,
    /// The exchange's place among the requests in flight.
    _permit: Permit,
}

impl Home {
    fn release(self) {
        let body_sent = self.sent.as_ref().is_none_or(|s| s.load(Ordering::Acquire));
        if self.conn.sender.is_closed() || !body_sent {
            return;
        }
        if let Some(affinity) = &self.affinity {
            let mut held = affinity.held.lock();
            if held.is_none() {
                *held = Some(Held {
                    conn: self.conn,
                    since: Instant::now(),
                });
                return;
            }
        }
        self.pool.put(self.conn);
    }
}

/// A response body that hands its connection back once read to the end.
pub struct Leased {
    body: Incoming,
    home: Option<Home>,
}

impl hyper::body::Body for Leased {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.body).poll_frame(cx));
        let done = match &frame {
            None => true,
            Some(Ok(_)) => this.body.is_end_stream(),
            // A failed connection is not handed back; dropping it closes it.
            Some(Err(_)) => {
                this.home = None;
                false
            }
        };
        if done && let Some(home) = this.home.take() {
            home.release();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Leased {
    /// A body dropped once its last byte arrived (a client that stops
    /// reading at the declared length) still leaves the connection clean.
    fn drop(&mut self) {
        if self.body.is_end_stream()
            && let Some(home) = self.home.take()
        {
            home.release();
        }
    }
}

/// A request body that says when it has been sent whole.
struct Sending {
    body: Body,
    done: Arc<AtomicBool>,
}

impl hyper::body::Body for Sending {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.body).poll_frame(cx));
        let done = match &frame {
            None => true,
            Some(Ok(_)) => this.body.is_end_stream(),
            Some(Err(_)) => false,
        };
        if done {
            this.done.store(true, Ordering::Release);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A connection lent to one exchange.
pub struct Lease(Home);

impl Lease {
    /// The response body, which returns the connection when read through.
    pub fn attach(self, body: Incoming) -> Leased {
        if body.is_end_stream() {
            self.0.release();
            return Leased { body, home: None };
        }
        Leased {
            body,
            home: Some(self.0),
        }
    }
}

impl Upstreams {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Caps the upstream requests in flight at once, over every upstream.
    pub fn limit_requests(&self, max: usize) {
        self.in_flight.limit(max);
    }

    fn put(&self, conn: Pooled) {
        let Pooled {
            key,
            driver,
            sender,
        } = conn;
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock();
        let list = idle.entry((key, driver)).or_default();
        // The oldest are first: drop those past their time.
        let expired = list
            .iter()
            .take_while(|i| i.since.elapsed() > IDLE_TIMEOUT)
            .count();
        list.drain(..expired);
        if list.len() < MAX_IDLE {
            list.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// A reusable connection filed under `key` that this thread drives (or
    /// any, on a multi-thread runtime), newest first.
    fn take(&self, affinity: Option<&Arc<Affinity>>, key: &Arc<str>) -> Option<Pooled> {
        if let Some(affinity) = affinity {
            let held = affinity.held.lock().take();
            match held {
                Some(h) if h.conn.sender.is_closed() || h.since.elapsed() > IDLE_TIMEOUT => {}
                // Taken by this client connection, so on its thread.
                Some(h) if h.conn.key == *key => return Some(h.conn),
                // Another upstream's connection: it serves others better idle.
                Some(h) => self.put(h.conn),
                None => {}
            }
        }
        let driver = driver_here();
        let mut idle = self.idle.lock();
        let list = idle.get_mut(&(key.clone(), driver))?;
        while let Some(i) = list.pop() {
            if !i.sender.is_closed() && i.since.elapsed() <= IDLE_TIMEOUT {
                return Some(Pooled {
                    key: key.clone(),
                    driver,
                    sender: i.sender,
                });
            }
        }
        None
    }

    /// Sends `req` (origin-form URI, `Host` set) to `endpoint`, unless its
    /// address has `max` requests in flight already (or the gateway its
    /// global cap). A reused connection that turns out closed before the
    /// request was written is replaced by a new one, once.
    pub async fn send(
        self: &Arc<Self>,
        affinity: Option<&Arc<Affinity>>,
        endpoint: &Endpoint,
        max: Option<usize>,
        mut req: Request<Body>,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        let permit = self
            .in_flight
            .acquire(&endpoint.address, &endpoint.count, max)
            .ok_or(SendError::Busy)?;
        let sent = (!req.body().is_end_stream()).then(|| Arc::new(AtomicBool::new(false)));
        if let Some(done) = sent.clone() {
            req = req.map(|body| Body::new(Sending { body, done }));
        }
        let mut reused = self.take(affinity, &endpoint.key);
        loop {
            let fresh = reused.is_none();
            let mut conn = match reused.take() {
                Some(conn) => conn,
                // Boxed: a connect (TCP, maybe TLS) is rare next to reuse,
                // and its ~2.5 kB of state would otherwise sit in every
                // request's future, which hyper moves per request. Its
                // task is spawned here, so driven here.
                None => Pooled {
                    key: endpoint.key.clone(),
                    driver: driver_here(),
                    sender: Box::pin(connect::connect(endpoint)).await?,
                },
            };
            if let Err(e) = conn.sender.ready().await {
                if fresh {
                    return Err(SendError::Exchange(e));
                }
                continue;
            }
            match conn.sender.try_send_request(req).await {
                Ok(res) => {
                    let home = Home {
                        pool: self.clone(),
                        affinity: affinity.cloned(),
                        conn,
                        sent,
                        _permit: permit,
                    };
                    return Ok((res, Lease(home)));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if !fresh => req = unsent,
                    _ => return Err(SendError::Exchange(e.into_error())),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests;
