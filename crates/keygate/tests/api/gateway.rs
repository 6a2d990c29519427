//! The gateway: routing, each auth mode's allow and refusal, scopes, roles,
//! the route rate limit with its headers, stripped credentials and the
//! internal JWT the upstream sees (verified with keygate-verify against the
//! JWKS), the mint cache, reload, and `keygate gateway check`.

use keygate_verify::{Validation, Verifier};
use reqwest::StatusCode;
use serde_json::Value;

use crate::gateway_upstream::{Gw, routes_toml};
use crate::helpers::Response;
use crate::on_both_backends;

on_both_backends!(
    spawn = crate::gateway_upstream::spawn_gateway;
    routes_by_host_prefix_and_method,
    api_key_routes_check_the_key_and_its_scopes,
    jwt_routes_check_the_token_and_its_roles,
    either_and_both_modes,
    route_rate_limit_answers_429_with_ratelimit_fields,
    upstream_sees_an_internal_jwt_instead_of_credentials,
    internal_tokens_are_minted_once_per_identity,
    reload_swaps_routes_and_keeps_them_on_a_bad_file,
);

async fn send(gw: &Gw, req: reqwest::RequestBuilder) -> Response {
    gw.app.raw(req).await
}

pub fn assert_problem(res: &Response, status: StatusCode, code: &str) {
    assert_eq!(res.status, status, "{}", res.body);
    assert_eq!(res.headers["content-type"], "application/problem+json");
    assert_eq!(res.body["code"], code, "{}", res.body);
}

