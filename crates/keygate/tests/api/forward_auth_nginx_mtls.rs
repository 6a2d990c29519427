//! Real nginx terminating mTLS with docs/nginx-mtls.conf, passing
//! `$ssl_client_escaped_cert` to keygate's forward-auth: what nginx writes
//! is read as the client's certificate, and nginx's own refusals (no
//! certificate, an untrusted or revoked one) never reach keygate.

use reqwest::StatusCode;

use crate::gateway_forward_auth::{nginx_binary, run_nginx};
use crate::gateway_upstream::{Gw, closed_port, routes_toml, spawn_upstream};
use crate::helpers::{Backend, services_required, spawn_app_with_toml};
use crate::on_both_backends;
use keygate::gateway::forward_auth::{
    ForwardAuthFile, ProxyCertFormat, ProxyCertHeader, from_proxy,
};
use keygate_core::clients::CertSource;
use keygate_http::client_addr::TrustedProxies;
use keygate_test_support::certs::{TestCa, TestCert};

on_both_backends!(
    spawn = crate::forward_auth_nginx_mtls::spawn;
    nginx_passes_the_verified_client_certificate,
);

pub async fn spawn(backend: Backend) -> Option<Gw> {
    let upstream = spawn_upstream().await;
    let toml = format!(
        "trusted_proxies = [\"127.0.0.1\"]\n[forward_auth]\nclient_cert_header = \"nginx\"\n{}",
        routes_toml(upstream.addr)
    );
    let app = spawn_app_with_toml(backend, Some(&toml), |_| {}).await?;
    let url = format!("http://{}", app.gateway_addr.unwrap());
    Some(Gw { app, upstream, url })
}

/// A client presenting `leaf` (or nothing), trusting nginx's server CA.
fn client(server_ca: &TestCa, leaf: Option<&TestCert>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(server_ca.pem.as_bytes()).unwrap()]);
    if let Some(leaf) = leaf {
        let pem = format!("{}{}", leaf.chain_pem(), leaf.key_pem);
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

async fn nginx_passes_the_verified_client_certificate(gw: Gw) {
    let Some(bin) = nginx_binary() else {
        assert!(
            !services_required(),
            "KEYGATE_TEST_REQUIRE_SERVICES=1 but nginx is not installed (apt-get install nginx)"
        );
        eprintln!("skipping: nginx is not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (server_ca, clients) = (TestCa::new("nginx-server"), TestCa::new("clients"));
    let (good, revoked) = (clients.client("svc-a"), clients.client("svc-revoked"));
    let (server_pem, server_key) = server_ca.server().write(dir.path(), "server");
    let ca = clients.write(dir.path(), "clients-ca.pem");
    let crl = dir.path().join("clients.crl");
    std::fs::write(&crl, clients.crl(&[&revoked]).1).unwrap();
    let port = closed_port();
    let docs = include_str!("../../../../docs/nginx-mtls.conf")
        .replace("127.0.0.1:8080", &gw.app.addr.to_string())
        .replace("127.0.0.1:9001", &gw.upstream.addr.to_string())
        .replace("listen 443 ssl", &format!("listen 127.0.0.1:{port} ssl"))
        .replace(
            "/etc/nginx/tls/server.pem",
            &server_pem.display().to_string(),
        )
        .replace(
            "/etc/nginx/tls/server.key",
            &server_key.display().to_string(),
        )
        .replace("/etc/nginx/tls/clients-ca.pem", &ca.display().to_string())
        .replace("/etc/nginx/tls/clients.crl", &crl.display().to_string());
    let nginx = run_nginx(&bin, tempfile::tempdir().unwrap(), port, &docs);
    let url = format!("https://localhost:{}/keys/1", nginx.port);
    let (_, key) = gw.key(&["orders:read"]).await;

    // Through keygate's forward-auth (which refuses a header it cannot
    // read with 403) to the app, which shows what nginx sent it.
    let res = gw
        .app
        .raw(
            client(&server_ca, Some(&good))
                .get(&url)
                .header("x-api-key", &key),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let seen = &res.body["headers"];
    // keygate allowed it: the app gets its internal token, not the key.
    assert!(
        seen["authorization"]
            .as_str()
            .unwrap()
            .starts_with("Bearer ey")
    );
    assert!(!seen.to_string().contains(&key));
    let passed = seen["x-ssl-client-cert"]
        .as_str()
        .expect("nginx passed the certificate");
    // What nginx writes, read as keygate reads it: the client's leaf.
    let header = ProxyCertHeader::resolve(&ForwardAuthFile {
        client_cert_header: ProxyCertFormat::Nginx,
        client_cert_header_name: None,
    })
    .unwrap();
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("x-ssl-client-cert", passed.parse().unwrap());
    let trusted = TrustedProxies::parse(&["127.0.0.1".to_owned()]).unwrap();
    let cert = from_proxy(
        &header,
        &trusted,
        Some("127.0.0.1".parse().unwrap()),
        &headers,
    )
    .unwrap()
    .expect("a certificate");
    assert_eq!(cert.leaf(), good.der.as_slice());
    assert_eq!(cert.source(), CertSource::Proxy);

    // nginx's own refusals: no certificate, a revoked one, a stranger's.
    let stranger = TestCa::new("elsewhere").client("svc-x");
    for leaf in [None, Some(&revoked), Some(&stranger)] {
        let res = client(&server_ca, leaf)
            .get(&url)
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }
}
