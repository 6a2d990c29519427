//! Envoy's ext_authz over gRPC (`[ext_authz]`), driven by a gRPC client
//! built from the same protos (no Envoy package is reachable from these
//! machines), each case compared with `/v1/forward-auth` for the same
//! request in the same test, so the two contracts cannot drift apart.

use std::net::SocketAddr;

use keygate_extauthz::pb::envoy::config::core::v3::HeaderValueOption;
use keygate_extauthz::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use keygate_extauthz::pb::envoy::service::auth::v3::check_response::HttpResponse;
use keygate_extauthz::pb::envoy::service::auth::v3::{
    CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse,
};
use keygate_extauthz::request::check_request;
use reqwest::StatusCode;
use serde_json::Value;

use crate::gateway_upstream::{Gw, routes_toml, spawn_upstream};
use crate::helpers::{Backend, Response, spawn_app_with_toml};
use crate::on_both_backends;

on_both_backends!(
    spawn = crate::gateway_ext_authz::spawn;
    allowed_with_identity_and_a_verifiable_token,
    refusals_match_the_http_contract,
    routes_by_envoys_host_and_method,
    only_trusted_proxies_may_ask_and_big_checks_are_refused,
);

/// The gateway's routes, with the gRPC listener on and this host trusted.
async fn spawn(backend: Backend) -> Option<Gw> {
    let upstream = spawn_upstream().await;
    let toml = format!(
        "trusted_proxies = [\"127.0.0.1\"]\n[ext_authz]\nlisten = \"127.0.0.1:0\"\n{}",
        routes_toml(upstream.addr)
    );
    let app = spawn_app_with_toml(backend, Some(&toml), |_| {}).await?;
    let url = format!("http://{}", app.gateway_addr.unwrap());
    Some(Gw { app, upstream, url })
}

type H2c = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    tonic::body::Body,
>;

/// HTTP/2 in clear text, as Envoy's gRPC client speaks it: with
/// TCP_NODELAY, as Envoy sets it (without it, a request's HEADERS and DATA
/// frames wait on a delayed ACK: 40 ms a call).
fn h2c() -> H2c {
    h2c_with(hyper_util::client::legacy::connect::HttpConnector::new())
}

/// As [`h2c`], from the local address `from` (a proxy's, say).
pub(crate) fn h2c_from(from: std::net::IpAddr) -> H2c {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_local_address(Some(from));
    h2c_with(connector)
}

fn h2c_with(mut connector: hyper_util::client::legacy::connect::HttpConnector) -> H2c {
    connector.set_nodelay(true);
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build(connector)
}

/// One check over a fresh HTTP/2 connection, as Envoy's gRPC client sends it.
async fn call(addr: SocketAddr, check: CheckRequest) -> Result<CheckResponse, tonic::Status> {
    let mut client =
        AuthorizationClient::with_origin(h2c(), format!("http://{addr}").parse().unwrap());
    client.check(check).await.map(tonic::Response::into_inner)
}

