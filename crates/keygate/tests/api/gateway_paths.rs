//! What keygate judges is what the upstream serves: equivalent spellings of
//! a guarded path, URIs that hide a path in their query, forged client
//! addresses, and requests whose framing or authority could be read two ways.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::gateway_upstream::{Gw, spawn_upstream};
use crate::helpers::{Backend, spawn_app_with_toml};
use crate::on_both_backends;

on_both_backends!(
    spawn = crate::gateway_paths::spawn_paths;
    equivalent_paths_cannot_pass_a_guard,
    forwarded_path_is_the_judged_path,
    params_are_refused_unless_the_route_keeps_them,
    case_insensitive_routes_match_any_case,
    forward_auth_judges_the_path_not_the_query,
    forward_auth_judges_equivalent_paths_alike,
    forward_auth_refuses_what_it_cannot_judge,
    forged_client_addresses_are_ignored,
    forwarded_for_counts_only_from_trusted_proxies,
    only_websocket_upgrades_pass_and_only_where_allowed,
    a_forged_upgrade_answer_is_not_spliced,
    transfer_codings_other_than_chunked_are_refused,
    one_authority_per_request,
);

const WAIT: Duration = Duration::from_secs(10);

fn paths_toml(up: SocketAddr) -> String {
    let u = format!("http://{up}");
    let route = |name: &str, prefix: &str, extra: &str| {
        format!(
            "[[gateway.routes]]\nname = \"{name}\"\nmatch = {{ path_prefix = \"{prefix}\" }}\n\
             upstream = \"{u}\"\n{extra}\n"
        )
    };
    let mut t =
        String::from("trusted_proxies = [\"10.0.0.0/8\"]\n[gateway]\nlisten = \"127.0.0.1:0\"\n");
    t += &route("public", "/", "auth = \"none\"\nforward_token = \"none\"");
    t += &route("admin", "/admin", "auth = \"api_key\"");
    t += &route(
        "legacy",
        "/legacy",
        "auth = \"api_key\"\npath_params = \"keep\"\nstrip_prefix = true",
    );
    t += &route(
        "files",
        "/Files",
        "auth = \"api_key\"\ncase_insensitive = true",
    );
    t += &route(
        "perip",
        "/perip",
        "auth = \"none\"\nrate_limit = { limit = 2, period_seconds = 60, burst = 2 }",
    );
    t += &route("live", "/live", "auth = \"none\"\nwebsocket = true");
    t += "[[gateway.routes]]\nname = \"hosted\"\nmatch = { path_prefix = \"/h\", host = \"b.example\" }\n";
    t += &format!("upstream = \"{u}\"\nauth = \"api_key\"\n");
    t
}

pub async fn spawn_paths(backend: Backend) -> Option<Gw> {
    let upstream = spawn_upstream().await;
    let toml = paths_toml(upstream.addr);
    let app = spawn_app_with_toml(backend, Some(&toml), |_| {}).await?;
    let url = format!("http://{}", app.gateway_addr.unwrap());
    Some(Gw { app, upstream, url })
}

/// One HTTP/1.1 exchange written by hand (reqwest would normalize the path
/// before sending it); the connection closes after the answer.
async fn raw_http(addr: SocketAddr, head: &str) -> (u16, String, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, tcp.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

async fn get(gw: &Gw, path: &str, extra: &str) -> (u16, String, String) {
    let addr = gw.app.gateway_addr.unwrap();
    raw_http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n"),
    )
    .await
}

/// The upstream's echo of what it received.
fn echoed(body: &str) -> Value {
    let json = body
        .split_once('{')
        .map(|(_, rest)| format!("{{{rest}"))
        .unwrap_or_default();
    // A chunked body ends with a chunk trailer after the JSON.
    let end = json.rfind('}').map_or(0, |i| i + 1);
    serde_json::from_str(&json[..end]).unwrap_or(Value::Null)
}

async fn equivalent_paths_cannot_pass_a_guard(gw: Gw) {
    for path in [
        "/admin/secret",
        "/%61dmin/secret",
        "/%61%64%6D%69%6E/secret",
        "//admin/secret",
        "///admin//secret",
    ] {
        let (status, _, body) = get(&gw, path, "").await;
        assert_eq!(status, 401, "{path}: {body}");
    }
    // Matched as /admin/secret, whose route refuses `;params`.
    let (status, _, body) = get(&gw, "/;x/admin/secret", "").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("path_params"), "{body}");
    for path in [
        "/admin/../admin/secret",
        "/public/%2e%2e/admin/secret",
        "/public/..;/admin/secret",
        "/public%2fadmin/secret",
        "/public/%2e/admin",
        "/public/%252e%252e/admin/secret",
        "/%2561dmin/secret",
    ] {
        let (status, _, body) = get(&gw, path, "").await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("invalid_path"), "{path}: {body}");
    }
}

