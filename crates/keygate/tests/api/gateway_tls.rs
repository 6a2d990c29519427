//! https upstreams: a local TLS upstream whose certificate a CA made here
//! signed (keygate-test-support's `certs`), reached through the gateway with that CA
//! configured; refused (502 `upstream_tls_failed`) under another CA or for
//! a name the certificate does not carry; reached without checks only
//! where the route opts out; pooled per trust; and a reload that reads the
//! bundle again.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::BodyExt;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use keygate_test_support::certs::{LeafSpec, TestCa};
use reqwest::StatusCode;
use serde_json::{Map, Value, json};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::gateway::assert_problem;
use crate::helpers::{Backend, TestApp, spawn_app_with_toml};

/// The upstream's certificate: a server's for 127.0.0.1 only, so a route
/// that names it `localhost` does not match it.
fn upstream_spec() -> LeafSpec {
    LeafSpec {
        common_name: "upstream".into(),
        dns: Vec::new(),
        ..LeafSpec::server()
    }
}

/// A TLS upstream on 127.0.0.1 answering every request with the headers it
/// got; counts the TLS handshakes it completed (one per connection).
async fn tls_upstream(cert: &Path, key: &Path) -> (SocketAddr, Arc<AtomicUsize>) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let mut config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    // Agreed only if the gateway offers it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handshakes = Arc::new(AtomicUsize::new(0));
    let count = handshakes.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, count) = (acceptor.clone(), count.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let headers: Map<String, Value> = req
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").into()))
                        .collect();
                    let body = json!({
                        "path": req.uri().path(),
                        "headers": headers,
                        "alpn": alpn.as_deref().map(String::from_utf8_lossy),
                    });
                    async move {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(Bytes::from(body.to_string())),
                        ))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, handshakes)
}

struct Fixture {
    app: TestApp,
    upstream: SocketAddr,
    handshakes: Arc<AtomicUsize>,
    /// The bundle the `reloaded` route reads, rewritten by the reload test.
    live_ca: PathBuf,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

fn route(name: &str, upstream: &str, extra: &str) -> String {
    format!(
        "[[gateway.routes]]\nname = \"{name}\"\nmatch = {{ path_prefix = \"/{name}\" }}\n\
         upstream = \"{upstream}\"\nauth = \"none\"\nforward_token = \"none\"\n{extra}\n"
    )
}

async fn fixture() -> Option<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let issuer = TestCa::new("ca");
    let ca = issuer.write(dir.path(), "ca.crt");
    let other = TestCa::new("other").write(dir.path(), "other.crt");
    let (cert, key) = issuer.leaf(&upstream_spec()).write(dir.path(), "leaf");
    let (upstream, handshakes) = tls_upstream(&cert, &key).await;
    let live_ca = dir.path().join("live-ca.crt");
    std::fs::copy(&other, &live_ca).unwrap();
    let port = upstream.port();
    let https = format!("https://127.0.0.1:{port}");
    let ca_line = format!("upstream_ca_file = {:?}", ca.display().to_string());
    let mut toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nupstream_ca_file = {:?}\n",
        other.display().to_string()
    );
    toml += &route("trusted", &https, &ca_line);
    toml += &route("trusted-too", &https, &ca_line);
    toml += &route("section-ca", &https, "");
    toml += &route("by-name", &format!("https://localhost:{port}"), &ca_line);
    toml += &route("unverified", &https, "upstream_tls_verify = false");
    toml += &route("plain", &format!("http://127.0.0.1:{port}"), "");
    toml += &route(
        "reloaded",
        &https,
        &format!("upstream_ca_file = {:?}", live_ca.display().to_string()),
    );
    let app = spawn_app_with_toml(Backend::Sqlite, Some(&toml), |_| {}).await?;
    Some(Fixture {
        app,
        upstream,
        handshakes,
        live_ca,
        ca,
        _dir: dir,
    })
}

/// One client connection to the gateway, its requests one after another:
/// a pooled client may open a second connection between two requests, and
/// the gateway keeps an upstream connection per client connection.
struct Client(hyper::client::conn::http1::SendRequest<http_body_util::Empty<Bytes>>);

impl Client {
    async fn open(fx: &Fixture) -> Self {
        let tcp = tokio::net::TcpStream::connect(fx.app.gateway_addr.unwrap())
            .await
            .unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        Self(sender)
    }

