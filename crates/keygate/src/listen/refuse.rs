//! Refusing a connection clearly and cheaply: a canned 503 problem written
//! before close, so a client over the cap learns why instead of hanging.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

const CODE: &str = "too_many_connections";
const DETAIL: &str = "the server is holding as many connections as it may; retry shortly";

static PROBLEM: LazyLock<String> = LazyLock::new(|| {
    serde_json::json!({
        "type": format!("urn:keygate:problem:{CODE}"),
        "title": "Service Unavailable",
        "status": 503,
        "detail": DETAIL,
        "code": CODE,
    })
    .to_string()
});

static CANNED: LazyLock<Vec<u8>> = LazyLock::new(|| {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n\
         cache-control: no-store\r\nretry-after: 1\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{}",
        PROBLEM.len(),
        *PROBLEM
    )
    .into_bytes()
});

/// The 503 a connection on the reserved margin answers to any other path.
pub fn too_many_connections() -> Response<Body> {
    let mut res = Response::new(Body::from(PROBLEM.as_str()));
    *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

/// Refusals being written at once; beyond it a refused connection is just
/// closed, so a flood cannot turn refusals into its own backlog.
pub struct Refusals(Arc<Semaphore>);

impl Default for Refusals {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(64)))
    }
}

/// How long a refusal may take to write and to see the client's request off.
const LINGER: Duration = Duration::from_secs(1);

impl Refusals {
    /// Writes the canned 503 on a plain connection and closes it. A TLS
    /// listener cannot answer before a handshake, which is what a refusal
    /// must not pay for: its connection is closed at once.
    pub fn refuse(&self, mut tcp: TcpStream, tls: bool) {
        if tls {
            return;
        }
        let Ok(permit) = self.0.clone().try_acquire_owned() else {
            return;
        };
        tokio::spawn(async move {
            let _permit = permit;
            let answer = async {
                tcp.write_all(&CANNED).await?;
                tcp.shutdown().await?;
                // Reads what the client sent: closing with unread data would
                // reset the connection and could lose the answer.
                let mut sink = [0u8; 4096];
                while tcp.read(&mut sink).await? > 0 {}
                Ok::<_, std::io::Error>(())
            };
            let _ = tokio::time::timeout(LINGER, answer).await;
        });
    }
}
