//! The gateway's forwarding: bodies streamed both ways (never buffered),
//! body limits, HTTP/2 from clients, WebSocket upgrades, and the 502/504
//! answers that name no upstream internals.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;
use http_body_util::channel::Channel;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::gateway_upstream::Gw;
use crate::on_both_backends;

on_both_backends!(
    spawn = crate::gateway_upstream::spawn_gateway;
    responses_stream_without_buffering,
    requests_stream_without_buffering,
    large_bodies_pass_both_ways_and_limits_answer_413,
    unreachable_and_slow_upstreams_answer_502_and_504,
    websocket_upgrades_pass_through,
    http2_clients_are_served,
    dot_segments_are_refused,
    upstream_connections_are_reused,
);

const WAIT: Duration = Duration::from_secs(10);

fn hyper_client() -> Client<HttpConnector, Body> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

async fn responses_stream_without_buffering(gw: Gw) {
    let mut res = gw.get("/open/gated").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The upstream holds the rest back until told: the first part arrives
    // through the gateway before the upstream has finished.
    let first = tokio::time::timeout(WAIT, res.chunk())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.as_deref(), Some(&b"first;"[..]));
    gw.upstream.release.notify_one();
    let rest = tokio::time::timeout(WAIT, res.chunk())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rest.as_deref(), Some(&b"rest"[..]));
}

async fn requests_stream_without_buffering(gw: Gw) {
    let (mut tx, body) = Channel::<Bytes, Infallible>::new(1);
    let req = axum::http::Request::post(format!("{}/open/upload", gw.url))
        .body(Body::new(body))
        .unwrap();
    let pending = tokio::spawn(hyper_client().request(req));
    tx.send_data(Bytes::from(vec![7u8; 1000])).await.unwrap();
    // The upstream sees the first part while the client is still sending.
    let first = tokio::time::timeout(WAIT, gw.upstream.first_chunk.lock().await.recv())
        .await
        .expect("the first chunk reached the upstream before the body ended");
    assert_eq!(first, Some(1000));
    for _ in 0..64 {
        tx.send_data(Bytes::from(vec![1u8; 64 * 1024]))
            .await
            .unwrap();
    }
    drop(tx);
    let res = pending.await.unwrap().unwrap();
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["total"], 1000 + 64 * 64 * 1024);
}

async fn large_bodies_pass_both_ways_and_limits_answer_413(gw: Gw) {
    let big: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let res = gw
        .app
        .http
        .post(format!("{}/open/echo-body", gw.url))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.bytes().await.unwrap() == big,
        "the body came back intact"
    );
    // Declared too large: refused before anything reaches the upstream.
    let res = gw
        .app
        .raw(
            gw.app
                .http
                .post(format!("{}/small/upload", gw.url))
                .body(vec![0u8; 2000]),
        )
        .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.body);
    assert_eq!(res.body["code"], "body_too_large");
    // Undeclared (chunked) and too large: cut off while streaming.
    let (mut tx, body) = Channel::<Bytes, Infallible>::new(4);
    let req = axum::http::Request::post(format!("{}/small/upload", gw.url))
        .body(Body::new(body))
        .unwrap();
    let pending = tokio::spawn(hyper_client().request(req));
    for _ in 0..4 {
        if tx.send_data(Bytes::from(vec![0u8; 600])).await.is_err() {
            break;
        }
    }
    drop(tx);
    let res = pending.await.unwrap().unwrap();
    assert_eq!(res.status(), 413);
    // Within the limit it passes.
    let res = gw
        .app
        .raw(
            gw.app
                .http
                .post(format!("{}/small/upload", gw.url))
                .body(vec![0u8; 1000]),
        )
        .await;
    assert_eq!(res.body["total"], 1000);
}

