//! TLS for keygate's listeners (rustls, with the same aws-lc-rs provider
//! as everything else). The certificate and key are PEM files, read at
//! start and again on SIGHUP, so a renewed certificate is picked up
//! without dropping connections; so are the client CA bundles and CRLs of
//! `client_auth` (`client_auth`, `self_signed`). Serving, plain or TLS, is
//! the connection layer's (`listen`).
//!
//! - `client_auth`: which clients are asked for a certificate, and the
//!   CAs and CRLs it is checked against.
//! - `self_signed`: the verifier that also takes a certificate no CA
//!   vouches for (RFC 8705 `self_signed_tls_client_auth`).

mod client_auth;
mod self_signed;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum_server::tls_rustls::RustlsConfig;
use keygate_core::clients::CertSource;
use parking_lot::RwLock;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::net::TcpListener;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::{CryptoProvider, aws_lc_rs};
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tower::ServiceExt;

use crate::metrics::CodeLabels;
use client_auth::Verifiers;
pub use client_auth::{ClientAuth, ClientAuthMode};
use keygate_http::listen::{Limits, Listen, Peer, TlsSource};

/// The files of `[tls]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Client certificates: off unless configured.
    pub client: ClientAuth,
    /// The gateway listener's own (`[gateway] client_auth`), when it
    /// differs from `client`.
    pub gateway_client: Option<ClientAuth>,
}

/// Why the TLS configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the {what} file {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the {what} file {} is not valid PEM: {reason}", path.display())]
    Pem {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("the {what} {} holds nothing", path.display())]
    Empty { what: &'static str, path: PathBuf },
    #[error("the {what} in {} is refused: {reason}", path.display())]
    Rejected {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("TLS key file: {0}")]
    KeyMode(String),
    #[error("cannot use the TLS certificate {} and key {}: {source}", cert.display(), key.display())]
    Certificate {
        cert: PathBuf,
        key: PathBuf,
        source: tokio_rustls::rustls::Error,
    },
    #[error("cannot build the client certificate verifier: {0}")]
    Verifier(String),
    #[error("client_auth needs client CA files or client_auth_self_signed")]
    NoClientCas,
}

impl TlsError {
    fn read(what: &'static str, path: &Path, e: pem::Error) -> Self {
        match e {
            pem::Error::Io(source) => TlsError::Io {
                what,
                path: path.to_owned(),
                source,
            },
            other => TlsError::Pem {
                what,
                path: path.to_owned(),
                reason: other.to_string(),
            },
        }
    }
}

/// A loaded TLS configuration, shared by every listener and reloadable;
/// the gateway's listener has one of its own when `[gateway] client_auth`
/// asks differently (`for_gateway`).
#[derive(Clone)]
pub struct Tls {
    files: TlsFiles,
    config: RustlsConfig,
    /// The client certificate verifiers in force, for telling a
    /// CA-issued chain from one only `client_auth_self_signed` took.
    verifiers: Arc<RwLock<Arc<Verifiers>>>,
    /// `keygate_tls_client_certificate_refusals_total`, once wired.
    refusals: Option<Family<CodeLabels, Counter>>,
    /// The gateway listener's, when its client settings differ.
    gateway: Option<Box<Tls>>,
}

impl Tls {
    pub async fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let built = build(files).await?;
        let gateway = match gateway_files(files) {
            Some(files) => Some(Box::new(Self::one(&files, build(&files).await?))),
            None => None,
        };
        Ok(Self {
            gateway,
            ..Self::one(files, built)
        })
    }

    fn one(files: &TlsFiles, (config, verifiers): (ServerConfig, Verifiers)) -> Self {
        Self {
            files: files.clone(),
            config: RustlsConfig::from_config(Arc::new(config)),
            verifiers: Arc::new(RwLock::new(Arc::new(verifiers))),
            refusals: None,
            gateway: None,
        }
    }

    /// Counts the handshakes that refuse a client certificate in `family`
    /// (on every listener).
    pub fn counting_refusals_in(mut self, family: Family<CodeLabels, Counter>) -> Self {
        if let Some(gateway) = &mut self.gateway {
            gateway.refusals = Some(family.clone());
        }
        self.refusals = Some(family);
        self
    }

    /// The gateway listener's TLS: its own when `[gateway] client_auth`
    /// differs from `[tls]`'s, else this one. Reloaded with this one.
    pub fn for_gateway(&self) -> Tls {
        self.gateway.as_deref().unwrap_or(self).clone()
    }

    /// The certificate in force now, for a listener's own TLS acceptor.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.config.get_inner()
    }

    /// Rereads the certificate, key, client CA bundles and CRLs; on any
    /// error the old configuration stays in use, whole, on every listener.
    pub async fn reload(&self) -> Result<(), TlsError> {
        let (config, verifiers) = build(&self.files).await?;
        let gateway = match &self.gateway {
            Some(g) => Some((g, build(&g.files).await?)),
            None => None,
        };
        if let Some((g, (config, verifiers))) = gateway {
            g.swap(config, verifiers);
        }
        self.swap(config, verifiers);
        Ok(())
    }

    fn swap(&self, config: ServerConfig, verifiers: Verifiers) {
        *self.verifiers.write() = Arc::new(verifiers);
        self.config.reload_from_config(Arc::new(config));
    }
}

