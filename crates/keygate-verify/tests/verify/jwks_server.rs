//! A JWKS server on 127.0.0.1:0 whose answers a test sets and whose fetches
//! it counts, and the clock the test moves by hand (keygate-core's, the one
//! test clock of the workspace).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::common::{TestKey, jwks};

pub use keygate_core::ManualClock;

/// The test clock at `secs` since the epoch.
pub fn clock_at(secs: u64) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(ms(secs)))
}

/// `secs` in the milliseconds `ManualClock` counts.
pub fn ms(secs: u64) -> i64 {
    i64::try_from(secs).unwrap() * 1000
}

#[derive(Default)]
struct Answer {
    body: Mutex<Vec<u8>>,
    cache_control: Mutex<Option<String>>,
    status: AtomicU16,
    hits: AtomicUsize,
    redirects: AtomicUsize,
}

pub struct JwksServer {
    addr: std::net::SocketAddr,
    answer: Arc<Answer>,
    task: tokio::task::JoinHandle<()>,
}

async fn jwks_handler(State(answer): State<Arc<Answer>>) -> Response {
    answer.hits.fetch_add(1, Ordering::SeqCst);
    let status = StatusCode::from_u16(answer.status.load(Ordering::SeqCst)).unwrap();
    let body = answer.body.lock().unwrap().clone();
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    // No keep-alive, so that stopping the listener makes the issuer "down".
    headers.insert(header::CONNECTION, "close".parse().unwrap());
    if let Some(value) = answer.cache_control.lock().unwrap().as_deref() {
        headers.insert(header::CACHE_CONTROL, value.parse().unwrap());
    }
    response
}

async fn moved_handler(State(answer): State<Arc<Answer>>) -> Response {
    answer.redirects.fetch_add(1, Ordering::SeqCst);
    (
        StatusCode::FOUND,
        [(header::LOCATION, "/jwks"), (header::CONNECTION, "close")],
    )
        .into_response()
}

impl JwksServer {
    pub async fn start(keys: &[&TestKey]) -> Self {
        let answer = Arc::new(Answer::default());
        answer.status.store(200, Ordering::SeqCst);
        *answer.body.lock().unwrap() = jwks(keys);
        let app = Router::new()
            .route("/jwks", get(jwks_handler))
            .route("/moved", get(moved_handler))
            .with_state(answer.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, answer, task }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn url(&self) -> String {
        format!("{}/jwks", self.base())
    }
    pub fn hits(&self) -> usize {
        self.answer.hits.load(Ordering::SeqCst)
    }
    pub fn redirects(&self) -> usize {
        self.answer.redirects.load(Ordering::SeqCst)
    }
    pub fn set_keys(&self, keys: &[&TestKey]) {
        self.set_body(jwks(keys));
    }
    pub fn set_body(&self, body: Vec<u8>) {
        *self.answer.body.lock().unwrap() = body;
    }
    pub fn set_status(&self, status: u16) {
        self.answer.status.store(status, Ordering::SeqCst);
    }
    pub fn set_cache_control(&self, value: Option<&str>) {
        *self.answer.cache_control.lock().unwrap() = value.map(str::to_owned);
    }
    /// Stops accepting connections: the issuer is down.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
