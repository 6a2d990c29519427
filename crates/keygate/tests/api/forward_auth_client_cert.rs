//! `/v1/forward-auth` reading the client certificate a trusted proxy
//! passes (`[forward_auth] client_cert_header`): read only from
//! `trusted_proxies`, refused with 403 when it cannot be read exactly.

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;

use crate::gateway_upstream::{Gw, routes_toml, spawn_upstream};
use crate::helpers::{Backend, spawn_app_with_toml};
use crate::on_both_backends;

on_both_backends!(
    spawn = crate::forward_auth_client_cert::spawn;
    a_trusted_proxys_certificate_header_is_read_and_a_bad_one_refused,
    an_untrusted_peers_certificate_header_is_ignored,
);

/// The proxy is 127.0.0.2: requests from 127.0.0.1 come from a stranger.
const PROXY: &str = "127.0.0.2";

pub async fn spawn(backend: Backend) -> Option<Gw> {
    let upstream = spawn_upstream().await;
    let toml = format!(
        "trusted_proxies = [\"{PROXY}\"]\n[forward_auth]\nclient_cert_header = \"nginx\"\n{}",
        routes_toml(upstream.addr)
    );
    let app = spawn_app_with_toml(backend, Some(&toml), |_| {}).await?;
    let url = format!("http://{}", app.gateway_addr.unwrap());
    Some(Gw { app, upstream, url })
}

async fn ask(gw: &Gw, from: &str, cert_header: &str) -> crate::helpers::Response {
    let (_, key) = gw.key(&["orders:read"]).await;
    let client = reqwest::Client::builder()
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    gw.app
        .raw(
            client
                .get(format!("{}/v1/forward-auth", gw.app.base))
                .header("x-original-uri", "/keys/1")
                .header("x-original-method", "GET")
                .header("x-api-key", &key)
                .header("x-ssl-client-cert", cert_header),
        )
        .await
}

fn escaped_leaf() -> String {
    let leaf = keygate_test_support::certs::TestCa::new("clients").client("svc-a");
    utf8_percent_encode(&leaf.pem, NON_ALPHANUMERIC).to_string()
}

async fn a_trusted_proxys_certificate_header_is_read_and_a_bad_one_refused(gw: Gw) {
    let res = ask(&gw, PROXY, &escaped_leaf()).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let res = ask(&gw, PROXY, "secret-looking-garbage").await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    assert_eq!(res.body["code"], "invalid_client_cert_header");
    assert!(!res.body.to_string().contains("secret-looking-garbage"));
    // nginx's variable is empty without a client certificate: no
    // certificate, not a refusal.
    let res = ask(&gw, PROXY, "").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
}

async fn an_untrusted_peers_certificate_header_is_ignored(gw: Gw) {
    let res = ask(&gw, "127.0.0.1", "secret-looking-garbage").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
}
