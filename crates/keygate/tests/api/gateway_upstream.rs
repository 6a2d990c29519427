//! The gateway tests' fixture: an upstream service (axum on port 0) that
//! echoes what it received, streams, stalls, upgrades; and a keygate whose
//! `[gateway]` routes point at it, one route per case.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use http_body_util::channel::Channel;
use hyper_util::rt::TokioIo;
use keygate_core::jwt::{TokenKind, TokenRequest};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Mutex, Notify, mpsc};

use crate::helpers::{Backend, TestApp, spawn_app_with_toml};

#[derive(Clone)]
struct UpstreamState {
    first_chunk: mpsc::Sender<usize>,
    release: Arc<Notify>,
    received: mpsc::UnboundedSender<Received>,
}

/// What a `/sink` request delivered: its body so far, and whether it ended
/// cleanly (false: the connection failed mid-body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub body: Vec<u8>,
    pub complete: bool,
}

pub struct Upstream {
    pub addr: SocketAddr,
    /// The size of the first body frame an `/upload` received, as soon as it did.
    pub first_chunk: Mutex<mpsc::Receiver<usize>>,
    /// Lets a `/gated` response send the rest of its body.
    pub release: Arc<Notify>,
    /// Every body a `/sink` request delivered, complete or not.
    pub received: Mutex<mpsc::UnboundedReceiver<Received>>,
}

pub async fn spawn_upstream() -> Upstream {
    let (tx, rx) = mpsc::channel(8);
    let release = Arc::new(Notify::new());
    let (received_tx, received) = mpsc::unbounded_channel();
    let state = UpstreamState {
        first_chunk: tx,
        release: release.clone(),
        received: received_tx,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .fallback(serve)
        .with_state(state)
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Upstream {
        addr,
        first_chunk: Mutex::new(rx),
        release,
        received: Mutex::new(received),
    }
}

async fn serve(State(st): State<UpstreamState>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if path.ends_with("/slow") {
        tokio::time::sleep(Duration::from_secs(3)).await;
        return "slow".into_response();
    }
    if path.ends_with("/ws") {
        return upgrade(req, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }
    if path.ends_with("/ws-wrong") {
        // Not the accept value of any key a test sends.
        return upgrade(req, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    }
    if path.ends_with("/echo-body") {
        // Streams the request body straight back.
        return Response::new(Body::new(req.into_body()));
    }
    if path.ends_with("/upload") {
        let mut body = req.into_body();
        let mut total = 0usize;
        let mut first = true;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return StatusCode::BAD_REQUEST.into_response();
            };
            if let Some(data) = frame.data_ref() {
                total += data.len();
                if first {
                    first = false;
                    let _ = st.first_chunk.send(data.len()).await;
                }
            }
        }
        return axum::Json(json!({ "total": total })).into_response();
    }
    if path.ends_with("/sink") {
        let mut body = req.into_body();
        let mut got = Received {
            body: Vec::new(),
            complete: true,
        };
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => got
                    .body
                    .extend_from_slice(f.data_ref().map_or(&[][..], |d| &d[..])),
                Err(_) => {
                    got.complete = false;
                    break;
                }
            }
        }
        let complete = got.complete;
        let _ = st.received.send(got);
        return if complete {
            "stored".into_response()
        } else {
            StatusCode::BAD_REQUEST.into_response()
        };
    }
    if path.ends_with("/gated") {
        let (mut tx, body) = Channel::<Bytes, Infallible>::new(2);
        let release = st.release.clone();
        tokio::spawn(async move {
            let _ = tx.send_data(Bytes::from_static(b"first;")).await;
            release.notified().await;
            let _ = tx.send_data(Bytes::from_static(b"rest")).await;
        });
        return Response::new(Body::new(body));
    }
    let headers: Map<String, Value> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").into()))
        .collect();
    // Which connection carried the request: the gateway's side of it.
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string());
    axum::Json(json!({
        "peer": peer,
        "method": req.method().as_str(),
        "path": path,
        "query": req.uri().query(),
        "headers": headers,
    }))
    .into_response()
}

/// Answers 101 with `accept` (the RFC 6455 example key's, for `/ws`) and
/// then echoes raw bytes on the upgraded connection.
fn upgrade(mut req: Request, accept: &'static str) -> Response {
    let on = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on.await else { return };
        let mut io = TokioIo::new(upgraded);
        let mut buf = [0u8; 1024];
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", accept)
        .body(Body::empty())
        .unwrap()
}

