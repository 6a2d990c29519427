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

/// The listener, bound before `run` so the caller learns its address.
pub(super) async fn bind(config: &ExtAuthzConfig) -> Result<(TcpListener, SocketAddr), StartError> {
    let listen_error = |source| StartError::Listen {
        addr: format!("{} for ext_authz", config.listen),
        source,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(listen_error)?;
    let bound = listener.local_addr().map_err(listen_error)?;
    Ok((listener, bound))
}

/// Serves checks until `shutdown`; `None` without a gateway, which the
/// configuration already refuses.
pub(super) fn spawn(
    listener: TcpListener,
    config: &ExtAuthzConfig,
    state: &AppState,
    tls: Option<&Tls>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Option<JoinHandle<std::io::Result<()>>> {
    let gateway = state.gateway.clone()?;
    let tls = tls
        .filter(|_| config.tls)
        .map(|t| Arc::new(t.clone()) as Arc<dyn TlsSource>);
    let serve = keygate_extauthz::Serve {
        gateway,
        trusted: state.trusted_proxies.clone(),
        tls,
        limits,
        max_message_bytes: config.max_message_bytes,
    };
    Some(tokio::spawn(keygate_extauthz::serve(
        listener, serve, shutdown,
    )))
}