async fn forwarded_path_is_the_judged_path(gw: Gw) {
    let (_, key) = gw.key(&[]).await;
    let (status, _, body) = get(
        &gw,
        "//%61dmin//x%2dy/%c3%a9%3f?q=%61",
        &format!("X-API-Key: {key}\r\n"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seen = echoed(&body);
    assert_eq!(seen["path"], "/admin/x-y/%C3%A9%3F", "{body}");
    // The query is the client's business: passed as sent.
    assert_eq!(seen["query"], "q=%61", "{body}");
}

async fn params_are_refused_unless_the_route_keeps_them(gw: Gw) {
    let (_, key) = gw.key(&[]).await;
    let auth = format!("X-API-Key: {key}\r\n");
    let (status, _, body) = get(&gw, "/admin;x/secret", &auth).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("path_params"), "{body}");
    // Without credentials it is still the guarded route that refuses.
    let (status, _, _) = get(&gw, "/admin;x/secret", "").await;
    assert!(status == 400 || status == 401, "{status}");
    let (status, _, body) = get(&gw, "/legacy;v=2/a;b=1", &auth).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(echoed(&body)["path"], "/a;b=1", "{body}");
    let (status, _, _) = get(&gw, "/;v/legacy/a", "").await;
    assert_eq!(status, 401);
}

async fn case_insensitive_routes_match_any_case(gw: Gw) {
    for path in ["/files/x", "/FILES/x", "/Files/x", "/fIlEs"] {
        let (status, _, body) = get(&gw, path, "").await;
        assert_eq!(status, 401, "{path}: {body}");
    }
    // Case-sensitive routes stay so: /ADMIN is another path to them.
    let (status, _, _) = get(&gw, "/ADMIN/x", "").await;
    assert_eq!(status, 200);
}

fn forward_auth(gw: &Gw) -> reqwest::RequestBuilder {
    gw.app.http.get(format!("{}/v1/forward-auth", gw.app.base))
}

async fn forward_auth_judges_the_path_not_the_query(gw: Gw) {
    for uri in [
        "/admin/secret?next=https://example.com/public",
        "/admin/secret?x=http://a/b#c",
        "/admin/secret#https://example.com/",
        "http://b.example/admin/secret?u=https://x/public",
    ] {
        for header in ["x-original-uri", "x-forwarded-uri"] {
            let res = gw.app.raw(forward_auth(&gw).header(header, uri)).await;
            assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{header}: {uri}");
        }
    }
    // Envoy: the original request line under the prefix.
    let res = gw
        .app
        .raw(gw.app.http.get(format!(
            "{}/v1/forward-auth/admin/secret?next=https://example.com/public",
            gw.app.base
        )))
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let res = gw
        .app
        .raw(forward_auth(&gw).header("x-original-uri", "/public/page?next=/admin"))
        .await;
    assert_eq!(res.status, StatusCode::OK);
}

async fn forward_auth_judges_equivalent_paths_alike(gw: Gw) {
    for uri in [
        "/%61dmin/secret",
        "/%61dmin/%73ecret",
        "/FILES/a",
        "/admin/",
    ] {
        let res = gw
            .app
            .raw(forward_auth(&gw).header("x-original-uri", uri))
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    let (_, key) = gw.key(&[]).await;
    let res = gw
        .app
        .raw(
            forward_auth(&gw)
                .header("x-original-uri", "/admin;x/secret")
                .header("x-api-key", &key),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.body["code"], "path_params");
}

async fn forward_auth_refuses_what_it_cannot_judge(gw: Gw) {
    for uri in [
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public%2Fadmin",
        "/public/..;/admin",
        "/a%zz",
        "admin",
        "*",
        "//example.com/admin",
        "//admin/secret",
        "/public//admin",
        "/;x/admin",
    ] {
        let res = gw
            .app
            .raw(forward_auth(&gw).header("x-original-uri", uri))
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{uri}: {}", res.body);
    }
    // A header that is there but not text is not the same as no header.
    let bytes = reqwest::header::HeaderValue::from_bytes(b"/admin/\xc3\xa9").unwrap();
    let res = gw
        .app
        .raw(forward_auth(&gw).header("x-original-uri", bytes))
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    // A host in the URI that contradicts the forwarded host.
    let res = gw
        .app
        .raw(
            forward_auth(&gw)
                .header("x-original-uri", "http://a.example/h/x")
                .header("x-forwarded-host", "b.example"),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
}

async fn forged_client_addresses_are_ignored(gw: Gw) {
    let forged = "X-Real-IP: 6.6.6.6\r\nTrue-Client-IP: 6.6.6.6\r\nX-Client-IP: 6.6.6.6\r\n\
                  CF-Connecting-IP: 6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\n";
    let (status, _, body) = get(&gw, "/public/x", forged).await;
    assert_eq!(status, 200);
    let headers = &echoed(&body)["headers"];
    for name in [
        "x-real-ip",
        "true-client-ip",
        "x-client-ip",
        "cf-connecting-ip",
    ] {
        assert!(
            headers.get(name).is_none(),
            "{name} reached the upstream: {headers}"
        );
    }
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1", "{headers}");
    // Rotating forged addresses does not escape a per-address limit.
    for i in 0..3 {
        let forged = format!("X-Real-IP: 6.6.6.{i}\r\nX-Forwarded-For: 6.6.7.{i}\r\n");
        let (status, _, _) = get(&gw, "/perip", &forged).await;
        assert_eq!(status, if i < 2 { 200 } else { 429 }, "request {i}");
    }
}

/// The admin listener's peer is 127.0.0.1, which is not among this
/// configuration's trusted proxies (10.0.0.0/8): its headers are not believed.
async fn forwarded_for_counts_only_from_trusted_proxies(gw: Gw) {
    let ask = |i: u32| {
        forward_auth(&gw)
            .header("x-original-uri", "/perip")
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .header("x-real-ip", format!("198.51.100.{i}"))
    };
    for i in 0..3u32 {
        let res = gw.app.raw(ask(i)).await;
        let want = if i < 2 {
            StatusCode::OK
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(res.status, want, "request {i}");
    }
}

fn upgrade_head(addr: SocketAddr, path: &str, protocol: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: {protocol}\r\n{extra}\r\n"
    )
}

const WS: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

async fn only_websocket_upgrades_pass_and_only_where_allowed(gw: Gw) {
    let addr = gw.app.gateway_addr.unwrap();
    let (status, head, _) = raw_http(addr, &upgrade_head(addr, "/live/ws", "websocket", WS)).await;
    assert_eq!(status, 101, "{head}");
    // Not a WebSocket route: refused, not tunnelled outside routing.
    let (status, _, body) =
        raw_http(addr, &upgrade_head(addr, "/public/ws", "websocket", WS)).await;
    assert_eq!(status, 400, "{body}");
    let h2c = "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n";
    let head = format!(
        "GET /live/ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n{h2c}\r\n"
    );
    let (status, _, body) = raw_http(addr, &head).await;
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = raw_http(addr, &upgrade_head(addr, "/live/ws", "tcp-tunnel", "")).await;
    assert_eq!(status, 400, "{body}");
    // A WebSocket handshake needs its key.
    let (status, _, body) = raw_http(addr, &upgrade_head(addr, "/live/ws", "websocket", "")).await;
    assert_eq!(status, 400, "{body}");
}

async fn a_forged_upgrade_answer_is_not_spliced(gw: Gw) {
    let addr = gw.app.gateway_addr.unwrap();
    // The test upstream's `/ws-wrong` answers 101 with an accept value that
    // does not belong to the client's key.
    let (status, _, body) =
        raw_http(addr, &upgrade_head(addr, "/live/ws-wrong", "websocket", WS)).await;
    assert_eq!(status, 502, "{body}");
}

async fn transfer_codings_other_than_chunked_are_refused(gw: Gw) {
    let addr = gw.app.gateway_addr.unwrap();
    let head = format!(
        "POST /public/echo-body HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    );
    let (status, _, body) = raw_http(addr, &head).await;
    assert_eq!(status, 501, "{body}");
    let head = format!(
        "POST /public/echo-body HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    );
    let (status, _, body) = raw_http(addr, &head).await;
    assert_eq!(status, 200, "{body}");
    // The admin listener too.
    let head = format!(
        "POST /v1/keys/verify HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n",
        gw.app.addr
    );
    let (status, _, body) = raw_http(gw.app.addr, &head).await;
    assert_eq!(status, 501, "{body}");
}

async fn one_authority_per_request(gw: Gw) {
    let addr = gw.app.gateway_addr.unwrap();
    // Absolute-form for b.example's guarded route, Host naming another.
    let head = "GET http://b.example/h/x HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n";
    let (status, _, body) = raw_http(addr, head).await;
    assert_eq!(status, 400, "{body}");
    let head =
        "GET /h/x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n";
    let (status, _, body) = raw_http(addr, head).await;
    assert_eq!(status, 400, "{body}");
    // Agreeing: routed by the one authority, and told upstream.
    let head = "GET http://B.example/h/x HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n";
    let (status, _, body) = raw_http(addr, head).await;
    assert_eq!(status, 401, "{body}");
    let (_, key) = gw.key(&[]).await;
    let head = format!(
        "GET http://b.example:80/h/x HTTP/1.1\r\nHost: b.example\r\nX-API-Key: {key}\r\nConnection: close\r\n\r\n"
    );
    let (status, _, body) = raw_http(addr, &head).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(echoed(&body)["headers"]["x-forwarded-host"], "b.example:80");
}
