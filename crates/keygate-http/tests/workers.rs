//! The connection layer on worker runtimes: connections are spread over
//! the workers, the caps count every worker's connections together, and
//! the drain lets a request in flight on a worker finish.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use keygate_http::listen::{Limits, Listen, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// Every wait here ends by then, pass or fail: a hang is a failure.
const BOUND: Duration = Duration::from_secs(60);

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: JoinHandle<std::io::Result<()>>,
    /// Lets a `/hold` request answer.
    release: Arc<Notify>,
    /// Told when a `/hold` request has arrived.
    held: Arc<Notify>,
}

/// Answers each request with the name of the thread that answered it;
/// `/hold` first waits for `release`.
async fn start(limits: Limits, workers: usize) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (release, held) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (r, h) = (release.clone(), held.clone());
    let make = move |_peer: keygate_http::listen::Peer| {
        let (release, held) = (r.clone(), h.clone());
        move |req: Request<Body>| {
            let (release, held) = (release.clone(), held.clone());
            async move {
                if req.uri().path() == "/hold" {
                    held.notify_one();
                    release.notified().await;
                }
                let name = std::thread::current().name().unwrap_or("").to_owned();
                Response::new(Body::from(name))
            }
        }
    };
    let listen = Listen {
        name: "worker-test",
        limits,
        tls: None,
        reserved_paths: &[],
        workers,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let done = tokio::spawn(serve(listener, listen, make, shutdown));
    Server {
        addr,
        stop: Some(stop),
        done,
        release,
        held,
    }
}

const GET: &str = "GET / HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n";

/// Sends `request` on `tcp` and reads the answer to its end.
async fn exchange_on(mut tcp: TcpStream, request: &str) -> String {
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(BOUND, tcp.read_to_end(&mut out))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

async fn exchange(addr: SocketAddr, request: &str) -> String {
    exchange_on(TcpStream::connect(addr).await.unwrap(), request).await
}

fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_served_across_the_workers() {
    let server = start(Limits::default(), 4).await;
    // Opened all at once, so they are open together across the workers.
    let connections: Vec<_> = (0..16)
        .map(|_| tokio::spawn(exchange(server.addr, GET)))
        .collect();
    let mut threads = HashSet::new();
    for c in connections {
        let answer = c.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        threads.insert(body(&answer).to_owned());
    }
    let expected: HashSet<String> = (0..4).map(|i| format!("worker-test-{i}")).collect();
    assert_eq!(threads, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caps_count_every_workers_connections() {
    let limits = Limits {
        max_connections: 2,
        reserved_connections: 0,
        max_connections_per_address: 0,
        first_byte_timeout: BOUND,
        ..Limits::default()
    };
    let server = start(limits, 2).await;
    // One silent connection on each worker takes the cap.
    let first = TcpStream::connect(server.addr).await.unwrap();
    let _second = TcpStream::connect(server.addr).await.unwrap();
    let refused = exchange(server.addr, GET).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("too_many_connections"), "{refused}");
    // A place freed on a worker is free for the next connection.
    drop(first);
    let served = async {
        loop {
            let answer = exchange(server.addr, GET).await;
            if answer.starts_with("HTTP/1.1 200") {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let answer = tokio::time::timeout(BOUND, served).await.expect("served");
    assert!(body(&answer).starts_with("worker-test-"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_lets_a_request_on_a_worker_finish() {
    let mut server = start(Limits::default(), 2).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let held = server.held.notified();
    let answer = tokio::spawn(exchange_on(
        tcp,
        "GET /hold HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
    ));
    tokio::time::timeout(BOUND, held).await.expect("held");
    // Shutdown while the request is in flight: it is answered, not cut.
    server.stop.take().unwrap().send(()).unwrap();
    // New connections are no longer served once the listener is closed.
    let refused = async {
        loop {
            match TcpStream::connect(server.addr).await {
                Err(_) => return,
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    };
    tokio::time::timeout(BOUND, refused).await.expect("closed");
    assert!(!server.done.is_finished(), "returned before the drain");
    server.release.notify_one();
    let answer = tokio::time::timeout(BOUND, answer).await.unwrap().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(body(&answer).starts_with("worker-test-"), "{answer}");
    let served = tokio::time::timeout(BOUND, server.done).await.unwrap();
    served.unwrap().unwrap();
}
