//! `[tls] client_auth` from the configuration to real handshakes: the CAs
//! and CRLs named once in `[mtls]` are the handshake's too, and the
//! registry matches a client under the very CA the handshake checked.

use std::path::PathBuf;

use keygate_test_support::Backend;
use keygate_test_support::certs::{TestCa, TestCert, self_signed_client};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with_toml};
use crate::mtls_routes::PROXY;

crate::on_both_backends!(spawn = crate::tls_client_auth::spawn;
    the_handshake_takes_the_cas_and_crls_named_in_mtls,
    the_registry_refuses_a_certificate_of_unknown_status_as_the_handshake_does,
);

pub struct Named {
    app: TestApp,
    server_cert: PathBuf,
    mesh: TestCa,
    revoked: TestCert,
    /// A CA of `[mtls]` that published no CRL.
    partners: TestCa,
    _dir: tempfile::TempDir,
}

/// keygate requiring client certificates, its CAs and CRLs named only in
/// `[mtls]` (`partners` without a CRL), and forward-auth reading nginx's
/// header from the proxy at `PROXY`.
pub async fn spawn(backend: Backend) -> Option<Named> {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = crate::tls::server_cert(dir.path(), "server");
    let mesh = TestCa::new("mesh");
    let mesh_file = mesh.write(dir.path(), "mesh.pem");
    let partners = TestCa::new("partners");
    let partners_file = partners.write(dir.path(), "partners.pem");
    let revoked = mesh.client("svc-revoked");
    let crl = dir.path().join("mesh.crl");
    std::fs::write(&crl, mesh.crl(&[&revoked]).1).unwrap();
    let toml = format!(
        "trusted_proxies = [\"{PROXY}\"]\n\
         [tls]\ncert = {cert:?}\nkey = {key:?}\nclient_auth = \"require\"\n\
         [mtls]\ncas = {{ mesh = {mesh_file:?}, partners = {partners_file:?} }}\n\
         crl_files = [{crl:?}]\n\
         [forward_auth]\nclient_cert_header = \"nginx\"\n\
         [gateway]\nlisten = \"127.0.0.1:0\"\n\
         [[gateway.routes]]\nname = \"svc\"\nmatch = {{ path_prefix = \"/svc\" }}\n\
         upstream = \"http://127.0.0.1:9\"\nauth = \"mtls\"\n"
    );
    let mut app = spawn_app_with_toml(backend, Some(&toml), |_| {}).await?;
    app.base = format!("https://127.0.0.1:{}", app.addr.port());
    Some(Named {
        app,
        server_cert: cert,
        mesh,
        revoked,
        partners,
        _dir: dir,
    })
}

/// A client presenting `leaf` (or none), trusting keygate's certificate.
pub fn client(server_cert: &std::path::Path, leaf: Option<&TestCert>) -> reqwest::Client {
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
    leaf: Option<&TestCert>,
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
        (Some(&TestCa::new("other").client("svc-x")), "another CA's"),
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

async fn the_registry_refuses_a_certificate_of_unknown_status_as_the_handshake_does(t: Named) {
    let healthz = format!("{}/healthz", t.app.base);
    let partner = t.partners.client("svc-partner");
    let good = t.mesh.client("svc-good");
    // The handshake: no CRL from partners, so its certificates are refused.
    let answer = handshake(&t.server_cert, Some(&partner), &healthz).await;
    assert!(answer.is_err(), "{answer:?}");
    // The registry, given the same certificate by a trusted proxy: refused
    // too, with its own code, though a client is registered for it.
    for (ca, subject) in [("partners", "CN=svc-partner"), ("mesh", "CN=svc-good")] {
        let res = t
            .app
            .raw(
                client(&t.server_cert, Some(&good))
                    .post(format!("{}/v1/clients", t.app.base))
                    .bearer_auth(&t.app.root_key)
                    .json(&json!({"name": ca, "owner": "o", "ca": ca, "subject": subject})),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    }
    let proxy = reqwest::Client::builder()
        .local_address(PROXY.parse::<std::net::IpAddr>().unwrap())
        .tls_certs_only([
            reqwest::Certificate::from_pem(&std::fs::read(&t.server_cert).unwrap()).unwrap(),
        ])
        .identity(
            reqwest::Identity::from_pem(format!("{}{}", good.pem, good.key_pem).as_bytes())
                .unwrap(),
        )
        .build()
        .unwrap();
    let forward_auth = |leaf: &TestCert| {
        let escaped =
            percent_encoding::utf8_percent_encode(&leaf.pem, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let req = proxy
            .get(format!("{}/v1/forward-auth", t.app.base))
            .header("x-original-uri", "/svc/x")
            .header("x-original-method", "GET")
            .header("x-ssl-client-cert", escaped);
        t.app.raw(req)
    };
    let res = forward_auth(&partner).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
    assert_eq!(res.body["code"], "mtls_revocation_unknown");
    assert!(!res.body.to_string().contains("svc-partner"));
    let res = forward_auth(&t.revoked).await;
    assert_eq!(res.body["code"], "mtls_revoked_cert", "{}", res.body);
    let res = forward_auth(&good).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
}