async fn routes_by_host_prefix_and_method(gw: Gw) {
    let res = send(&gw, gw.get("/open/a?x=1")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["path"], "/open/a");
    assert_eq!(res.body["query"], "x=1");
    assert!(res.headers.contains_key("x-request-id"));
    // Segment boundaries: /openx is no part of /open.
    let res = send(&gw, gw.get("/openx")).await;
    assert_problem(&res, StatusCode::NOT_FOUND, "no_route");
    let res = send(&gw, gw.get("/open")).await;
    assert_eq!(res.status, StatusCode::OK);
    // Host: the route naming it wins; any other host gets the other route.
    let res = send(&gw, gw.get("/h/1").header("host", "API.example:8000")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body["path"], "/by-host/h/1");
    // No identity on an `auth = "none"` route, so no internal token.
    assert!(res.body["headers"].get("authorization").is_none());
    let res = send(&gw, gw.get("/h/1").header("host", "other.example")).await;
    assert_eq!(res.body["path"], "/h/1");
    // Method.
    assert_eq!(send(&gw, gw.get("/get/x")).await.status, StatusCode::OK);
    let res = send(&gw, gw.app.http.post(format!("{}/get/x", gw.url))).await;
    assert_problem(&res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    // strip_prefix onto the upstream's base path.
    let res = send(&gw, gw.get("/strip/deep/er")).await;
    assert_eq!(res.body["path"], "/base/deep/er");
    // A valid incoming request id is kept, end to end.
    let res = send(&gw, gw.get("/open/id").header("x-request-id", "abc-123")).await;
    assert_eq!(res.headers["x-request-id"], "abc-123");
    assert_eq!(res.body["headers"]["x-request-id"], "abc-123");
    assert!(
        gw.app
            .metric("keygate_gateway_requests_total{route=\"open\",class=\"2xx\"}")
            .await
            >= 3.0
    );
}

async fn api_key_routes_check_the_key_and_its_scopes(gw: Gw) {
    let (_, good) = gw.key(&["orders:read"]).await;
    let (_, other) = gw.key(&["billing:read"]).await;
    let res = send(&gw, gw.get("/keys/1")).await;
    assert_problem(&res, StatusCode::UNAUTHORIZED, "missing_credentials");
    assert_eq!(res.headers["www-authenticate"], "Bearer realm=\"keygate\"");
    assert_eq!(
        send(&gw, gw.get("/keys/1").header("x-api-key", &good))
            .await
            .status,
        StatusCode::OK
    );
    // Keys-only route: a Bearer key works too.
    assert_eq!(
        send(&gw, gw.get("/keys/1").bearer_auth(&good)).await.status,
        StatusCode::OK
    );
    let res = send(&gw, gw.get("/keys/1").header("x-api-key", &other)).await;
    assert_problem(&res, StatusCode::FORBIDDEN, "insufficient_scope");
    let res = send(
        &gw,
        gw.get("/keys/1").header("x-api-key", "kg_live_nonsense"),
    )
    .await;
    assert_problem(&res, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert!(
        res.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert!(!res.body.to_string().contains("kg_live_nonsense"));
    assert!(
        gw.app
            .metric(
                "keygate_gateway_auth_failures_total{route=\"keys\",reason=\"insufficient_scope\"}"
            )
            .await
            >= 1.0
    );
}

async fn jwt_routes_check_the_token_and_its_roles(gw: Gw) {
    let customer = gw.user_token("user-1", &["customer"], None);
    let guest = gw.user_token("user-2", &["guest"], None);
    assert_eq!(
        send(&gw, gw.get("/user/me").bearer_auth(&customer))
            .await
            .status,
        StatusCode::OK
    );
    let res = send(&gw, gw.get("/user/me").bearer_auth(&guest)).await;
    assert_problem(&res, StatusCode::FORBIDDEN, "insufficient_role");
    let res = send(&gw, gw.get("/user/me").bearer_auth("e30.e30.sig")).await;
    assert_problem(&res, StatusCode::UNAUTHORIZED, "invalid_token");
    let (_, key) = gw.key(&[]).await;
    let res = send(&gw, gw.get("/user/me").header("x-api-key", &key)).await;
    assert_problem(&res, StatusCode::UNAUTHORIZED, "missing_credentials");
    // Expired: past exp and the leeway.
    gw.app.clock.advance_secs(3600);
    let res = send(&gw, gw.get("/user/me").bearer_auth(&customer)).await;
    assert_problem(&res, StatusCode::UNAUTHORIZED, "invalid_token");
}

async fn either_and_both_modes(gw: Gw) {
    let (key_id, key) = gw.key(&["orders:read"]).await;
    let (_, weak) = gw.key(&[]).await;
    let customer = gw.user_token("user-1", &["customer"], None);
    let guest = gw.user_token("user-2", &["guest"], None);
    // Either: a key (X-API-Key or Bearer) or a JWT.
    for req in [
        gw.get("/either").header("x-api-key", &key),
        gw.get("/either").bearer_auth(&key),
        gw.get("/either").bearer_auth(&customer),
    ] {
        assert_eq!(send(&gw, req).await.status, StatusCode::OK);
    }
    let res = send(&gw, gw.get("/either")).await;
    assert_problem(&res, StatusCode::UNAUTHORIZED, "missing_credentials");
    // Both: the key names the application, the JWT the user.
    let res = send(
        &gw,
        gw.get("/both")
            .header("x-api-key", &key)
            .bearer_auth(&customer),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let claims = internal_claims(&gw, &res, "both").await;
    assert_eq!(claims["sub"], "user-1");
    assert_eq!(claims["client_id"], key_id.as_str());
    assert_eq!(claims["roles"], serde_json::json!(["customer"]));
    assert_eq!(claims["scope"], "orders:read");
    let res = send(&gw, gw.get("/both").header("x-api-key", &key)).await;
    assert_problem(&res, StatusCode::UNAUTHORIZED, "missing_credentials");
    let res = send(&gw, gw.get("/both").bearer_auth(&customer)).await;
    assert_problem(&res, StatusCode::UNAUTHORIZED, "missing_credentials");
    let res = send(
        &gw,
        gw.get("/both")
            .header("x-api-key", &weak)
            .bearer_auth(&customer),
    )
    .await;
    assert_problem(&res, StatusCode::FORBIDDEN, "insufficient_scope");
    let res = send(
        &gw,
        gw.get("/both")
            .header("x-api-key", &key)
            .bearer_auth(&guest),
    )
    .await;
    assert_problem(&res, StatusCode::FORBIDDEN, "insufficient_role");
    // A tenant's application serves its own tenant's users only: not
    // another tenant's, and not a user outside every tenant.
    let (_, acme_key) = gw
        .app
        .create_key(serde_json::json!({
            "name": "acme-app", "owner": "acme", "tenant": "acme", "scopes": ["orders:read"]
        }))
        .await;
    let acme_user = gw.user_token("user-3", &["customer"], Some("acme"));
    let other_user = gw.user_token("user-4", &["customer"], Some("globex"));
    let both = |user: &str| {
        gw.get("/both")
            .header("x-api-key", &acme_key)
            .bearer_auth(user)
    };
    assert_eq!(send(&gw, both(&acme_user)).await.status, StatusCode::OK);
    let res = send(&gw, both(&other_user)).await;
    assert_problem(&res, StatusCode::FORBIDDEN, "tenant_mismatch");
    let res = send(&gw, both(&customer)).await;
    assert_problem(&res, StatusCode::FORBIDDEN, "tenant_mismatch");
}

async fn route_rate_limit_answers_429_with_ratelimit_fields(gw: Gw) {
    let (_, a) = gw.key(&[]).await;
    let (_, b) = gw.key(&[]).await;
    let first = send(&gw, gw.get("/limited").header("x-api-key", &a)).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.headers["ratelimit-policy"], "\"limited\";q=2;w=60");
    assert_eq!(first.headers["ratelimit"], "\"limited\";r=1;t=30");
    assert_eq!(
        send(&gw, gw.get("/limited").header("x-api-key", &a))
            .await
            .status,
        StatusCode::OK
    );
    let res = send(&gw, gw.get("/limited").header("x-api-key", &a)).await;
    assert_problem(&res, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert_eq!(res.headers["retry-after"], "30");
    assert_eq!(res.headers["ratelimit-policy"], "\"limited\";q=2;w=60");
    assert_eq!(res.headers["ratelimit"], "\"limited\";r=0;t=30");
    // Per key: another key has its own budget.
    assert_eq!(
        send(&gw, gw.get("/limited").header("x-api-key", &b))
            .await
            .status,
        StatusCode::OK
    );
    gw.app.clock.advance_secs(30);
    assert_eq!(
        send(&gw, gw.get("/limited").header("x-api-key", &a))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        gw.app
            .metric("keygate_gateway_rate_limited_total{route=\"limited\"}")
            .await,
        1.0
    );
}

/// Verifies the token the upstream received, as a downstream service would:
/// keygate-verify, the JWKS over HTTP, audience = the route's name.
pub async fn internal_claims(gw: &Gw, res: &Response, route: &str) -> Value {
    let auth = res.body["headers"]["authorization"]
        .as_str()
        .expect("internal token");
    token_claims(gw, auth, route).await
}

/// The claims of `Bearer <token>`, verified as `internal_claims` does.
pub async fn token_claims(gw: &Gw, auth: &str, route: &str) -> Value {
    let token = auth.strip_prefix("Bearer ").unwrap();
    let set = gw.app.served_jwks().await;
    let issuer = gw.app.state().tokens.config().issuer.clone();
    let verifier = Verifier::new(set, Validation::new(issuer, route)).unwrap();
    let now = u64::try_from(gw.app.state().tokens.clock().now_secs()).unwrap();
    let claims = verifier
        .verify(token, now)
        .expect("internal token verifies");
    let mut out = serde_json::Map::from_iter(claims.extra.clone());
    out.insert("sub".into(), claims.sub.clone().into());
    out.insert("aud".into(), claims.aud[0].clone().into());
    out.insert("exp".into(), claims.exp.as_f64().into());
    Value::Object(out)
}

async fn upstream_sees_an_internal_jwt_instead_of_credentials(gw: Gw) {
    let (key_id, key) = gw.key(&["orders:read"]).await;
    let res = send(
        &gw,
        gw.get("/keys/1")
            .header("x-api-key", &key)
            .header("signature", "sig1=:AAAA:")
            .header("signature-input", "sig1=()")
            .header("cookie", "theme=dark; __Host-keygate-refresh=r3fr3sh")
            .header("x-keygate-subject", "forged")
            .header("x-forwarded-for", "6.6.6.6"),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let seen = &res.body["headers"];
    let text = seen.to_string();
    assert!(!text.contains(&key), "the key reached the upstream: {text}");
    assert!(!text.contains("r3fr3sh") && !text.contains("forged") && !text.contains("6.6.6.6"));
    assert!(seen.get("signature").is_none() && seen.get("x-api-key").is_none());
    assert_eq!(seen["cookie"], "theme=dark");
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert!(
        seen["forwarded"]
            .as_str()
            .unwrap()
            .starts_with("for=127.0.0.1;host=")
    );
    let claims = internal_claims(&gw, &res, "keys").await;
    assert_eq!(claims["client_id"], key_id.as_str());
    // A key alone: the client is the principal, named by its key id.
    assert_eq!(claims["kg_kind"], "client");
    assert_eq!(claims["sub"], key_id.as_str());
    assert_eq!(claims["kg_owner"], "app-owner");
    assert_eq!(claims["scope"], "orders:read");
    let now = gw.app.state().tokens.clock().now_secs() as f64;
    assert!(claims["exp"].as_f64().unwrap() - now <= 60.0);
    // Passthrough keeps the client's credential; `none` adds nothing.
    let res = send(&gw, gw.get("/pass").header("x-api-key", &key)).await;
    assert_eq!(res.body["headers"]["x-api-key"], key.as_str());
    assert!(res.body["headers"].get("authorization").is_none());
    let res = send(&gw, gw.get("/open").bearer_auth("client-token")).await;
    assert!(res.body["headers"].get("authorization").is_none());
}

async fn internal_tokens_are_minted_once_per_identity(gw: Gw) {
    let (_, key) = gw.key(&["orders:read"]).await;
    let (_, other) = gw.key(&["orders:read"]).await;
    let token = |res: Response| {
        res.body["headers"]["authorization"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let t1 = token(send(&gw, gw.get("/keys/a").header("x-api-key", &key)).await);
    let t2 = token(send(&gw, gw.get("/keys/b").header("x-api-key", &key)).await);
    assert_eq!(t1, t2, "same identity and route: the same token");
    let t3 = token(send(&gw, gw.get("/keys/a").header("x-api-key", &other)).await);
    assert_ne!(t1, t3);
    // With 10 s or less left, a new one is minted.
    gw.app.clock.advance_secs(50);
    let t4 = token(send(&gw, gw.get("/keys/a").header("x-api-key", &key)).await);
    assert_ne!(t1, t4);
}

async fn reload_swaps_routes_and_keeps_them_on_a_bad_file(gw: Gw) {
    let gateway = gw.app.state().gateway.clone().unwrap();
    let path = gw.app.args.config.clone().unwrap();
    let before = gateway.table();
    let mut toml = routes_toml(gw.upstream.addr);
    toml += &format!(
        "[[gateway.routes]]\nname = \"new\"\nmatch = {{ path_prefix = \"/new\" }}\nupstream = \"http://{}\"\nauth = \"none\"\n",
        gw.upstream.addr
    );
    assert_problem(
        &send(&gw, gw.get("/new")).await,
        StatusCode::NOT_FOUND,
        "no_route",
    );
    // A response still streaming when the routes change finishes on the old ones.
    let mut in_flight = gw.get("/open/gated").send().await.unwrap();
    let first = in_flight.chunk().await.unwrap().unwrap();
    assert_eq!(&first[..], b"first;");
    let toml = toml.replace("name = \"open\"", "name = \"opened\"");
    std::fs::write(&path, &toml).unwrap();
    assert_eq!(gateway.reload().unwrap(), before.routes().len() + 1);
    assert_eq!(send(&gw, gw.get("/new")).await.status, StatusCode::OK);
    gw.upstream.release.notify_one();
    assert_eq!(&in_flight.chunk().await.unwrap().unwrap()[..], b"rest");
    assert!(before.by_name("new").is_none() && before.by_name("open").is_some());
    assert!(gateway.table().by_name("opened").is_some());
    std::fs::write(&path, "[gateway]\n[[gateway.routes]]\nname = \"x\"\n").unwrap();
    let errors = gateway.reload().unwrap_err();
    assert!(errors[0].contains("missing field"), "{errors:?}");
    assert_eq!(send(&gw, gw.get("/new")).await.status, StatusCode::OK);
}

#[test]
fn gateway_check_validates_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, routes_toml("127.0.0.1:9".parse().unwrap())).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keygate"))
        .args(["gateway", "check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("OK") && stdout.contains("api_key_and_jwt"),
        "{stdout}"
    );
    let signed = stdout
        .lines()
        .find(|l| l.starts_with("signed-scoped"))
        .unwrap_or_default();
    assert!(
        signed.contains("hmac") && signed.contains("orders:write"),
        "{stdout}"
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[gateway]\n[[gateway.routes]]\nname = \"a\"\nmatch = { path_prefix = \"\" }\nupstream = \"nope\"\nauth = \"jwt\"\nscopes = [\"x\"]\n\
         [[gateway.routes]]\nname = \"s\"\nmatch = { path_prefix = \"/s\" }\nupstream = \"http://127.0.0.1:9\"\nauth = \"hmac\"\nroles = [\"customer\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keygate"))
        .args(["gateway", "check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for needle in [
        "path_prefix: must not be empty",
        "upstream:",
        "scopes: a jwt route",
        "route \"s\": roles: a hmac route takes no JWT",
    ] {
        assert!(stdout.contains(needle), "{needle} missing in {stdout}");
    }
}