/// The gateway listener's files: the same certificate, its own client
/// settings.
fn gateway_files(files: &TlsFiles) -> Option<TlsFiles> {
    files.gateway_client.clone().map(|client| TlsFiles {
        cert: files.cert.clone(),
        key: files.key.clone(),
        client,
        gateway_client: None,
    })
}

/// The rustls configuration of `files`, read off the runtime's threads.
async fn build(files: &TlsFiles) -> Result<(ServerConfig, Verifiers), TlsError> {
    let files = files.clone();
    tokio::task::spawn_blocking(move || build_now(&files))
        .await
        .map_err(|e| TlsError::Verifier(format!("the loading task failed: {e}")))?
}

fn build_now(files: &TlsFiles) -> Result<(ServerConfig, Verifiers), TlsError> {
    crate::file_mode::check_private(&files.key, "TLS key file").map_err(TlsError::KeyMode)?;
    let provider: Arc<CryptoProvider> = Arc::new(aws_lc_rs::default_provider());
    let chain = client_auth::read_certs(&files.cert)?;
    if chain.is_empty() {
        return Err(TlsError::Empty {
            what: "TLS certificate file",
            path: files.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| TlsError::read("TLS key", &files.key, e))?;
    let verifiers = Verifiers::build(&files.client, &provider)?;
    let certificate = |source| TlsError::Certificate {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(certificate)?
        .with_client_cert_verifier(verifiers.handshake.clone())
        .with_single_cert(chain, key)
        .map_err(certificate)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((config, verifiers))
}

/// Serves `router` on `listener` (the admin listener), over TLS when `tls`
/// is set, under `limits`, until `shutdown` resolves; then lets in-flight
/// requests finish. Handlers get the peer as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Tls>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listen = Listen {
        name: "admin",
        limits,
        tls: tls.map(|t| Arc::new(t) as Arc<dyn TlsSource>),
        // A full listener still answers health checks on its margin.
        reserved_paths: &["/healthz", "/readyz"],
        // The admin API stays on the main runtime, beside storage.
        workers: 0,
    };
    let make = move |peer: Peer| {
        let router = router.clone();
        let Peer { addr, certificate } = peer;
        move |mut req: Request<Body>| {
            req.extensions_mut().insert(ConnectInfo(addr));
            if let Some(certificate) = &certificate {
                // An `Arc` clone: the chain was read once, at the handshake.
                req.extensions_mut().insert(certificate.clone());
            }
            let answer = router.clone().oneshot(req);
            async move {
                match answer.await {
                    Ok(res) => res,
                    Err(never) => match never {},
                }
            }
        }
    };
    keygate_http::listen::serve(listener, listen, make, shutdown).await
}

impl TlsSource for Tls {
    fn server_config(&self) -> Arc<ServerConfig> {
        self.config.get_inner()
    }

    fn refused_client_certificate(&self, code: &'static str) {
        if let Some(family) = &self.refusals {
            family.get_or_create(&CodeLabels { code }).inc();
        }
    }

    fn certificate_source(&self, chain: &[CertificateDer<'_>]) -> CertSource {
        if !self.files.client.self_signed {
            return CertSource::Tls;
        }
        // Checked again rather than remembered from the handshake: rustls
        // keeps no verdict beside the chain. Once per connection, and only
        // in this mode.
        let verifiers = self.verifiers.read().clone();
        if verifiers.ca_vouches_for(chain) {
            CertSource::Tls
        } else {
            CertSource::TlsUnverified
        }
    }
}
