//! TLS for keygate's listeners (rustls through axum-server, with the same
//! aws-lc-rs provider as everything else). The certificate and key are PEM
//! files, read at start and again on SIGHUP, so a renewed certificate is
//! picked up without dropping connections. Serving, plain or TLS, is the
//! connection layer's (`listen`).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpListener;
use tower::ServiceExt;

use keygate_http::listen::{Limits, Listen, TlsSource};

/// The PEM files of `[tls]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A loaded certificate, shared by every listener and reloadable.
#[derive(Clone)]
pub struct Tls {
    files: TlsFiles,
    config: RustlsConfig,
}

impl Tls {
    pub async fn load(files: &TlsFiles) -> Result<Self, String> {
        crate::file_mode::check_private(&files.key, "TLS key file")?;
        let config = RustlsConfig::from_pem_file(&files.cert, &files.key)
            .await
            .map_err(|e| describe(files, &e))?;
        Ok(Self {
            files: files.clone(),
            config,
        })
    }

    /// The certificate in force now, for a listener's own TLS acceptor.
    pub fn server_config(&self) -> std::sync::Arc<tokio_rustls::rustls::ServerConfig> {
        self.config.get_inner()
    }

    /// Rereads the files; on error the old certificate stays in use.
    pub async fn reload(&self) -> Result<(), String> {
        crate::file_mode::check_private(&self.files.key, "TLS key file")?;
        self.config
            .reload_from_pem_file(&self.files.cert, &self.files.key)
            .await
            .map_err(|e| describe(&self.files, &e))
    }
}

fn describe(files: &TlsFiles, e: &std::io::Error) -> String {
    format!(
        "cannot load the TLS certificate {} and key {}: {e}",
        files.cert.display(),
        files.key.display()
    )
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
    let make = move |peer: SocketAddr| {
        let router = router.clone();
        move |mut req: Request<Body>| {
            req.extensions_mut().insert(ConnectInfo(peer));
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
    fn server_config(&self) -> Arc<tokio_rustls::rustls::ServerConfig> {
        self.config.get_inner()
    }
}
