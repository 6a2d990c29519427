//! The `Authorization` service and its listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Method, Request};
use keygate_core::clients::PeerCertificate;
use keygate_gateway::Gateway;
use keygate_gateway::config::ForwardToken;
use keygate_gateway::forward_auth::{self, ClientCert, Decided, Unjudgeable, Verdict};
use keygate_gateway::outcome::Outcome;
use keygate_http::client_addr::TrustedProxies;
use keygate_http::listen::{Limits, Listen, TlsSource};
use tokio::net::TcpListener;
use tonic::codegen::Service;
use tonic::{Status, async_trait};

use crate::metrics::{CheckResult, ExtAuthzMetrics};
use crate::pb::envoy::service::auth::v3::authorization_server::{
    Authorization, AuthorizationServer,
};
use crate::pb::envoy::service::auth::v3::check_response::HttpResponse;
use crate::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse};
use crate::{request, response};

/// The largest `CheckRequest` decoded: a check carries a request's line
/// and headers (the listener's HTTP/2 header limit is 16 KiB), never a
/// body keygate reads. A larger one is refused (tonic answers
/// `OUT_OF_RANGE`) before it is decoded.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// One connection's service: the decision, and who is asking.
struct Check {
    gateway: Arc<Gateway>,
    trusted: Arc<TrustedProxies>,
    /// The proxy's address on this connection.
    peer: SocketAddr,
    metrics: ExtAuthzMetrics,
}

#[async_trait]
impl Authorization for Check {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, Status> {
        // Only a proxy may describe a request and its client: anyone else
        // could name any address or certificate.
        if !self.trusted.contains(self.peer.ip()) {
            self.metrics.count(CheckResult::UntrustedCaller);
            return Err(Status::permission_denied(
                "only a proxy listed in trusted_proxies may ask",
            ));
        }
        let answer = self.judge(request.into_inner()).await;
        self.metrics.count(match &answer {
            Ok(res) if matches!(res.http_response, Some(HttpResponse::OkResponse(_))) => {
                CheckResult::Allowed
            }
            Ok(_) => CheckResult::Denied,
            Err(status) if status.code() == tonic::Code::Unavailable => CheckResult::Unavailable,
            Err(_) => CheckResult::Internal,
        });
        answer.map(tonic::Response::new)
    }
}

impl Check {
    /// The decision for `check`, as `/v1/forward-auth` makes it, recorded
    /// in the gateway's metrics and log under its route.
    async fn judge(&self, check: CheckRequest) -> Result<CheckResponse, Status> {
        let started = Instant::now();
        let (decided, request_id) = match request::read(&check) {
            Ok(asked) => (
                forward_auth::decide_with(
                    &self.gateway,
                    &asked.parts,
                    asked.source,
                    ClientCert::Given(asked.parts.extensions.get::<PeerCertificate>().cloned()),
                    asked.route,
                )
                .await,
                keygate_http::request_id_of(&asked.parts.headers),
            ),
            Err(why) => {
                tracing::debug!(?why, "a check that is not an HTTP request");
                let unreadable = Decided {
                    route: None,
                    method: Method::GET,
                    verdict: Verdict::Unjudgeable(Unjudgeable::InvalidOriginal),
                    certificate: None,
                };
                (unreadable, keygate_http::request_id_of(&Default::default()))
            }
        };
        let Decided {
            route,
            method,
            verdict,
            ..
        } = decided;
        let strip = route
            .as_ref()
            .is_none_or(|r| r.forward_token != ForwardToken::Passthrough);
        let mut outcome = Outcome::new(route);
        let res = verdict.answer(&mut outcome);
        self.gateway
            .record(&outcome, &method, res.status(), started, &request_id);
        response::translate(res, strip).await
    }
}

/// What the binary configures.
pub struct Serve {
    pub gateway: Arc<Gateway>,
    pub trusted: Arc<TrustedProxies>,
    pub tls: Option<Arc<dyn TlsSource>>,
    pub limits: Limits,
    pub max_message_bytes: usize,
    pub metrics: ExtAuthzMetrics,
}

/// Serves `Authorization/Check` on `listener` until `shutdown` resolves,
/// then lets in-flight checks finish, as the other listeners do.
pub async fn serve(
    listener: TcpListener,
    config: Serve,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Serve {
        gateway,
        trusted,
        tls,
        limits,
        max_message_bytes,
        metrics,
    } = config;
    let listen = Listen {
        name: "ext_authz",
        limits,
        tls,
        reserved_paths: &[],
        workers: 0,
    };
    let make = move |peer: keygate_http::listen::Peer| {
        let check = Check {
            gateway: gateway.clone(),
            trusted: trusted.clone(),
            peer: peer.addr,
            metrics: metrics.clone(),
        };
        let server = AuthorizationServer::new(check).max_decoding_message_size(max_message_bytes);
        move |req: Request<Body>| {
            // Always ready (tonic's generated server has no back-pressure
            // of its own; the listener's caps are the bound).
            let mut server = server.clone();
            async move {
                match server.call(req).await {
                    Ok(res) => res.map(Body::new),
                    Err(never) => match never {},
                }
            }
        }
    };
    keygate_http::listen::serve(listener, listen, make, shutdown).await
}
