//! The listeners' client certificates end to end: a real handshake with
//! rustls as the client, the chain as a handler sees it, refusals as the
//! client sees them (a TLS alert), and a reload.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Extension;
use axum::routing::get;
use keygate_core::clients::PeerCertificate;
use keygate_test_support::certs::{TestCa, TestCert, self_signed_client};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio_rustls::rustls::client::ResolvesClientCert;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, SignatureScheme};

use super::*;

/// The server's own certificate and the CA a client trusts it by.
struct Server {
    addr: SocketAddr,
    tls: Tls,
    server_ca: Vec<u8>,
    refusals: Family<CodeLabels, Counter>,
    _stop: oneshot::Sender<()>,
}

impl Server {
    /// The refusals counted under `code`, once the server has counted at
    /// least `at_least` (the client may see the alert first).
    async fn refused(&self, code: &'static str, at_least: u64) -> u64 {
        let counter = self.refusals.get_or_create(&CodeLabels { code }).clone();
        for _ in 0..200 {
            if counter.get() >= at_least {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        counter.get()
    }
}

/// Answers with the certificate the request carries: its source, chain
/// length and thumbprint, or `none`.
async fn who(cert: Option<Extension<PeerCertificate>>) -> String {
    match cert {
        None => "none".to_owned(),
        Some(Extension(c)) => format!(
            "{:?} {} {}",
            c.source(),
            c.chain().len(),
            hex::encode(c.thumbprint())
        ),
    }
}

fn described(leaf: &TestCert, source: &str) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "{source} {} {}",
        1 + leaf.intermediates.len(),
        hex::encode(Sha256::digest(&leaf.der))
    )
}

async fn start(dir: &Path, client: ClientAuth) -> Server {
    let server_root = TestCa::new("server-root");
    let (cert, key) = server_root.server().write(dir, "server");
    let files = TlsFiles {
        cert,
        key,
        client,
        gateway_client: None,
    };
    let refusals = Family::<CodeLabels, Counter>::default();
    let tls = Tls::load(&files)
        .await
        .unwrap()
        .counting_refusals_in(refusals.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route("/", get(who));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(
        listener,
        router,
        Some(tls.clone()),
        Limits::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        addr,
        tls,
        server_ca: server_root.der.clone(),
        refusals,
        _stop: stop,
    }
}

/// One request over TLS, as `client` (or without a certificate): the
/// body, or the error the client saw.
async fn ask(server: &Server, client: Option<&TestCert>) -> Result<String, String> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(server.server_ca.clone()))
        .unwrap();
    let builder = ClientConfig::builder().with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(leaf) => builder.with_client_cert_resolver(Arc::new(Presents::of(leaf))),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let request = "GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";
    // TLS 1.3: the server judges the client's certificate after the
    // client thinks the handshake is done, so a refusal arrives here.
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    Ok(text.split_once("\r\n\r\n").unwrap().1.to_owned())
}

/// The client's certificate and key, unchecked against each other (rustls'
/// own `with_client_auth_cert` refuses a mismatch, which a forger would not).
#[derive(Debug)]
struct Presents(Arc<CertifiedKey>);