async fn check(
    gw: &Gw,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> CheckResponse {
    let client = Some("192.0.2.7:40000".parse().unwrap());
    let req = check_request(method, host, path, headers, client);
    call(gw.app.ext_authz_addr.unwrap(), req).await.unwrap()
}

/// The same request to `/v1/forward-auth` as Envoy's HTTP filter sends it.
async fn via_http(
    gw: &Gw,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Response {
    let url = format!("{}/v1/forward-auth{path}", gw.app.base);
    let mut req = gw
        .app
        .http
        .request(method.parse().unwrap(), url)
        .header("x-forwarded-host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    gw.app.raw(req).await
}

pub(crate) fn header<'a>(options: &'a [HeaderValueOption], name: &str) -> Option<&'a str> {
    options
        .iter()
        .filter_map(|o| o.header.as_ref())
        .find(|h| h.key == name)
        .map(|h| h.value.as_str())
}

pub(crate) fn ok(res: CheckResponse) -> OkHttpResponse {
    assert_eq!(res.status.as_ref().unwrap().code, 0, "{res:?}");
    match res.http_response {
        Some(HttpResponse::OkResponse(ok)) => ok,
        other => panic!("not allowed: {other:?}"),
    }
}

pub(crate) fn denied(res: CheckResponse) -> (i32, DeniedHttpResponse) {
    let code = res.status.as_ref().unwrap().code;
    match res.http_response {
        Some(HttpResponse::DeniedResponse(d)) => (code, d),
        other => panic!("not denied: {other:?}"),
    }
}

/// A denial carries what the HTTP refusal carries: status, every header
/// (WWW-Authenticate, RateLimit, Retry-After, content type) and the body.
fn assert_same_refusal(grpc: &DeniedHttpResponse, http: &Response) {
    assert_eq!(
        grpc.status.as_ref().unwrap().code,
        i32::from(http.status.as_u16())
    );
    let body: Value = serde_json::from_str(&grpc.body).unwrap();
    assert_eq!(body, http.body);
    for name in [
        "content-type",
        "www-authenticate",
        "ratelimit",
        "ratelimit-policy",
        "retry-after",
    ] {
        let want = http.headers.get(name).map(|v| v.to_str().unwrap());
        assert_eq!(header(&grpc.headers, name), want, "{name}");
    }
}

async fn allowed_with_identity_and_a_verifiable_token(gw: Gw) {
    let (key_id, key) = gw.key(&["orders:read"]).await;
    let creds = [("x-api-key", key.as_str())];
    let grpc = ok(check(&gw, "GET", "shop.example", "/keys/1?x=1", &creds).await);
    let http = via_http(&gw, "GET", "shop.example", "/keys/1?x=1", &creds).await;
    assert_eq!(http.status, StatusCode::OK);
    // Every identity header of the 200, on the upstream request.
    for name in [
        "x-keygate-subject",
        "x-keygate-kind",
        "x-keygate-key-id",
        "x-keygate-scopes",
        "x-keygate-tenant",
        "x-keygate-route",
    ] {
        let want = http.headers[name].to_str().unwrap();
        assert_eq!(header(&grpc.headers, name), Some(want), "{name}");
    }
    assert_eq!(header(&grpc.headers, "x-keygate-key-id"), Some(&*key_id));
    assert_eq!(header(&grpc.headers, "cache-control"), None);
    let auth = header(&grpc.headers, "authorization").unwrap();
    let claims = crate::gateway::token_claims(&gw, auth, "keys").await;
    assert_eq!(claims["sub"], key_id.as_str());
    // The client's credentials stop here; the token replaced Authorization.
    assert!(grpc.headers_to_remove.contains(&"x-api-key".to_owned()));
    assert!(!grpc.headers_to_remove.contains(&"authorization".to_owned()));
    // A passthrough route keeps them.
    let pass = ok(check(&gw, "GET", "shop.example", "/pass", &creds).await);
    assert!(pass.headers_to_remove.is_empty(), "{pass:?}");
    // A JWT route.
    let customer = gw.user_token("user-1", &["customer"], Some("acme"));
    let bearer = format!("Bearer {customer}");
    let user = ok(check(&gw, "GET", "h", "/user/me", &[("authorization", &bearer)]).await);
    assert_eq!(header(&user.headers, "x-keygate-subject"), Some("user-1"));
    assert_eq!(header(&user.headers, "x-keygate-roles"), Some("customer"));
    assert_eq!(header(&user.headers, "x-keygate-tenant"), Some("acme"));
}

async fn refusals_match_the_http_contract(gw: Gw) {
    let (_, weak) = gw.key(&[]).await;
    let weak = [("x-api-key", weak.as_str())];
    // 401 without credentials.
    let (code, grpc) = denied(check(&gw, "GET", "h", "/keys/1", &[]).await);
    let http = via_http(&gw, "GET", "h", "/keys/1", &[]).await;
    assert_eq!(http.status, StatusCode::UNAUTHORIZED);
    assert_eq!(code, 16, "UNAUTHENTICATED");
    assert_same_refusal(&grpc, &http);
    // 403 insufficient scope.
    let (code, grpc) = denied(check(&gw, "GET", "h", "/keys/1", &weak).await);
    let http = via_http(&gw, "GET", "h", "/keys/1", &weak).await;
    assert_eq!(http.body["code"], "insufficient_scope");
    assert_eq!(code, 7, "PERMISSION_DENIED");
    assert_same_refusal(&grpc, &http);
    // 403 for a path no route takes.
    let (_, grpc) = denied(check(&gw, "GET", "h", "/nowhere", &[]).await);
    let http = via_http(&gw, "GET", "h", "/nowhere", &[]).await;
    assert_eq!(http.body["code"], "no_route");
    assert_same_refusal(&grpc, &http);
    // 429: both contracts count against the one route limit (2 a minute).
    ok(check(&gw, "GET", "h", "/limited", &weak).await);
    let second = via_http(&gw, "GET", "h", "/limited", &weak).await;
    assert_eq!(second.status, StatusCode::OK);
    let (code, grpc) = denied(check(&gw, "GET", "h", "/limited", &weak).await);
    let http = via_http(&gw, "GET", "h", "/limited", &weak).await;
    assert_eq!(http.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(code, 8, "RESOURCE_EXHAUSTED");
    assert_same_refusal(&grpc, &http);
    assert!(header(&grpc.headers, "ratelimit").is_some());
}

async fn routes_by_envoys_host_and_method(gw: Gw) {
    let route = |res: CheckResponse| header(&ok(res).headers, "x-keygate-route").map(str::to_owned);
    let by_host = route(check(&gw, "GET", "api.example", "/h/1", &[]).await);
    assert_eq!(by_host.as_deref(), Some("host"));
    let http = via_http(&gw, "GET", "api.example", "/h/1", &[]).await;
    assert_eq!(http.headers["x-keygate-route"], "host");
    // Envoy's :authority is the host judged, whatever the client forwards.
    let forged = [("x-forwarded-host", "api.example")];
    let other = route(check(&gw, "GET", "www.example", "/h/1", &forged).await);
    assert_eq!(other.as_deref(), Some("h-any"));
    // The method: the get-only route refuses a DELETE, as HTTP does.
    assert_eq!(
        route(check(&gw, "GET", "h", "/get/1", &[]).await).as_deref(),
        Some("get-only")
    );
    let (_, grpc) = denied(check(&gw, "DELETE", "h", "/get/1", &[]).await);
    let http = via_http(&gw, "DELETE", "h", "/get/1", &[]).await;
    assert_eq!(http.body["code"], "method_not_allowed");
    assert_same_refusal(&grpc, &http);
    // A request line Envoy would not send as origin-form cannot be judged.
    let (_, odd) = denied(check(&gw, "OPTIONS", "h", "*", &[]).await);
    assert_eq!(odd.status.unwrap().code, 403);
    assert!(odd.body.contains("invalid_original"), "{}", odd.body);
}

async fn only_trusted_proxies_may_ask_and_big_checks_are_refused(gw: Gw) {
    let addr = gw.app.ext_authz_addr.unwrap();
    let huge = "a".repeat(100 * 1024);
    let big = check_request("GET", "h", "/open", &[("x-big", &huge)], None);
    let refused = call(addr, big).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::OutOfRange);
    // The listener still answers after refusing one.
    ok(check(&gw, "GET", "h", "/open", &[]).await);
    // A server that trusts another proxy answers this host no decision.
    let toml = format!(
        "trusted_proxies = [\"10.9.9.9\"]\n[ext_authz]\nlisten = \"127.0.0.1:0\"\n{}",
        routes_toml(gw.upstream.addr)
    );
    let node = spawn_app_with_toml(gw.app.backend, Some(&toml), |_| {})
        .await
        .unwrap();
    let req = check_request("GET", "h", "/open", &[], None);
    let refused = call(node.ext_authz_addr.unwrap(), req).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    // The listener drains and stops with the server.
    let mut node = node;
    let ext_authz = node.ext_authz_addr.unwrap();
    node.stop().await;
    let req = check_request("GET", "h", "/open", &[], None);
    assert!(call(ext_authz, req).await.is_err());
}

/// Not a test of speed (no limit is asserted): prints the wall time of one
/// check over gRPC and over `/v1/forward-auth`, each on one kept-open
/// connection, in the same run. `cargo test -p keygate --test api --
/// --ignored check_cost --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn check_cost_against_http() {
    let Some(gw) = spawn(Backend::Sqlite).await else {
        return;
    };
    let (_, key) = gw.key(&["orders:read"]).await;
    let origin = format!("http://{}", gw.app.ext_authz_addr.unwrap());
    let mut grpc = AuthorizationClient::with_origin(h2c(), origin.parse().unwrap());
    let n = 2000;
    for (label, path) in [("auth none", "/open"), ("api key", "/keys/1")] {
        let headers = [("x-api-key", key.as_str())];
        let req = check_request("GET", "h", path, &headers, None);
        let started = std::time::Instant::now();
        for _ in 0..n {
            grpc.check(req.clone()).await.unwrap();
        }
        let grpc_us = started.elapsed().as_micros() / n;
        let url = format!("{}/v1/forward-auth{path}", gw.app.base);
        let started = std::time::Instant::now();
        for _ in 0..n {
            let res = gw.app.http.get(&url).header("x-api-key", &key).send().await;
            res.unwrap().bytes().await.unwrap();
        }
        let http_us = started.elapsed().as_micros() / n;
        println!("{label}: gRPC {grpc_us} µs/check, HTTP {http_us} µs/request");
    }
}
