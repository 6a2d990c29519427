//! Bounded connections on both listeners: silent, slow-header and slow-body
//! clients are cut on time while `/healthz` keeps answering; a full
//! connection cap still serves `/healthz` on the reserved margin and then
//! refuses clearly; one HTTP/2 connection gets no more streams than the cap
//! and no larger header list; a route's `max_connections` answers 503
//! beyond it; an idle TLS connection is closed after its handshake.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestApp, spawn_app_with_toml};

crate::on_both_backends!(
    spawn = super::spawn_timeouts;
    silent_and_slow_connections_are_closed_while_healthz_answers,
);

mod cap {
    crate::on_both_backends!(
        spawn = super::spawn_capped;
        a_full_listener_serves_healthz_on_its_margin_then_refuses_clearly,
    );
    use super::*;
}

mod per_address {
    crate::on_both_backends!(
        spawn = super::spawn_per_address;
        one_address_cannot_hold_more_than_its_share,
    );
    use super::*;
}

mod fan_out {
    crate::on_both_backends!(
        spawn = super::spawn_fan_out;
        one_http2_connection_gets_no_more_streams_than_the_cap,
        a_busy_upstream_answers_503_beyond_its_max_connections,
    );
    use super::*;
}

/// Every wait in this file ends by then, pass or fail.
const BOUND: Duration = Duration::from_secs(15);