async fn unreachable_and_slow_upstreams_answer_502_and_504(gw: Gw) {
    let res = gw.app.raw(gw.get("/down/x")).await;
    assert_eq!(res.status, StatusCode::BAD_GATEWAY);
    assert_eq!(res.headers["content-type"], "application/problem+json");
    assert_eq!(res.body["code"], "upstream_unavailable");
    assert!(!res.body.to_string().contains("127.0.0.1"), "{}", res.body);
    let res = gw.app.raw(gw.get("/slow/slow")).await;
    assert_eq!(res.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(res.body["code"], "upstream_timeout");
    assert!(
        gw.app
            .metric("keygate_gateway_requests_total{route=\"down\",class=\"5xx\"}")
            .await
            >= 1.0
    );
    assert_eq!(
        gw.app
            .metric(
                "keygate_gateway_upstream_errors_total{route=\"slow\",reason=\"upstream_timeout\"}"
            )
            .await,
        1.0
    );
}

async fn websocket_upgrades_pass_through(gw: Gw) {
    let addr = gw.app.gateway_addr.unwrap();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let handshake = format!(
        "GET /open/ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(handshake.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1, "connection closed in the handshake");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    // The upstream echoes raw bytes on the upgraded connection.
    tcp.write_all(b"ping through the gateway").await.unwrap();
    let mut buf = [0u8; 24];
    tokio::time::timeout(WAIT, tcp.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ping through the gateway");
}

async fn http2_clients_are_served(gw: Gw) {
    let client: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(HttpConnector::new());
    let req = axum::http::Request::get(format!("{}/open/h2", gw.url))
        .body(Body::empty())
        .unwrap();
    let res = client.request(req).await.unwrap();
    assert_eq!(res.version(), axum::http::Version::HTTP_2);
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["path"], "/open/h2");
}

async fn dot_segments_are_refused(gw: Gw) {
    // hyper sends the path as written (reqwest would normalize it first).
    for path in ["/open/../keys/1", "/open/%2e%2e/keys/1", "/open%2fx"] {
        let req = axum::http::Request::get(format!("{}{path}", gw.url))
            .body(Body::empty())
            .unwrap();
        let res = hyper_client().request(req).await.unwrap();
        assert_eq!(res.status(), 400, "{path}");
    }
    let res = gw
        .app
        .raw(
            gw.app
                .http
                .get(format!("{}/v1/forward-auth", gw.app.base))
                .header("x-original-uri", "/open/../keys/1"),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.body["code"], "invalid_path");
}

async fn upstream_connections_are_reused(gw: Gw) {
    // One client connection, held by hand: a pooled client may open a
    // second one while it is still putting the first back.
    let addr = gw.url.trim_start_matches("http://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Body>(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut seen = std::collections::HashSet::new();
    for i in 0..5 {
        sender.ready().await.unwrap();
        let req = axum::http::Request::get(format!("/open/r{i}"))
            .header("host", &addr)
            .body(Body::empty())
            .unwrap();
        let res = sender.send_request(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        seen.insert(json["peer"].as_str().unwrap().to_owned());
    }
    // ...ride one upstream connection.
    assert_eq!(seen.len(), 1, "{seen:?}");
}

/// An upstream answering in HTTP/1.0: one answer per connection, then close.
async fn http_1_0_upstream() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
            });
        }
    });
    addr
}

/// One answer of `ok` on `tcp`, as text.
async fn read_ok(tcp: &mut tokio::net::TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !(got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"ok")) {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// An intermediary sends its own HTTP version (RFC 9110 §6.2): an HTTP/1.0
/// upstream's answer reaches an HTTP/1.1 client as HTTP/1.1, and the
/// client's connection stays open for its next request.
#[tokio::test]
async fn an_http_1_0_upstream_is_relayed_in_keygates_own_version() {
    let up = http_1_0_upstream().await;
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\n[[gateway.routes]]\nname = \"old\"\n\
         match = {{ path_prefix = \"/\" }}\nupstream = \"http://{up}\"\nauth = \"none\"\n"
    );
    let app =
        crate::helpers::spawn_app_with_toml(crate::helpers::Backend::Sqlite, Some(&toml), |_| {})
            .await
            .unwrap();
    let mut tcp = tokio::net::TcpStream::connect(app.gateway_addr.unwrap())
        .await
        .unwrap();
    for _ in 0..2 {
        tcp.write_all(b"GET /x HTTP/1.1\r\nHost: gw\r\n\r\n")
            .await
            .unwrap();
        let answer = read_ok(&mut tcp).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}
