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
//!   client) a connection comes from a shared idle list, or is opened;
//! - a connection goes back (to the client connection first, else to the
//!   idle list) when its response body has been read to the end and the
//!   request body has been sent whole: only then can it carry another
//!   request. An upstream may answer before reading the request body (a 401
//!   or 413 to an upload), and a response body may be dropped early; either
//!   leaves the connection mid-message, so it is closed instead of waiting
//!   for a next request to find it busy.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, Response};
use hyper::body::{Body as _, Bytes, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections older than this are closed rather than reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per upstream address.
const MAX_IDLE: usize = 512;

type Sender = SendRequest<Body>;

/// Why an upstream request failed.
#[derive(Debug)]
pub enum SendError {
    /// The upstream (its route's `max_connections`) or the gateway
    /// (`upstream_max_requests`) has as many requests in flight as it may.
    Busy,
    /// No connection could be opened.
    Connect(std::io::Error),
    /// The connection failed during the exchange (our request body's own
    /// errors are in `source()`).
    Exchange(hyper::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Busy => f.write_str("too many upstream requests in flight"),
            SendError::Connect(e) => write!(f, "cannot connect: {e}"),
            SendError::Exchange(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Busy => None,
            SendError::Connect(e) => Some(e),
            SendError::Exchange(e) => Some(e),
        }
    }
}

impl SendError {
    pub fn is_connect(&self) -> bool {
        matches!(self, SendError::Connect(_))
    }
}

struct Idle {
    sender: Sender,
    since: Instant,
}

/// Idle upstream connections, by `host:port`, and the requests in flight.
#[derive(Default)]
pub struct Upstreams {
    idle: Mutex<HashMap<Arc<str>, Vec<Idle>>>,
    in_flight: Arc<InFlight>,
}

/// Upstream requests in flight, in total and per upstream address: each
/// holds a descriptor, and one HTTP/2 client connection can start many.
struct InFlight {
    max: AtomicUsize,
    counts: Mutex<(usize, HashMap<Arc<str>, usize>)>,
}

impl Default for InFlight {
    fn default() -> Self {
        Self {
            max: AtomicUsize::new(usize::MAX),
            counts: Mutex::default(),
        }
    }
}

/// One request's place in `InFlight`, held until its exchange ends.
struct Permit {
    in_flight: Arc<InFlight>,
    address: Arc<str>,
}

impl InFlight {
    fn acquire(self: &Arc<Self>, address: &Arc<str>, per_address: Option<usize>) -> Option<Permit> {
        let max = self.max.load(Ordering::Relaxed);
        let mut counts = self.counts.lock();
        let (total, by_address) = &mut *counts;
        let here = by_address.get(address).copied().unwrap_or(0);
        if *total >= max || per_address.is_some_and(|cap| here >= cap) {
            return None;
        }
        *total += 1;
        by_address.insert(address.clone(), here + 1);
        Some(Permit {
            in_flight: self.clone(),
            address: address.clone(),
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.in_flight.counts.lock();
        let (total, by_address) = &mut *counts;
        *total = total.saturating_sub(1);
        if let Some(n) = by_address.get_mut(&self.address) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                by_address.remove(&self.address);
            }
        }
    }
}

/// A connection kept for a client connection: its upstream, and since when.
struct Held {
    address: Arc<str>,
    sender: Sender,
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
            self.pool.put(held.address, held.sender);
        }
    }
}

/// Where a connection goes back when its response has been read.
struct Home {
    pool: Arc<Upstreams>,
    affinity: Option<Arc<Affinity>>,
    address: Arc<str>,
    sender: Sender,
    /// Set once the request body has been sent whole; None for a request
    /// without a body.
    sent: Option<Arc<AtomicBool>>,
    /// The exchange's place among the requests in flight.
    _permit: Permit,
}

impl Home {
    fn release(self) {
        let body_sent = self.sent.as_ref().is_none_or(|s| s.load(Ordering::Acquire));
        if self.sender.is_closed() || !body_sent {
            return;
        }
        let sender = match &self.affinity {
            Some(affinity) => {
                let mut held = affinity.held.lock();
                if held.is_none() {
                    *held = Some(Held {
                        address: self.address,
                        sender: self.sender,
                        since: Instant::now(),
                    });
                    return;
                }
                self.sender
            }
            None => self.sender,
        };
        self.pool.put(self.address, sender);
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
        self.in_flight.max.store(max, Ordering::Relaxed);
    }