    async fn get(&mut self, path: &str) -> crate::helpers::Response {
        let req = hyper::Request::get(path)
            .header("host", "gateway.test")
            .body(http_body_util::Empty::new())
            .unwrap();
        self.0.ready().await.unwrap();
        let res = self.0.send_request(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        crate::helpers::Response {
            status: parts.status,
            headers: parts.headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }
}

impl Fixture {
    fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_upstream_is_verified_reached_and_its_connection_reused() {
    let Some(fx) = fixture().await else { return };
    let mut client = Client::open(&fx).await;
    let res = client.get("/trusted/a").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    // Host as for a plain upstream (the URL's authority), the client's
    // scheme in X-Forwarded-Proto, HTTP/1.1 agreed by ALPN.
    let port = fx.upstream.port();
    assert_eq!(res.body["headers"]["host"], format!("127.0.0.1:{port}"));
    assert_eq!(res.body["headers"]["x-forwarded-proto"], "http");
    assert_eq!(res.body["alpn"], "http/1.1");
    assert_eq!(res.body["path"], "/trusted/a");
    // The client connection's next requests, to this route and to another
    // with the same trust: all over the first handshake.
    for path in ["/trusted/b", "/trusted-too", "/trusted/c"] {
        assert_eq!(client.get(path).await.status, StatusCode::OK, "{path}");
    }
    assert_eq!(fx.handshakes(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_does_not_verify_is_a_502() {
    let Some(fx) = fixture().await else { return };
    let mut client = Client::open(&fx).await;
    // A pooled connection verified under the route's CA...
    assert_eq!(client.get("/trusted").await.status, StatusCode::OK);
    // ...serves neither a route under another CA (the section's) nor a
    // plain route to the same address.
    let res = client.get("/section-ca").await;
    assert_problem(&res, StatusCode::BAD_GATEWAY, "upstream_tls_failed");
    let res = client.get("/plain").await;
    assert_problem(&res, StatusCode::BAD_GATEWAY, "upstream_unavailable");
    // The right CA, but a name the certificate does not carry.
    let res = client.get("/by-name").await;
    assert_problem(&res, StatusCode::BAD_GATEWAY, "upstream_tls_failed");
    // The problem names neither the upstream nor the reason.
    let detail = res.body.to_string();
    assert!(
        !detail.contains(&fx.upstream.port().to_string()),
        "{detail}"
    );
    let failures = fx
        .app
        .metric("keygate_gateway_upstream_errors_total{route=\"by-name\",reason=\"upstream_tls_failed\"}")
        .await;
    assert_eq!(failures, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_route_may_skip_verification() {
    let Some(fx) = fixture().await else { return };
    let mut client = Client::open(&fx).await;
    // The section's CA did not sign the upstream; the route checks nothing.
    let res = client.get("/unverified/x").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["path"], "/unverified/x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_reads_the_bundle_again() {
    let Some(fx) = fixture().await else { return };
    let mut client = Client::open(&fx).await;
    let res = client.get("/reloaded").await;
    assert_problem(&res, StatusCode::BAD_GATEWAY, "upstream_tls_failed");
    std::fs::copy(&fx.ca, &fx.live_ca).unwrap();
    let gateway = fx.app.state().gateway.clone().unwrap();
    gateway.reload().unwrap();
    assert_eq!(client.get("/reloaded").await.status, StatusCode::OK);
    // A bundle that no longer loads is refused, and the routes in force stay.
    std::fs::write(&fx.live_ca, "not a certificate").unwrap();
    let errors = gateway.reload().unwrap_err().join("\n");
    assert!(
        errors.contains("upstream_ca_file") && errors.contains("holds no PEM certificate"),
        "{errors}"
    );
    assert_eq!(client.get("/reloaded").await.status, StatusCode::OK);
}

#[test]
fn gateway_check_shows_https_and_refuses_what_cannot_be_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let check = |toml: &str| {
        let file = dir.path().join("gateway.toml");
        std::fs::write(&file, toml).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_keygate"))
            .args(["gateway", "check", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let good = format!(
        "[gateway]\n{}",
        route(
            "local",
            "https://localhost:8443/v1",
            "upstream_tls_verify = false"
        )
    );
    let (code, stdout) = check(&good);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("https://localhost:8443/v1"), "{stdout}");
    let missing = dir.path().join("missing-ca.pem");
    let bad = format!(
        "[gateway]\n{}{}",
        route(
            "remote",
            "https://backend.internal",
            "upstream_tls_verify = false"
        ),
        route(
            "pinned",
            "https://backend.internal",
            &format!("upstream_ca_file = {:?}", missing.display().to_string())
        )
    );
    let (code, stdout) = check(&bad);
    assert_eq!(code, Some(1), "{stdout}");
    for needle in [
        "route \"remote\": upstream_tls_verify: false is allowed only for a loopback upstream"
            .to_owned(),
        format!(
            "route \"pinned\": upstream_ca_file: cannot read {}",
            missing.display()
        ),
    ] {
        assert!(stdout.contains(&needle), "{needle} missing in {stdout}");
    }
}
