//! `/v1/forward-auth` as nginx, Traefik/Caddy and Envoy call it, and real
//! nginx with `auth_request` in front of a test upstream (docs/nginx.conf).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

use crate::gateway_upstream::Gw;
use crate::helpers::{Response, services_required};
use crate::on_both_backends;

on_both_backends!(
    spawn = crate::gateway_upstream::spawn_gateway;
    nginx_style_headers,
    traefik_style_headers,
    envoy_style_path_prefix,
    refusals_are_401_403_429_never_5xx,
    nginx_auth_request_allows_and_refuses,
);

fn fa(gw: &Gw, method: reqwest::Method, suffix: &str) -> reqwest::RequestBuilder {
    gw.app
        .http
        .request(method, format!("{}/v1/forward-auth{suffix}", gw.app.base))
}

fn assert_allowed(res: &Response) {
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(
        res.body,
        serde_json::Value::String(String::new()),
        "empty body"
    );
    assert_eq!(res.headers["cache-control"], "no-store");
}

async fn nginx_style_headers(gw: Gw) {
    let (key_id, key) = gw.key(&["orders:read"]).await;
    // A credential-looking query in the original URI is the client's URL:
    // evaluated on the headers as usual, not refused.
    let res = gw
        .app
        .raw(
            fa(&gw, reqwest::Method::GET, "")
                .header("x-original-uri", "/keys/1?token=abc")
                .header("x-original-method", "GET")
                .header("x-api-key", &key),
        )
        .await;
    assert_allowed(&res);
    assert_eq!(res.headers["x-keygate-key-id"], key_id.as_str());
    assert_eq!(res.headers["x-keygate-subject"], key_id.as_str());
    assert_eq!(res.headers["x-keygate-kind"], "client");
    assert_eq!(res.headers["x-keygate-scopes"], "orders:read");
    let auth = res.headers["authorization"].to_str().unwrap();
    assert!(auth.starts_with("Bearer ey"), "{auth}");
    // The same identity on the proxy gets the same token.
    let again = gw
        .app
        .raw(
            fa(&gw, reqwest::Method::GET, "")
                .header("x-original-uri", "/keys/2")
                .header("x-api-key", &key),
        )
        .await;
    assert_eq!(again.headers["authorization"], auth);
}

async fn traefik_style_headers(gw: Gw) {
    let customer = gw.user_token("user-1", &["customer"], Some("acme"));
    let res = gw
        .app
        .raw(
            fa(&gw, reqwest::Method::GET, "")
                .header("x-forwarded-method", "GET")
                .header("x-forwarded-uri", "/user/me?x=1")
                .header("x-forwarded-host", "api.example")
                .header("x-forwarded-proto", "https")
                .bearer_auth(&customer),
        )
        .await;
    assert_allowed(&res);
    assert_eq!(res.headers["x-keygate-subject"], "user-1");
    assert_eq!(res.headers["x-keygate-roles"], "customer");
    assert_eq!(res.headers["x-keygate-tenant"], "acme");
    // Method from the header: the get-only route refuses a POST.
    let res = gw
        .app
        .raw(
            fa(&gw, reqwest::Method::GET, "")
                .header("x-forwarded-method", "POST")
                .header("x-forwarded-uri", "/get/x"),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.body["code"], "method_not_allowed");
    // Host from X-Forwarded-Host picks the host route.
    let res = gw
        .app
        .raw(
            fa(&gw, reqwest::Method::GET, "")
                .header("x-forwarded-uri", "/h/1")
                .header("x-forwarded-host", "api.example"),
        )
        .await;
    assert_allowed(&res);
    assert_eq!(res.headers["x-keygate-route"], "host");
}

async fn envoy_style_path_prefix(gw: Gw) {
    let (_, key) = gw.key(&["orders:read"]).await;
    // Envoy keeps the method and prefixes the original path (and query).
    let res = gw
        .app
        .raw(fa(&gw, reqwest::Method::POST, "/keys/1?api_key=x").header("x-api-key", &key))
        .await;
    assert_allowed(&res);
    let res = gw.app.raw(fa(&gw, reqwest::Method::DELETE, "/get/1")).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    // The `route` parameter names a route directly.
    let customer = gw.user_token("user-1", &["customer"], None);
    let res = gw
        .app
        .raw(fa(&gw, reqwest::Method::GET, "?route=user").bearer_auth(&customer))
        .await;
    assert_allowed(&res);
    assert_eq!(res.headers["x-keygate-route"], "user");
}

async fn refusals_are_401_403_429_never_5xx(gw: Gw) {
    let (_, weak) = gw.key(&[]).await;
    let at = |uri: &'static str| {
        fa(&gw, reqwest::Method::GET, "")
            .header("x-original-uri", uri)
            .header("x-original-method", "GET")
    };
    let res = gw.app.raw(at("/keys/1")).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers["www-authenticate"], "Bearer realm=\"keygate\"");
    let res = gw.app.raw(at("/keys/1").header("x-api-key", &weak)).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.body["code"], "insufficient_scope");
    let res = gw.app.raw(at("/nowhere")).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.body["code"], "no_route");
    for _ in 0..2 {
        let ok = gw.app.raw(at("/limited").header("x-api-key", &weak)).await;
        assert_eq!(ok.status, StatusCode::OK);
    }
    let res = gw.app.raw(at("/limited").header("x-api-key", &weak)).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers["retry-after"], "30");
    assert_eq!(res.headers["ratelimit"], "\"limited\";r=0;t=30");
}