/// An upstream that holds each request for a while and records how many
/// it held at once.
struct Held {
    addr: SocketAddr,
    now: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

async fn held_upstream(hold: Duration) -> Held {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (n, m) = (now.clone(), most.clone());
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (n, m) = (n.clone(), m.clone());
        async move {
            let body = req.into_body().collect().await.map(|b| b.to_bytes().len());
            let held = n.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(held, Ordering::SeqCst);
            tokio::time::sleep(hold).await;
            n.fetch_sub(1, Ordering::SeqCst);
            match body {
                Ok(len) => format!("ok {len}"),
                Err(_) => "cut".to_owned(),
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Held { addr, now, most }
}

pub struct Limited {
    app: TestApp,
    gateway: SocketAddr,
    upstream: Held,
}

impl Limited {
    fn listeners(&self) -> [(&'static str, SocketAddr); 2] {
        [("admin", self.app.addr), ("gateway", self.gateway)]
    }
}

async fn spawn_limited(backend: Backend, limits: &str, hold: Duration) -> Option<Limited> {
    let upstream = held_upstream(hold).await;
    let u = upstream.addr;
    let toml = format!(
        "[limits]\n{limits}\n[gateway]\nlisten = \"127.0.0.1:0\"\n\
         [[gateway.routes]]\nname = \"busy\"\nmatch = {{ path_prefix = \"/busy\" }}\n\
         upstream = \"http://{u}\"\nauth = \"none\"\nmax_connections = 1\n\
         [[gateway.routes]]\nname = \"open\"\nmatch = {{ path_prefix = \"/\" }}\n\
         upstream = \"http://{u}\"\nauth = \"none\"\n"
    );
    let app = spawn_app_with_toml(backend, Some(&toml), |_| {}).await?;
    let gateway = app.gateway_addr.unwrap();
    Some(Limited {
        app,
        gateway,
        upstream,
    })
}

async fn spawn_timeouts(backend: Backend) -> Option<Limited> {
    let limits = "first_byte_timeout_seconds = 1\nheader_read_timeout_seconds = 2\n\
                  idle_timeout_seconds = 2\nbody_window_seconds = 1\nbody_min_bytes = 100\n\
                  tls_handshake_timeout_seconds = 1\n";
    spawn_limited(backend, limits, Duration::from_millis(10)).await
}

async fn spawn_capped(backend: Backend) -> Option<Limited> {
    let limits = "max_connections = 3\nreserved_connections = 1\n\
                  max_connections_per_address = 0\nfirst_byte_timeout_seconds = 60\n\
                  header_read_timeout_seconds = 60\nidle_timeout_seconds = 60\n";
    spawn_limited(backend, limits, Duration::from_millis(10)).await
}

async fn spawn_per_address(backend: Backend) -> Option<Limited> {
    let limits = "max_connections = 100\nmax_connections_per_address = 2\n\
                  first_byte_timeout_seconds = 60\nidle_timeout_seconds = 60\n";
    spawn_limited(backend, limits, Duration::from_millis(10)).await
}

async fn spawn_fan_out(backend: Backend) -> Option<Limited> {
    let limits = "http2_max_concurrent_streams = 2\nhttp2_max_header_list_bytes = 4096\n";
    spawn_limited(backend, limits, Duration::from_millis(800)).await
}

/// Whether the server closes `tcp` (EOF or reset) before `BOUND`, reading
/// and discarding whatever it says first.
async fn closed_by_server(tcp: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let wait = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(BOUND, wait).await.is_ok()
}

/// Sends `request` on a new connection and reads the answer to its end.
async fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let _ = tcp.write_all(request.as_bytes()).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(BOUND, tcp.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
}

async fn healthz_ok(app: &TestApp) {
    let res = app.http.get(format!("{}/healthz", app.base)).send().await;
    assert_eq!(res.unwrap().status(), StatusCode::OK);
}

async fn silent_and_slow_connections_are_closed_while_healthz_answers(l: Limited) {
    for (name, addr) in l.listeners() {
        // Silent: connects and never sends a byte.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        // Slow header: one header line every 300 ms, forever.
        let slow_header = async {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n")
                .await
                .unwrap();
            let trickle = async {
                for i in 0u32.. {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let line = format!("x-{i}: y\r\n");
                    if tcp.write_all(line.as_bytes()).await.is_err() {
                        return;
                    }
                }
            };
            tokio::time::timeout(BOUND, trickle).await.is_ok()
        };
        // Slow body: 10 of 1000 declared bytes, then nothing.
        let slow_body = async {
            let path = if name == "admin" {
                "/v1/auth/login"
            } else {
                "/read"
            };
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "POST {path} HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n\
                 content-length: 1000\r\n\r\n{{\"usernam"
            );
            tcp.write_all(head.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            let read = tokio::time::timeout(BOUND, tcp.read_to_end(&mut answer)).await;
            (read.is_ok(), String::from_utf8_lossy(&answer).into_owned())
        };
        let (silent_closed, header_cut, body_cut, ()) = tokio::join!(
            closed_by_server(&mut silent),
            slow_header,
            slow_body,
            healthz_ok(&l.app),
        );
        assert!(silent_closed, "{name}: a silent connection stayed open");
        assert!(header_cut, "{name}: a trickled header was never cut");
        let (body_cut, answer) = body_cut;
        assert!(body_cut, "{name}: a stalled body was never cut");
        // The gateway says why; axum's body extractor answers 400.
        let status = if name == "admin" {
            "HTTP/1.1 400"
        } else {
            "HTTP/1.1 408"
        };
        assert!(answer.starts_with(status), "{name}: {answer}");
    }
    healthz_ok(&l.app).await;
}

/// Opens `n` connections that send nothing, and keeps them.
async fn silent(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    held
}

/// A silent connection the server keeps (not refused), once the places
/// of connections just closed are free again.
async fn hold_one(addr: SocketAddr) -> TcpStream {
    let holding = async {
        loop {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            let mut buf = [0u8; 1];
            let kept = tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut buf));
            if kept.await.is_err() {
                return tcp;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(BOUND, holding).await.unwrap()
}

/// Asks until the answer contains `wanted`, or gives up at `BOUND`.
async fn until_answer(addr: SocketAddr, request: &str, wanted: &str) -> String {
    let asking = async {
        loop {
            let answer = exchange(addr, request).await;
            if answer.contains(wanted) {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(BOUND, asking)
        .await
        .unwrap_or_else(|_| panic!("never answered {wanted:?} to {request:?}"))
}

async fn a_full_listener_serves_healthz_on_its_margin_then_refuses_clearly(l: Limited) {
    // The admin listener: the cap is taken by three silent connections; a
    // fourth lands on the margin, which serves /healthz and nothing else.
    let addr = l.app.addr;
    let _taken = silent(addr, 3).await;
    until_answer(addr, &get("/v1/keys"), "503 Service Unavailable").await;
    // (Asked again until the margin connection before it has closed.)
    let health = until_answer(addr, &get("/healthz"), "HTTP/1.1 200").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    // The margin taken too: a clear refusal, not a hang. (A silent
    // connection keeps the margin for 2 s only: take it again each time.)
    let refusing = async {
        loop {
            let _margin = hold_one(addr).await;
            let answer = exchange(addr, &get("/healthz")).await;
            if answer.contains("too_many_connections") {
                return answer;
            }
        }
    };
    let refused = tokio::time::timeout(BOUND, refusing).await.unwrap();
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");

    // The gateway has no reserved path: once full it refuses.
    let gw = l.gateway;
    let _taken = silent(gw, 4).await;
    let refused = until_answer(gw, &get("/x"), "503 Service Unavailable").await;
    assert!(refused.contains("too_many_connections"), "{refused}");
    // The admin listener counts its own connections apart from the gateway's.
    drop(_taken);
}

async fn one_address_cannot_hold_more_than_its_share(l: Limited) {
    for (name, addr) in l.listeners() {
        let held = silent(addr, 2).await;
        let refused = until_answer(addr, &get("/healthz"), "too_many_connections").await;
        assert!(refused.starts_with("HTTP/1.1 503"), "{name}: {refused}");
        drop(held);
        // Once they close, the address is served again.
        let ok = until_answer(addr, &get("/healthz"), "HTTP/1.1 200").await;
        assert!(!ok.contains("too_many_connections"), "{name}: {ok}");
    }
}

async fn one_http2_connection_gets_no_more_streams_than_the_cap(l: Limited) {
    let tcp = TcpStream::connect(l.gateway).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    // One request first, so the client has the server's SETTINGS: streams
    // opened before them, past the cap, are refused (REFUSED_STREAM).
    let mut first = sender.clone();
    let req = hyper::Request::builder()
        .uri("http://t/first")
        .body(Body::empty())
        .unwrap();
    let res = tokio::time::timeout(BOUND, first.send_request(req)).await;
    assert_eq!(res.unwrap().unwrap().status(), StatusCode::OK);
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let mut sender = sender.clone();
            tokio::spawn(async move {
                let req = hyper::Request::builder()
                    .uri(format!("http://t/s{i}"))
                    .body(Body::empty())
                    .unwrap();
                sender.send_request(req).await.unwrap().status()
            })
        })
        .collect();
    let all = async {
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        statuses
    };
    let statuses = tokio::time::timeout(BOUND, all).await.unwrap();
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let most = l.upstream.most.load(Ordering::SeqCst);
    assert!(
        most <= 2,
        "{most} upstream requests at once from one connection"
    );
    assert_eq!(l.upstream.now.load(Ordering::SeqCst), 0);

    // A header list past the configured size never reaches the upstream
    // (the client is told the size in SETTINGS and refuses, or the server
    // answers 431).
    let mut big = sender.clone();
    let req = hyper::Request::builder()
        .uri("http://t/big")
        .header("x-big", "a".repeat(8 * 1024))
        .body(Body::empty())
        .unwrap();
    let res = tokio::time::timeout(BOUND, big.send_request(req))
        .await
        .unwrap();
    if let Ok(res) = res {
        assert_eq!(res.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }
}

async fn a_busy_upstream_answers_503_beyond_its_max_connections(l: Limited) {
    let url = format!("http://{}/busy", l.gateway);
    let first = l.app.http.get(&url).send();
    let second = async {
        // The first is at the upstream by then (it is held 800 ms).
        tokio::time::sleep(Duration::from_millis(200)).await;
        l.app.http.get(&url).send().await
    };
    let (first, second) = tokio::time::timeout(BOUND, async { tokio::join!(first, second) })
        .await
        .unwrap();
    assert_eq!(first.unwrap().status(), StatusCode::OK);
    let second = second.unwrap();
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = second.json().await.unwrap();
    assert_eq!(body["code"], "upstream_busy", "{body}");
    // Once the first is done the route serves again.
    let again = l.app.http.get(&url).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    // Another route to the same upstream has no such cap.
    let open = format!("http://{}/open", l.gateway);
    let (a, b) = tokio::join!(l.app.http.get(&open).send(), l.app.http.get(&open).send());
    assert_eq!(a.unwrap().status(), StatusCode::OK);
    assert_eq!(b.unwrap().status(), StatusCode::OK);
}

/// A client that completes the TLS handshake and then sends nothing is
/// closed like a silent plain one, on both listeners, while HTTPS
/// `/healthz` keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_tls_connection_is_closed_after_its_handshake() {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = crate::tls::server_cert(certs.path(), "idle");
    let upstream = held_upstream(Duration::from_millis(10)).await;
    let toml = format!(
        "[limits]\nfirst_byte_timeout_seconds = 1\nidle_timeout_seconds = 1\n\
         tls_handshake_timeout_seconds = 1\n\
         [gateway]\nlisten = \"127.0.0.1:0\"\n[[gateway.routes]]\nname = \"open\"\n\
         match = {{ path_prefix = \"/\" }}\nupstream = \"http://{}\"\nauth = \"none\"\n",
        upstream.addr
    );
    let app = spawn_app_with_toml(Backend::Sqlite, Some(&toml), |args| {
        args.tls_cert = Some(cert.clone());
        args.tls_key = Some(key.clone());
        args.allow_plain_http = true;
    })
    .await
    .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_file(&cert).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let https = crate::tls::client_trusting(&cert);
    for addr in [app.addr, app.gateway_addr.unwrap()] {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        let mut buf = [0u8; 64];
        let closed = tokio::time::timeout(BOUND, tls.read(&mut buf)).await;
        assert!(
            matches!(closed, Ok(Ok(0) | Err(_))),
            "{addr}: an idle TLS connection stayed open"
        );
        // A handshake never finished is cut too.
        let mut half = TcpStream::connect(addr).await.unwrap();
        assert!(
            closed_by_server(&mut half).await,
            "{addr}: a handshake never cut"
        );
        let res = https
            .get(format!("https://127.0.0.1:{}/healthz", app.addr.port()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
}
