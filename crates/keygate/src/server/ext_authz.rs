//! `[ext_authz]`: binding Envoy's gRPC listener and serving it beside the
//! others, on the same shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use keygate_http::listen::{Limits, TlsSource};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::StartError;
use crate::config::ext_authz::ExtAuthzConfig;
use crate::http::AppState;
use crate::tls::Tls;

/// The configured listener, bound before `run` so the caller learns its
/// address (port 0).
pub struct ExtAuthz {
    config: ExtAuthzConfig,
    listener: Option<TcpListener>,
}

impl ExtAuthz {
    pub(super) fn new(config: ExtAuthzConfig) -> Self {
        Self {
            config,
            listener: None,
        }
    }

    pub(super) async fn bind(&mut self) -> Result<SocketAddr, StartError> {
        let listen_error = |source| StartError::Listen {
            addr: format!("{} for ext_authz", self.config.listen),
            source,
        };
        let listener = TcpListener::bind(self.config.listen)
            .await
            .map_err(listen_error)?;
        let bound = listener.local_addr().map_err(listen_error)?;
        self.listener = Some(listener);
        Ok(bound)
    }

    /// Serves checks until `shutdown`; `None` when not bound, or without a
    /// gateway (which the configuration already refuses).
    pub(super) fn spawn(
        self,
        state: &AppState,
        tls: Option<&Tls>,
        limits: Limits,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Option<JoinHandle<std::io::Result<()>>> {
        let listener = self.listener?;
        let gateway = state.gateway.clone()?;
        let tls = tls
            .filter(|_| self.config.tls)
            .map(|t| Arc::new(t.clone()) as Arc<dyn TlsSource>);
        let serve = keygate_extauthz::Serve {
            gateway,
            trusted: state.trusted_proxies.clone(),
            tls,
            limits,
            max_message_bytes: self.config.max_message_bytes,
            metrics: state.metrics.ext_authz.clone(),
        };
        Some(tokio::spawn(keygate_extauthz::serve(
            listener, serve, shutdown,
        )))
    }
}