impl Presents {
    fn of(leaf: &TestCert) -> Self {
        let chain = CertificateDer::pem_slice_iter(leaf.chain_pem().as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
        let key = aws_lc_rs::default_provider()
            .key_provider
            .load_private_key(key)
            .unwrap();
        Self(Arc::new(CertifiedKey::new(chain, key)))
    }
}

impl ResolvesClientCert for Presents {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn refused(answer: Result<String, String>, alert: &str) {
    match answer {
        Err(e) => assert!(e.contains(alert), "expected the alert {alert}, got: {e}"),
        Ok(body) => panic!("expected the alert {alert}, was served: {body}"),
    }
}

fn auth(mode: ClientAuthMode, ca_files: Vec<PathBuf>, crl_files: Vec<PathBuf>) -> ClientAuth {
    ClientAuth {
        mode,
        ca_files,
        crl_files,
        self_signed: false,
    }
}

#[tokio::test]
async fn a_handler_sees_the_chain_the_client_presented() {
    let dir = tempfile::tempdir().unwrap();
    let root = TestCa::new("clients");
    let inter = root.intermediate("clients-inter");
    let client = inter.client("svc-a");
    let cas = vec![root.write(dir.path(), "cas.pem")];
    let server = start(dir.path(), auth(ClientAuthMode::Request, cas, vec![])).await;
    assert_eq!(
        ask(&server, Some(&client)).await.unwrap(),
        described(&client, "Tls")
    );
    assert_eq!(client.intermediates.len(), 1);
    // Asked, not required: no certificate still connects, with none.
    assert_eq!(ask(&server, None).await.unwrap(), "none");
}

#[tokio::test]
async fn without_client_auth_no_certificate_is_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let client = TestCa::new("clients").client("svc-a");
    let server = start(dir.path(), ClientAuth::default()).await;
    // rustls sends no certificate when none was asked for.
    assert_eq!(ask(&server, Some(&client)).await.unwrap(), "none");
}

#[tokio::test]
async fn require_refuses_a_client_without_a_certificate_with_an_alert() {
    let dir = tempfile::tempdir().unwrap();
    let root = TestCa::new("clients");
    let client = root.client("svc-a");
    let cas = vec![root.write(dir.path(), "cas.pem")];
    let server = start(dir.path(), auth(ClientAuthMode::Require, cas, vec![])).await;
    refused(ask(&server, None).await, "CertificateRequired");
    assert_eq!(server.refused("client_certificate_missing", 1).await, 1);
    assert_eq!(
        ask(&server, Some(&client)).await.unwrap(),
        described(&client, "Tls")
    );
    let expired = root.expired_client("svc-old");
    refused(ask(&server, Some(&expired)).await, "CertificateExpired");
    assert_eq!(server.refused("client_certificate_expired", 1).await, 1);
    assert_eq!(server.refused("client_certificate_missing", 1).await, 1);
}

#[tokio::test]
async fn an_untrusted_or_expired_certificate_is_refused_even_when_only_requested() {
    let dir = tempfile::tempdir().unwrap();
    let root = TestCa::new("clients");
    let cas = vec![root.write(dir.path(), "cas.pem")];
    let server = start(dir.path(), auth(ClientAuthMode::Request, cas, vec![])).await;
    let stranger = TestCa::new("elsewhere").client("svc-x");
    refused(ask(&server, Some(&stranger)).await, "UnknownCA");
    refused(
        ask(&server, Some(&self_signed_client("me"))).await,
        "UnknownCA",
    );
    let expired = root.expired_client("svc-old");
    refused(ask(&server, Some(&expired)).await, "CertificateExpired");
}

#[tokio::test]
async fn a_revoked_certificate_is_refused_and_a_missing_crl_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let root = TestCa::new("clients");
    let inter = root.intermediate("clients-inter");
    let (revoked, kept) = (inter.client("svc-revoked"), inter.client("svc-kept"));
    let cas = vec![root.write(dir.path(), "cas.pem")];
    let inter_crl = dir.path().join("inter.crl");
    std::fs::write(&inter_crl, inter.crl(&[&revoked]).1).unwrap();
    let root_crl = dir.path().join("root.crl");
    std::fs::write(&root_crl, root.crl(&[]).1).unwrap();
    let both = vec![inter_crl.clone(), root_crl];
    let server = start(dir.path(), auth(ClientAuthMode::Require, cas.clone(), both)).await;
    refused(ask(&server, Some(&revoked)).await, "CertificateRevoked");
    assert_eq!(
        ask(&server, Some(&kept)).await.unwrap(),
        described(&kept, "Tls")
    );
    // The whole chain is checked: without the root's CRL the
    // intermediate's status is unknown, and unknown is refused.
    let dir2 = tempfile::tempdir().unwrap();
    let server = start(
        dir2.path(),
        auth(ClientAuthMode::Require, cas, vec![inter_crl]),
    )
    .await;
    assert!(ask(&server, Some(&kept)).await.is_err());
}