/// nginx from the Debian package, run as the test's own user in a temp dir.
pub struct Nginx {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn nginx_binary() -> Option<String> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(str::to_owned)
}

/// docs/nginx.conf with this test's addresses, inside a minimal main block.
fn start_nginx(bin: &str, keygate: &str, upstream: &str) -> Nginx {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::gateway_upstream::closed_port();
    let docs = include_str!("../../../../docs/nginx.conf")
        .replace("127.0.0.1:8080", keygate)
        .replace("127.0.0.1:9001", upstream)
        .replace("listen 127.0.0.1:8081", &format!("listen 127.0.0.1:{port}"));
    run_nginx(bin, dir, port, &docs)
}

/// nginx serving `docs` (the inside of an `http { }` block) on `port`,
/// with its files in `dir`.
pub fn run_nginx(bin: &str, dir: tempfile::TempDir, port: u16, docs: &str) -> Nginx {
    let d = dir.path().display();
    let conf = format!(
        "master_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 64; }}\nhttp {{\n  access_log {d}/access.log;\n  \
         client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n  \
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{docs}\n}}\n"
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let mut child = Command::new(bin)
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir.path())
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("stderr.log")).unwrap(),
        ))
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Nginx {
                child,
                port,
                _dir: dir,
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let err = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
    let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
    panic!("nginx did not start: {err}\n{log}");
}

async fn nginx_auth_request_allows_and_refuses(gw: Gw) {
    let Some(bin) = nginx_binary() else {
        assert!(
            !services_required(),
            "KEYGATE_TEST_REQUIRE_SERVICES=1 but nginx is not installed (apt-get install nginx)"
        );
        eprintln!("skipping the nginx case: nginx is not installed");
        return;
    };
    let nginx = start_nginx(
        &bin,
        &gw.app.addr.to_string(),
        &gw.upstream.addr.to_string(),
    );
    let url = |p: &str| format!("http://127.0.0.1:{}{p}", nginx.port);
    let (key_id, key) = gw.key(&["orders:read"]).await;
    let (_, weak) = gw.key(&[]).await;

    let res = gw
        .app
        .raw(
            gw.app
                .http
                .get(url("/keys/1?token=t"))
                .header("x-api-key", &key),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let seen = &res.body["headers"];
    assert!(!seen.to_string().contains(&key), "the key reached the app");
    assert_eq!(seen["x-keygate-key-id"], key_id.as_str());
    assert!(
        seen["authorization"]
            .as_str()
            .unwrap()
            .starts_with("Bearer ey")
    );
    assert_eq!(res.body["path"], "/keys/1");

    let res = gw.app.raw(gw.app.http.get(url("/keys/1"))).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers["www-authenticate"], "Bearer realm=\"keygate\"");

    let res = gw
        .app
        .raw(gw.app.http.get(url("/keys/1")).header("x-api-key", &weak))
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);

    for _ in 0..2 {
        let res = gw
            .app
            .raw(gw.app.http.get(url("/limited")).header("x-api-key", &weak))
            .await;
        assert_eq!(res.status, StatusCode::OK);
    }
    let res = gw
        .app
        .raw(gw.app.http.get(url("/limited")).header("x-api-key", &weak))
        .await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.body);
    assert_eq!(res.headers["retry-after"], "30");
    assert_eq!(res.headers["ratelimit"], "\"limited\";r=0;t=30");
    assert_eq!(res.body["code"], "rate_limited");

    // Identity headers a client sends itself never reach the app: keygate's
    // replace them, and those that do not apply are removed.
    let forged = |req: reqwest::RequestBuilder| {
        req.header("x-keygate-kind", "user")
            .header("x-keygate-subject", "usr_forged")
            .header("x-keygate-client-id", "key_forged")
            .header("x-keygate-roles", "admin")
            .header("x-keygate-scopes", "everything")
            .header("x-keygate-tenant", "other")
    };
    let res = gw
        .app
        .raw(forged(gw.app.http.get(url("/keys/1"))).header("x-api-key", &key))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let seen = &res.body["headers"];
    assert_eq!(seen["x-keygate-kind"], "client", "{seen}");
    assert_eq!(seen["x-keygate-subject"], key_id.as_str());
    assert_eq!(seen["x-keygate-client-id"], key_id.as_str());
    assert_eq!(seen["x-keygate-scopes"], "orders:read");
    for name in ["x-keygate-roles", "x-keygate-tenant"] {
        assert!(seen.get(name).is_none(), "{name}: {seen}");
    }
    let customer = gw.user_token("user-1", &["customer"], None);
    let res = gw
        .app
        .raw(forged(gw.app.http.get(url("/user/me"))).bearer_auth(&customer))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let seen = &res.body["headers"];
    assert_eq!(seen["x-keygate-kind"], "user", "{seen}");
    assert_eq!(seen["x-keygate-subject"], "user-1");
    assert!(seen.get("x-keygate-client-id").is_none(), "{seen}");
}
