//! Opening one upstream connection, plain or over TLS, and what pooled
//! connections are filed under.

use std::sync::Arc;
use std::time::Duration;

use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

use super::tls::{TlsConnect, TlsFailure};
use super::{SendError, Sender};

/// TCP connect and TLS handshake together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a route's upstream connections go, and how they are opened.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `host:port`: what is dialled, and what `max_connections` counts by.
    pub address: Arc<str>,
    /// What its idle connections are filed under: scheme, address and
    /// trust, so a connection only serves routes that would have opened it
    /// the same way (never a TLS one to a plain route, nor one verified
    /// against another CA).
    pub(super) key: Arc<str>,
    pub(super) tls: Option<Arc<TlsConnect>>,
    /// Its address's count of requests in flight, once found.
    pub(super) count: super::in_flight::AddressCount,
}

impl Endpoint {
    pub fn plain(address: Arc<str>) -> Self {
        Self {
            key: Arc::from(format!("http://{address}")),
            address,
            tls: None,
            count: Default::default(),
        }
    }

    pub fn tls(address: Arc<str>, tls: TlsConnect) -> Self {
        Self {
            key: Arc::from(format!("https://{address}#{}", tls.trust_id)),
            address,
            tls: Some(Arc::new(tls)),
            count: Default::default(),
        }
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

pub(super) async fn connect(endpoint: &Endpoint) -> Result<Sender, SendError> {
    let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out");
    tokio::time::timeout(CONNECT_TIMEOUT, open(endpoint))
        .await
        .map_err(|_| SendError::Connect(timed_out()))?
}

async fn open(endpoint: &Endpoint) -> Result<Sender, SendError> {
    let tcp = tokio::net::TcpStream::connect(&*endpoint.address)
        .await
        .map_err(SendError::Connect)?;
    let _ = tcp.set_nodelay(true);
    match &endpoint.tls {
        None => handshake(tcp).await,
        Some(tls) => {
            let stream = TlsConnector::from(tls.config.clone())
                .connect(tls.server_name.clone(), tcp)
                .await
                .map_err(|e| SendError::Tls(TlsFailure::of(&e)))?;
            handshake(stream).await
        }
    }
}

async fn handshake<T>(io: T) -> Result<Sender, SendError>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(SendError::Exchange)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "upstream connection ended");
        }
    });
    Ok(sender)
}
