//! The floor under the gateway's figures: the plainest reverse proxy the
//! same stack (tokio, hyper) can make, with no
//! routing, authentication, header rewriting, metrics or logging.
//! `scripts/bench-gateway` runs it beside nginx so a run shows how much of
//! the gap to nginx is the stack and how much is keygate.
//!
//!   cargo run --release --example bare_proxy -- 127.0.0.1:8080 127.0.0.1:9000
//!
//! `BARE_POOL=affinity` holds one upstream connection per client connection
//! (hyper's connection-level client, as the gateway does; the bench uses
//! this); otherwise hyper-util's pooled client. `BARE_RT=current` runs a
//! current-thread runtime instead of the multi-thread one. Together they
//! show what each choice costs the stack.

use std::convert::Infallible;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

type Body = http_body_util::combinators::UnsyncBoxBody<hyper::body::Bytes, hyper::Error>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = if std::env::var("BARE_RT").as_deref() == Ok("current") {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    };
    rt.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let affinity = std::env::var("BARE_POOL").as_deref() == Ok("affinity");
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        return Err("usage: bare_proxy LISTEN_ADDR UPSTREAM_ADDR".into());
    };
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> =
        Client::builder(TokioExecutor::new()).build(connector);
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let client = client.clone();
        let upstream = upstream.clone();
        if affinity {
            tokio::spawn(serve_affine(tcp, upstream));
            continue;
        }
        tokio::spawn(async move {
            let service = service_fn(move |mut req: Request<Incoming>| {
                let client = client.clone();
                let target = match req.uri().path_and_query() {
                    Some(pq) => format!("http://{upstream}{pq}"),
                    None => format!("http://{upstream}/"),
                };
                async move {
                    *req.uri_mut() = target.parse::<Uri>().unwrap_or_default();
                    let res = match client.request(req).await {
                        Ok(res) => res.map(|b| b.boxed_unsync()),
                        Err(_) => {
                            let mut res = Response::new(empty());
                            *res.status_mut() = StatusCode::BAD_GATEWAY;
                            res
                        }
                    };
                    Ok::<_, Infallible>(res)
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Incoming>;

async fn serve_affine(tcp: tokio::net::TcpStream, upstream: String) {
    let slot: std::sync::Arc<tokio::sync::Mutex<Option<Sender>>> = Default::default();
    let service = service_fn(move |mut req: Request<Incoming>| {
        let slot = slot.clone();
        let upstream = upstream.clone();
        async move {
            let mut guard = slot.lock().await;
            if guard.as_ref().is_none_or(|s| s.is_closed()) {
                let Ok(up) = tokio::net::TcpStream::connect(&upstream).await else {
                    return Ok::<_, Infallible>(Response::new(empty()));
                };
                let _ = up.set_nodelay(true);
                let Ok((sender, conn)) =
                    hyper::client::conn::http1::handshake(TokioIo::new(up)).await
                else {
                    return Ok(Response::new(empty()));
                };
                tokio::spawn(conn);
                *guard = Some(sender);
            }
            let Some(sender) = guard.as_mut() else {
                return Ok(Response::new(empty()));
            };
            if sender.ready().await.is_err() {
                *guard = None;
                return Ok(Response::new(empty()));
            }
            let pq = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            *req.uri_mut() = pq.parse::<Uri>().unwrap_or_default();
            let res = match sender.send_request(req).await {
                Ok(res) => res.map(|b| b.boxed_unsync()),
                Err(_) => Response::new(empty()),
            };
            Ok(res)
        }
    });
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(tcp), service)
        .await;
}

fn empty() -> Body {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}
