//! `[tls] client_auth` from the configuration to real handshakes: the CAs
//! and CRLs named once in `[mtls]` are the handshake's too, and the
//! registry matches a client under the very CA the handshake checked.

use std::path::PathBuf;

use keygate_test_support::Backend;
use keygate_test_support::tls_certs::{Ca, Leaf, self_signed_client};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with_toml};

crate::on_both_backends!(spawn = crate::tls_client_auth::spawn;
    the_handshake_takes_the_cas_and_crls_named_in_mtls,
);

pub struct Named {
    app: TestApp,
    server_cert: PathBuf,
    mesh: Ca,
    revoked: Leaf,
    _dir: tempfile::TempDir,
}

/// keygate requiring client certificates, its CAs and CRLs named only in
/// `[mtls]`.
pub async fn spawn(backend: Backend) -> Option<Named> {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = crate::tls::self_signed(dir.path(), "server")?;
    let mesh = Ca::root("mesh");
    let mesh_file = mesh.write(dir.path(), "mesh.pem");
    let revoked = mesh.client("svc-revoked");
    let crl = dir.path().join("mesh.crl");
    std::fs::write(&crl, mesh.crl(&[&revoked])).unwrap();
    let toml = format!(
        "[tls]\ncert = {cert:?}\nkey = {key:?}\nclient_auth = \"require\"\n\
         [mtls]\ncas = {{ mesh = {mesh_file:?} }}\ncrl_files = [{crl:?}]\n"
    );
    let mut app = spawn_app_with_toml(backend, Some(&toml), |_| {}).await?;
    app.base = format!("https://127.0.0.1:{}", app.addr.port());
    Some(Named {
        app,
        server_cert: cert,
        mesh,
        revoked,
        _dir: dir,
    })
}

/// A client presenting `leaf` (or none), trusting keygate's certificate.
pub fn client(server_cert: &std::path::Path, leaf: Option<&Leaf>) -> reqwest::Client {
    let pem = std::fs::read(server_cert).unwrap();
    let mut b =
        reqwest::Client::builder().tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()]);
    if let Some(leaf) = leaf {
        let id = format!("{}{}", leaf.chain_pem(), leaf.key_pem);
        b = b.identity(reqwest::Identity::from_pem(id.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

/// GET `url` over a fresh connection: the status, or the transport's
/// error (a handshake refused with an alert).
pub async fn handshake(
    server_cert: &std::path::Path,
    leaf: Option<&Leaf>,
    url: &str,
) -> Result<StatusCode, String> {
    match client(server_cert, leaf).get(url).send().await {
        Ok(res) => Ok(res.status()),
        Err(e) => Err(format!("{e:?}")),
    }
}

async fn the_handshake_takes_the_cas_and_crls_named_in_mtls(mut t: Named) {
    let healthz = format!("{}/healthz", t.app.base);
    let good = t.mesh.client("svc-good");
    let ok = handshake(&t.server_cert, Some(&good), &healthz).await;
    assert_eq!(ok, Ok(StatusCode::OK));
    // Refused in the handshake: no certificate, one the mesh CRL revokes,
    // one no [mtls] CA issued.
    for (leaf, why) in [
        (None, "none"),
        (Some(&t.revoked), "revoked"),
        (Some(&Ca::root("other").client("svc-x")), "another CA's"),
        (Some(&self_signed_client("svc-y")), "self-signed"),
    ] {
        let answer = handshake(&t.server_cert, leaf, &healthz).await;
        assert!(answer.is_err(), "{why}: {answer:?}");
    }
    // The registry matches under the CA the handshake checked: the token
    // endpoint takes the certificate as the client's credential.
    t.app.http = client(&t.server_cert, Some(&good));
    let res = t
        .app
        .post(
            "/v1/clients",
            json!({"name": "good", "owner": "o", "ca": "mesh", "subject": "CN=svc-good"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let id = res.body["id"].as_str().unwrap();
    let req = t
        .app
        .http
        .post(format!("{}/oauth2/token", t.app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=client_credentials&client_id={id}"));
    let res = t.app.raw(req).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    t.app.stop().await;
}