    fn put(&self, address: Arc<str>, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock();
        let list = idle.entry(address).or_default();
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

    /// A reusable connection to `address`, newest first.
    fn take(&self, affinity: Option<&Arc<Affinity>>, address: &Arc<str>) -> Option<Sender> {
        if let Some(affinity) = affinity {
            let held = affinity.held.lock().take();
            match held {
                Some(h) if h.sender.is_closed() || h.since.elapsed() > IDLE_TIMEOUT => {}
                Some(h) if h.address == *address => return Some(h.sender),
                // Another upstream's connection: it serves others better idle.
                Some(h) => self.put(h.address, h.sender),
                None => {}
            }
        }
        let mut idle = self.idle.lock();
        let list = idle.get_mut(address)?;
        while let Some(i) = list.pop() {
            if !i.sender.is_closed() && i.since.elapsed() <= IDLE_TIMEOUT {
                return Some(i.sender);
            }
        }
        None
    }

    /// Sends `req` (origin-form URI, `Host` set) to `address`, unless
    /// `address` has `max` requests in flight already (or the gateway its
    /// global cap). A reused connection that turns out closed before the
    /// request was written is replaced by a new one, once.
    pub async fn send(
        self: &Arc<Self>,
        affinity: Option<&Arc<Affinity>>,
        address: &Arc<str>,
        max: Option<usize>,
        mut req: Request<Body>,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        let permit = self
            .in_flight
            .acquire(address, max)
            .ok_or(SendError::Busy)?;
        let sent = (!req.body().is_end_stream()).then(|| Arc::new(AtomicBool::new(false)));
        if let Some(done) = sent.clone() {
            req = req.map(|body| Body::new(Sending { body, done }));
        }
        let mut reused = self.take(affinity, address);
        loop {
            let fresh = reused.is_none();
            let mut sender = match reused.take() {
                Some(s) => s,
                None => connect(address).await?,
            };
            if let Err(e) = sender.ready().await {
                if fresh {
                    return Err(SendError::Exchange(e));
                }
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(res) => {
                    let home = Home {
                        pool: self.clone(),
                        affinity: affinity.cloned(),
                        address: address.clone(),
                        sender,
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

async fn connect(address: &str) -> Result<Sender, SendError> {
    let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out");
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(address))
        .await
        .map_err(|_| SendError::Connect(timed_out()))?
        .map_err(SendError::Connect)?;
    let _ = tcp.set_nodelay(true);
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(tcp))
        .await
        .map_err(SendError::Exchange)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "upstream connection ended");
        }
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An upstream that counts the connections it accepts and answers every
    /// request on them with `ok`.
    async fn upstream() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut tcp, _) = listener.accept().await.unwrap();
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut seen = Vec::new();
                    loop {
                        let Ok(n) = tcp.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            seen.drain(..end + 4);
                            let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            if tcp.write_all(reply).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    fn get(addr: &str) -> Request<Body> {
        Request::builder()
            .uri("/x")
            .header("host", addr)
            .body(Body::empty())
            .unwrap()
    }

    async fn read_through(res: Response<Incoming>, lease: Lease) -> Bytes {
        use http_body_util::BodyExt;
        lease
            .attach(res.into_body())
            .collect()
            .await
            .unwrap()
            .to_bytes()
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_body_is_read() {
        let (addr, accepted) = upstream().await;
        let address: Arc<str> = Arc::from(addr.as_str());
        let pool = Upstreams::new();
        let affinity = Affinity::new(pool.clone());
        for _ in 0..5 {
            let (res, lease) = pool
                .send(Some(&affinity), &address, None, get(&addr))
                .await
                .unwrap();
            assert_eq!(read_through(res, lease).await, "ok");
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Without affinity the idle list serves, once the affinity is gone.
        drop(affinity);
        for _ in 0..3 {
            let (res, lease) = pool.send(None, &address, None, get(&addr)).await.unwrap();
            assert_eq!(read_through(res, lease).await, "ok");
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn switching_upstreams_keeps_both_connections() {
        let (a, accepted_a) = upstream().await;
        let (b, accepted_b) = upstream().await;
        let (addr_a, addr_b): (Arc<str>, Arc<str>) = (Arc::from(a.as_str()), Arc::from(b.as_str()));
        let pool = Upstreams::new();
        let affinity = Affinity::new(pool.clone());
        for (address, host) in [(&addr_a, &a), (&addr_b, &b), (&addr_a, &a), (&addr_b, &b)] {
            let (res, lease) = pool
                .send(Some(&affinity), address, None, get(host))
                .await
                .unwrap();
            assert_eq!(read_through(res, lease).await, "ok");
        }
        // The connection the client connection held for one upstream went to
        // the idle list when it turned to the other, and was taken back.
        assert_eq!(accepted_a.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(accepted_b.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_answered_before_its_request_body_was_sent_is_not_reused() {
        let (addr, accepted) = upstream().await;
        let address: Arc<str> = Arc::from(addr.as_str());
        let pool = Upstreams::new();
        let affinity = Affinity::new(pool.clone());
        // The test upstream answers as soon as it has the headers, as one
        // refusing an upload would; the request body is still open.
        let (mut tx, body) =
            http_body_util::channel::Channel::<Bytes, std::convert::Infallible>::new(1);
        let _ = tx.send_data(Bytes::from_static(b"part")).await;
        let upload = Request::builder()
            .method("POST")
            .uri("/upload")
            .header("host", &addr)
            .body(Body::new(body))
            .unwrap();
        let (res, lease) = pool
            .send(Some(&affinity), &address, None, upload)
            .await
            .unwrap();
        assert_eq!(read_through(res, lease).await, "ok");
        // Reusing that connection would wait for the upload to finish.
        let next = pool.send(Some(&affinity), &address, None, get(&addr));
        let (res, lease) = tokio::time::timeout(Duration::from_secs(5), next)
            .await
            .expect("a connection still sending a body was handed out")
            .unwrap();
        assert_eq!(read_through(res, lease).await, "ok");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
        drop(tx);
    }

    #[tokio::test]
    async fn a_body_dropped_early_closes_its_connection() {
        let (addr, accepted) = upstream().await;
        let address: Arc<str> = Arc::from(addr.as_str());
        let pool = Upstreams::new();
        let (res, lease) = pool.send(None, &address, None, get(&addr)).await.unwrap();
        // Read nothing: the connection is mid-message and must not be reused.
        drop(lease.attach(res.into_body()));
        let (res, lease) = pool.send(None, &address, None, get(&addr)).await.unwrap();
        assert_eq!(read_through(res, lease).await, "ok");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn concurrent_exchanges_get_their_own_connections() {
        let (addr, accepted) = upstream().await;
        let address: Arc<str> = Arc::from(addr.as_str());
        let pool = Upstreams::new();
        let (res1, lease1) = pool.send(None, &address, None, get(&addr)).await.unwrap();
        let (res2, lease2) = pool.send(None, &address, None, get(&addr)).await.unwrap();
        assert_eq!(read_through(res1, lease1).await, "ok");
        assert_eq!(read_through(res2, lease2).await, "ok");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn exchanges_beyond_the_caps_are_busy_until_one_ends() {
        let (a, _) = upstream().await;
        let (b, _) = upstream().await;
        let (addr_a, addr_b): (Arc<str>, Arc<str>) = (Arc::from(a.as_str()), Arc::from(b.as_str()));
        let pool = Upstreams::new();
        // One in flight per upstream: a second to it is refused, another
        // upstream is not.
        let (res, lease) = pool.send(None, &addr_a, Some(1), get(&a)).await.unwrap();
        let second = pool.send(None, &addr_a, Some(1), get(&a)).await;
        assert!(matches!(second, Err(SendError::Busy)));
        let (res_b, lease_b) = pool.send(None, &addr_b, Some(1), get(&b)).await.unwrap();
        assert_eq!(read_through(res, lease).await, "ok");
        let (res, lease) = pool.send(None, &addr_a, Some(1), get(&a)).await.unwrap();
        // Two in flight over all upstreams: a third is refused anywhere.
        pool.limit_requests(2);
        let third = pool.send(None, &addr_a, None, get(&a)).await;
        assert!(matches!(third, Err(SendError::Busy)));
        assert_eq!(read_through(res_b, lease_b).await, "ok");
        assert_eq!(read_through(res, lease).await, "ok");
        let (res, lease) = pool.send(None, &addr_a, None, get(&a)).await.unwrap();
        assert_eq!(read_through(res, lease).await, "ok");
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let address: Arc<str> = Arc::from(addr.as_str());
        match Upstreams::new()
            .send(None, &address, None, get(&addr))
            .await
        {
            Err(e) => assert!(e.is_connect(), "{e}"),
            Ok(_) => unreachable!("nothing listens at {addr}"),
        }
    }
}