#[tokio::test]
async fn a_crl_past_its_next_update_still_counts() {
    // The registry (keygate-core's `clients::cas`) does the same.
    let dir = tempfile::tempdir().unwrap();
    let root = TestCa::new("clients");
    let (revoked, kept) = (root.client("svc-revoked"), root.client("svc-kept"));
    let cas = vec![root.write(dir.path(), "cas.pem")];
    let stale = dir.path().join("stale.crl");
    // Due to be replaced on 2025-01-01: past, by the clock of this run.
    let (_, pem) = root.crl_dated(&[&revoked], (2024, 1, 1), (2025, 1, 1));
    std::fs::write(&stale, pem).unwrap();
    let server = start(dir.path(), auth(ClientAuthMode::Require, cas, vec![stale])).await;
    refused(ask(&server, Some(&revoked)).await, "CertificateRevoked");
    assert_eq!(
        ask(&server, Some(&kept)).await.unwrap(),
        described(&kept, "Tls")
    );
}

#[tokio::test]
async fn a_reload_swaps_the_ca_bundle_and_a_bad_one_keeps_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (TestCa::new("old"), TestCa::new("new"));
    let (old_client, new_client) = (old_ca.client("svc-old"), new_ca.client("svc-new"));
    let cas = old_ca.write(dir.path(), "cas.pem");
    let server = start(
        dir.path(),
        auth(ClientAuthMode::Require, vec![cas.clone()], vec![]),
    )
    .await;
    assert!(ask(&server, Some(&old_client)).await.is_ok());
    refused(ask(&server, Some(&new_client)).await, "UnknownCA");

    new_ca.write(dir.path(), "cas.pem");
    server.tls.reload().await.unwrap();
    assert!(ask(&server, Some(&new_client)).await.is_ok());
    refused(ask(&server, Some(&old_client)).await, "UnknownCA");

    std::fs::write(&cas, "not a certificate").unwrap();
    assert!(server.tls.reload().await.is_err());
    assert!(ask(&server, Some(&new_client)).await.is_ok());
}

#[tokio::test]
async fn the_self_signed_mode_marks_a_chain_no_ca_issued() {
    let dir = tempfile::tempdir().unwrap();
    let root = TestCa::new("clients");
    let issued = root.client("svc-a");
    let cas = vec![root.write(dir.path(), "cas.pem")];
    let mut client = auth(ClientAuthMode::Require, cas, vec![]);
    client.self_signed = true;
    let server = start(dir.path(), client).await;
    let pinned = self_signed_client("pinned");
    assert_eq!(
        ask(&server, Some(&pinned)).await.unwrap(),
        described(&pinned, "TlsUnverified")
    );
    assert_eq!(
        ask(&server, Some(&issued)).await.unwrap(),
        described(&issued, "Tls")
    );
    // A certificate a configured CA issued is still held to its dates.
    refused(
        ask(&server, Some(&root.expired_client("svc-old"))).await,
        "CertificateExpired",
    );
    refused(ask(&server, None).await, "CertificateRequired");
}

#[tokio::test]
async fn the_self_signed_mode_still_checks_possession_of_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut client = auth(ClientAuthMode::Require, vec![], vec![]);
    client.self_signed = true;
    let server = start(dir.path(), client).await;
    // Someone else's certificate with a key of one's own.
    let theirs = self_signed_client("victim");
    let mine = self_signed_client("attacker");
    let forged = theirs.with_key_of(&mine);
    refused(ask(&server, Some(&forged)).await, "DecryptError");
}