pub struct Gw {
    pub app: TestApp,
    pub upstream: Upstream,
    /// The gateway's base URL.
    pub url: String,
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn route(name: &str, prefix: &str, upstream: &str, extra: &str) -> String {
    format!(
        "[[gateway.routes]]\nname = \"{name}\"\nmatch = {{ path_prefix = \"{prefix}\" }}\nupstream = \"{upstream}\"\n{extra}\n"
    )
}

pub fn routes_toml(up: SocketAddr) -> String {
    let u = format!("http://{up}");
    let down = format!("http://127.0.0.1:{}", closed_port());
    let mut t = String::from("[gateway]\nlisten = \"127.0.0.1:0\"\n");
    t += &route(
        "open",
        "/open",
        &u,
        "auth = \"none\"\nforward_token = \"none\"\nwebsocket = true",
    );
    t += "[[gateway.routes]]\nname = \"host\"\nmatch = { path_prefix = \"/h\", host = \"api.example\" }\n";
    t += &format!("upstream = \"{u}/by-host\"\nauth = \"none\"\n");
    t += &route("h-any", "/h", &u, "auth = \"none\"");
    t += "[[gateway.routes]]\nname = \"get-only\"\nmatch = { path_prefix = \"/get\", methods = [\"GET\"] }\n";
    t += &format!("upstream = \"{u}\"\nauth = \"none\"\n");
    t += &route(
        "keys",
        "/keys",
        &u,
        "auth = \"api_key\"\nscopes = [\"orders:read\"]",
    );
    t += &route(
        "user",
        "/user",
        &u,
        "auth = \"jwt\"\nroles = [\"customer\"]",
    );
    t += &route("either", "/either", &u, "auth = \"api_key_or_jwt\"");
    t += &route(
        "both",
        "/both",
        &u,
        "auth = \"api_key_and_jwt\"\nscopes = [\"orders:read\"]\nroles = [\"customer\"]",
    );
    t += &route(
        "limited",
        "/limited",
        &u,
        "auth = \"api_key\"\nrate_limit = { limit = 2, period_seconds = 60 }",
    );
    t += &route(
        "pass",
        "/pass",
        &u,
        "auth = \"api_key\"\nforward_token = \"passthrough\"",
    );
    t += &route(
        "strip",
        "/strip",
        &format!("{u}/base"),
        "auth = \"none\"\nstrip_prefix = true",
    );
    t += &route(
        "small",
        "/small",
        &u,
        "auth = \"none\"\nbody_limit_bytes = 1024",
    );
    t += &route("slow", "/slow", &u, "auth = \"none\"\ntimeout_seconds = 1");
    t += &route("signed", "/signed", &u, "auth = \"hmac\"");
    t += &route(
        "signed-scoped",
        "/sscoped",
        &u,
        "auth = \"hmac\"\nscopes = [\"orders:write\"]",
    );
    t += &route(
        "signed-limited",
        "/slimited",
        &u,
        "auth = \"hmac\"\nrate_limit = { limit = 2, period_seconds = 60 }",
    );
    t += &route(
        "signed-loose",
        "/sloose",
        &u,
        "auth = \"hmac\"\nhmac_cover_content_headers = false",
    );
    t += &route("down", "/down", &down, "auth = \"none\"");
    t
}

pub async fn spawn_gateway(backend: Backend) -> Option<Gw> {
    let upstream = spawn_upstream().await;
    let toml = routes_toml(upstream.addr);
    let app = spawn_app_with_toml(backend, Some(&toml), |_| {}).await?;
    let url = format!("http://{}", app.gateway_addr.unwrap());
    Some(Gw { app, upstream, url })
}

impl Gw {
    /// A user access token, as a login would issue it.
    pub fn user_token(&self, subject: &str, roles: &[&str], tenant: Option<&str>) -> String {
        let tokens = &self.app.state().tokens;
        let mut claims = Map::new();
        claims.insert("roles".into(), json!(roles));
        if let Some(t) = tenant {
            claims.insert("tenant".into(), t.into());
        }
        tokens
            .issue(TokenRequest {
                kind: TokenKind::User,
                subject: subject.into(),
                audience: tokens.config().audience.clone(),
                ttl: tokens.config().access_token_ttl,
                not_issued_before: None,
                claims,
            })
            .unwrap()
            .token
    }

    /// A key with these scopes; returns (id, secret).
    pub async fn key(&self, scopes: &[&str]) -> (String, String) {
        self.app
            .create_key(json!({ "name": "gw", "owner": "app-owner", "scopes": scopes }))
            .await
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.app.http.get(format!("{}{path}", self.url))
    }
}
