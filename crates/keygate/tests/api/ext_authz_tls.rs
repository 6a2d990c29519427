//! `[ext_authz]` served over TLS (`tls = true`, the `[tls]` certificate)
//! to a tonic client, Envoy's `context_extensions` naming the route, and
//! `keygate_ext_authz_checks_total` counting what each check answered.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use keygate_extauthz::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use keygate_extauthz::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse};
use keygate_extauthz::request::{ROUTE_EXTENSION, check_request};
use keygate_test_support::Backend;
use serde_json::Value;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::gateway_ext_authz::{denied, h2c_from, header, ok};
use crate::gateway_upstream::{Upstream, routes_toml, spawn_upstream};
use crate::helpers::{TestApp, spawn_app_with_toml};

crate::on_both_backends!(spawn = crate::ext_authz_tls::spawn;
    checks_over_tls_name_their_route_and_are_counted,
);

pub struct Grpc {
    app: TestApp,
    _upstream: Upstream,
    server_cert: PathBuf,
    _dir: tempfile::TempDir,
}

/// The gateway's routes, and `[ext_authz]` over TLS to this host.
pub async fn spawn(backend: Backend) -> Option<Grpc> {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = crate::tls::server_cert(dir.path(), "server");
    let upstream = spawn_upstream().await;
    let toml = format!(
        "trusted_proxies = [\"127.0.0.1\"]\n[tls]\ncert = {cert:?}\nkey = {key:?}\n\
         [ext_authz]\nlisten = \"127.0.0.1:0\"\ntls = true\n{}",
        routes_toml(upstream.addr)
    );
    let mut app = spawn_app_with_toml(backend, Some(&toml), |_| {}).await?;
    app.base = format!("https://127.0.0.1:{}", app.addr.port());
    app.http = crate::tls::client_trusting(&cert);
    Some(Grpc {
        app,
        _upstream: upstream,
        server_cert: cert,
        _dir: dir,
    })
}

/// One HTTP/2 connection over TLS (ALPN `h2`), as Envoy's gRPC client
/// opens one to a TLS cluster: tonic's client runs on it.
#[derive(Clone)]
struct H2Tls(SendRequest<tonic::body::Body>);

impl tower::Service<http::Request<tonic::body::Body>> for H2Tls {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, hyper::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.0.send_request(req))
    }
}

impl Grpc {
    /// A tonic client over TLS from the local address `from`, trusting
    /// keygate's certificate, or the handshake's error.
    async fn tls_client(&self, from: &str) -> Result<AuthorizationClient<H2Tls>, String> {
        let addr = self.app.ext_authz_addr.unwrap();
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.server_cert).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let mut config = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let tcp = socket.connect(addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .map_err(|e| e.to_string())?;
        let (send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let origin = format!("https://{addr}").parse().unwrap();
        Ok(AuthorizationClient::with_origin(H2Tls(send), origin))
    }

    async fn check(&self, req: CheckRequest) -> Result<CheckResponse, tonic::Status> {
        self.check_from("127.0.0.1", req).await
    }

    async fn check_from(
        &self,
        from: &str,
        req: CheckRequest,
    ) -> Result<CheckResponse, tonic::Status> {
        let mut client = self.tls_client(from).await.unwrap();
        client.check(req).await.map(tonic::Response::into_inner)
    }

    async fn checks(&self, result: &str) -> f64 {
        let name = format!("keygate_ext_authz_checks_total{{result=\"{result}\"}}");
        self.app.metric(&name).await
    }
}

/// A check of `GET path`, with `keygate_route = route` when given.
fn asked(path: &str, route: Option<&str>) -> CheckRequest {
    let client = Some("192.0.2.7:40000".parse::<SocketAddr>().unwrap());
    let mut req = check_request("GET", "api.internal", path, &[], client);
    if let Some(name) = route {
        let extensions = &mut req.attributes.as_mut().unwrap().context_extensions;
        extensions.insert(ROUTE_EXTENSION.to_owned(), name.to_owned());
    }
    req
}

fn code(res: CheckResponse) -> (u32, String) {
    let (_, d) = denied(res);
    let body: Value = serde_json::from_str(&d.body).unwrap();
    (
        d.status.unwrap().code as u32,
        body["code"].as_str().unwrap().to_owned(),
    )
}

async fn checks_over_tls_name_their_route_and_are_counted(t: Grpc) {
    // Over TLS, judged by the path's route.
    let allowed = ok(t.check(asked("/open/x", None)).await.unwrap());
    assert_eq!(header(&allowed.headers, "x-keygate-route"), Some("open"));
    let res = t.check(asked("/keys/x", None)).await.unwrap();
    assert_eq!(code(res), (401, "missing_credentials".to_owned()));
    // Envoy's configuration names the route: it judges, whatever the path.
    let named = ok(t.check(asked("/keys/x", Some("open"))).await.unwrap());
    assert_eq!(header(&named.headers, "x-keygate-route"), Some("open"));
    let res = t.check(asked("/open/x", Some("keys"))).await.unwrap();
    assert_eq!(code(res), (401, "missing_credentials".to_owned()));
    let res = t.check(asked("/open/x", Some("nope"))).await.unwrap();
    assert_eq!(code(res), (403, "no_route".to_owned()));
    // The same name over HTTP (`?route=`) is judged the same way.
    let http = t
        .app
        .raw(
            t.app
                .http
                .get(format!("{}/v1/forward-auth?route=keys", t.app.base))
                .header("x-original-uri", "/open/x"),
        )
        .await;
    assert_eq!(http.body["code"], "missing_credentials", "{}", http.body);

    // Plain text is not served on the TLS listener.
    let addr = t.app.ext_authz_addr.unwrap();
    let mut plain = AuthorizationClient::with_origin(
        h2c_from("127.0.0.1".parse().unwrap()),
        format!("http://{addr}").parse().unwrap(),
    );
    assert!(plain.check(asked("/open/x", None)).await.is_err());

    // A caller outside trusted_proxies gets no decision.
    let stranger = t.check_from("127.0.0.2", asked("/open/x", None)).await;
    assert_eq!(stranger.unwrap_err().code(), tonic::Code::PermissionDenied);

    // Counted by result: two allowed, three denied, the stranger apart.
    assert_eq!(t.checks("allowed").await, 2.0);
    assert_eq!(t.checks("denied").await, 3.0);
    assert_eq!(t.checks("untrusted_caller").await, 1.0);
    assert_eq!(t.checks("unavailable").await, 0.0);
}
