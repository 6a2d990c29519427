//! Refusing a connection clearly and cheaply: a canned 503 problem written
//! before close, so a client over the cap learns why instead of hanging.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Response, StatusCode};
use axum::response::IntoResponse;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::problem::{ApiError, PROBLEM_JSON};

/// Over the caps: a 503 with `Retry-After: 1`, the same problem+json as
/// every other refusal.
fn problem() -> ApiError {
    let mut e = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_connections",
        "the server is holding as many connections as it may; retry shortly",
    );
    e.retry_after_secs = Some(1);
    e
}

/// The refusal as raw HTTP/1.1, written once, sent before any request is
/// read.
static CANNED: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let body = problem().body();
    let mut canned = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: {PROBLEM_JSON}\r\n\
         cache-control: no-store\r\nretry-after: 1\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n",
        body.len(),
    )
    .into_bytes();
    canned.extend_from_slice(&body);
    canned
});

/// The 503 a connection on the reserved margin answers to any other path.
pub fn too_many_connections() -> Response<Body> {
    problem().into_response()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canned_refusal_is_the_same_problem_as_the_response() {
        let text = String::from_utf8(CANNED.clone()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{head}"
        );
        assert!(head.ends_with(&format!("\r\ncontent-length: {}", body.len())));
        assert!(head.contains("retry-after: 1\r\n"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["code"], "too_many_connections");
        assert_eq!(json["status"], 503);
        let res = too_many_connections();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()["retry-after"], "1");
        assert_eq!(res.headers()["content-type"], PROBLEM_JSON);
    }
}
