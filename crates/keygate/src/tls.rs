//! TLS for keygate's listeners (rustls through axum-server, with the same
//! aws-lc-rs provider as everything else). The certificate and key are PEM
//! files, read at start and again on SIGHUP, so a renewed certificate is
//! picked up without dropping connections. Without TLS, listeners are
//! served by axum directly.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpListener;

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
        crate::secrets::check_private(&files.key, "TLS key file")?;
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
        crate::secrets::check_private(&self.files.key, "TLS key file")?;
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

/// How long in-flight requests may take to finish after a shutdown signal.
pub(crate) const DRAIN: Duration = Duration::from_secs(30);

/// Serves `router` on `listener`, over TLS when `tls` is set, until
/// `shutdown` resolves; then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let Some(tls) = tls else {
        use axum::serve::ListenerExt;
        // Answers go out at once rather than waiting for an ACK (Nagle), as
        // a proxy's upstream connections already do.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        return axum::serve(listener, service)
            .with_graceful_shutdown(shutdown)
            .await;
    };
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(DRAIN));
    });
    let listener = listener.into_std()?;
    axum_server::from_tcp_rustls(listener, tls.config)?
        .handle(handle)
        .serve(service)
        .await
}
