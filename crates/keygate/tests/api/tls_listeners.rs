//! `[gateway] client_auth`: the gateway's listener asks for client
//! certificates on its own terms while the admin listener keeps `[tls]`'s,
//! checked with real handshakes on both, and across a reload.

use std::path::PathBuf;

use keygate_test_support::Backend;
use keygate_test_support::certs::{TestCa, TestCert, self_signed_client};
use reqwest::StatusCode;

use crate::gateway_upstream::{Upstream, spawn_upstream};
use crate::helpers::{TestApp, spawn_app_with_toml};
use crate::tls_client_auth::handshake;

crate::on_both_backends!(spawn = crate::tls_listeners::spawn;
    the_gateway_requires_a_certificate_the_admin_listener_only_requests,
);

pub struct Listeners {
    app: TestApp,
    _upstream: Upstream,
    admin: String,
    gateway: String,
    server_cert: PathBuf,
    mesh: TestCa,
    _dir: tempfile::TempDir,
}

/// `[tls] client_auth = "request"`, `[gateway] client_auth = "require"`,
/// the CAs in `[mtls]`; one public route.
pub async fn spawn(backend: Backend) -> Option<Listeners> {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = crate::tls::server_cert(dir.path(), "server");
    let mesh = TestCa::new("mesh");
    let mesh_file = mesh.write(dir.path(), "mesh.pem");
    let upstream = spawn_upstream().await;
    let toml = format!(
        "[tls]\ncert = {cert:?}\nkey = {key:?}\nclient_auth = \"request\"\n\
         [mtls]\ncas = {{ mesh = {mesh_file:?} }}\n\
         [gateway]\nlisten = \"127.0.0.1:0\"\nclient_auth = \"require\"\n\
         [[gateway.routes]]\nname = \"open\"\nmatch = {{ path_prefix = \"/open\" }}\n\
         upstream = \"http://{}\"\nauth = \"none\"\n",
        upstream.addr
    );
    let app = spawn_app_with_toml(backend, Some(&toml), |_| {}).await?;
    let admin = format!("https://127.0.0.1:{}/healthz", app.addr.port());
    let gateway = format!("https://127.0.0.1:{}/open/x", app.gateway_addr?.port());
    Some(Listeners {
        app,
        _upstream: upstream,
        admin,
        gateway,
        server_cert: cert,
        mesh,
        _dir: dir,
    })
}

impl Listeners {
    async fn at(&self, leaf: Option<&TestCert>, url: &str) -> Result<StatusCode, String> {
        handshake(&self.server_cert, leaf, url).await
    }

    /// Both listeners as a client with `leaf` (or none) sees them.
    async fn both(
        &self,
        leaf: Option<&TestCert>,
    ) -> (Result<StatusCode, String>, Result<StatusCode, String>) {
        (
            self.at(leaf, &self.admin).await,
            self.at(leaf, &self.gateway).await,
        )
    }
}

async fn the_gateway_requires_a_certificate_the_admin_listener_only_requests(t: Listeners) {
    let good = t.mesh.client("svc-good");
    // No certificate: the admin listener serves, the gateway's refuses
    // in the handshake.
    let (admin, gateway) = t.both(None).await;
    assert_eq!(admin, Ok(StatusCode::OK));
    assert!(gateway.is_err(), "{gateway:?}");
    // A certificate of the [mtls] CA: both serve.
    let (admin, gateway) = t.both(Some(&good)).await;
    assert_eq!(admin, Ok(StatusCode::OK));
    assert_eq!(gateway, Ok(StatusCode::OK));
    // One no CA issued: refused on both (requested or required alike).
    let (admin, gateway) = t.both(Some(&self_signed_client("svc-x"))).await;
    assert!(admin.is_err() && gateway.is_err(), "{admin:?} {gateway:?}");
    // A reload (SIGHUP) rebuilds both listeners' configurations, each
    // keeping its own mode.
    t.app.tls.as_ref().unwrap().reload().await.unwrap();
    let (admin, gateway) = t.both(None).await;
    assert_eq!(admin, Ok(StatusCode::OK));
    assert!(gateway.is_err(), "{gateway:?}");
    assert_eq!(t.at(Some(&good), &t.gateway).await, Ok(StatusCode::OK));
}
