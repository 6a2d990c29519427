//! An `mtls` route judged over Envoy's ext_authz gRPC: the client's
//! certificate is `attributes.source.certificate` (Envoy's
//! `include_peer_certificate: true`), from a caller in `trusted_proxies`;
//! a certificate header in the described request counts for nothing there.

use keygate_extauthz::pb::envoy::service::auth::v3::CheckRequest;
use keygate_extauthz::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use keygate_extauthz::request::check_request;
use keygate_test_support::certs::self_signed_client;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use crate::gateway_ext_authz::{denied, h2c_from, header, ok};
use crate::mtls_routes::{Mtls, PROXY};

crate::on_both_backends!(spawn = crate::mtls_routes::spawn;
    ext_authz_takes_envoys_peer_certificate,
);

/// A check of `GET /svc/orders`, asked from the trusted proxy's address.
fn check(certificate: Option<&str>, headers: &[(&str, &str)]) -> CheckRequest {
    let mut req = check_request(
        "GET",
        "svc.internal",
        "/svc/orders",
        headers,
        Some("192.0.2.9:41000".parse().unwrap()),
    );
    if let Some(pem) = certificate {
        let source = req.attributes.as_mut().unwrap().source.as_mut().unwrap();
        source.certificate = utf8_percent_encode(pem, NON_ALPHANUMERIC).to_string();
    }
    req
}

async fn call(
    t: &Mtls,
    req: CheckRequest,
) -> keygate_extauthz::pb::envoy::service::auth::v3::CheckResponse {
    let addr = t.app.ext_authz_addr.unwrap();
    let mut client = AuthorizationClient::with_origin(
        h2c_from(PROXY.parse().unwrap()),
        format!("http://{addr}").parse().unwrap(),
    );
    client.check(req).await.unwrap().into_inner()
}

async fn ext_authz_takes_envoys_peer_certificate(t: Mtls) {
    let leaf = self_signed_client("svc-e");
    let id = t.pin(&leaf, json!({})).await;

    let allowed = ok(call(&t, check(Some(&leaf.pem), &[])).await);
    assert_eq!(
        header(&allowed.headers, "x-keygate-client-id"),
        Some(id.as_str())
    );
    assert_eq!(header(&allowed.headers, "x-keygate-kind"), Some("client"));

    let (_, none) = denied(call(&t, check(None, &[])).await);
    assert_eq!(none.status.as_ref().unwrap().code, 401);
    let body: Value = serde_json::from_str(&none.body).unwrap();
    assert_eq!(body["code"], "mtls_required");

    // The proxy's header format is for /v1/forward-auth; over gRPC only
    // Envoy's own field names the client's certificate.
    let escaped = utf8_percent_encode(&leaf.pem, NON_ALPHANUMERIC).to_string();
    let (_, header_only) = denied(call(&t, check(None, &[("x-ssl-client-cert", &escaped)])).await);
    let body: Value = serde_json::from_str(&header_only.body).unwrap();
    assert_eq!(body["code"], "mtls_required");
}
