//! `auth = "hmac"` gateway routes: requests signed with the core signer
//! (RFC 9421) through the proxy and forward-auth, every refusal code, the
//! body held to its `Content-Digest`, scopes and rate limits.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keygate_core::httpsig::base::SignatureParams;
use keygate_core::httpsig::{UrlParts, content_digest_sha256, sign_hmac_sha256};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::gateway::{assert_problem, internal_claims};
use crate::gateway_upstream::{Gw, Received};
use crate::helpers::Response;

crate::on_both_backends!(
    spawn = crate::gateway_upstream::spawn_gateway;
    signed_requests_reach_the_upstream_with_the_internal_jwt,
    every_refusal_has_its_own_code,
    a_body_that_does_not_match_its_digest_never_reaches_the_upstream_whole,
    scopes_rate_limits_and_credits_apply_to_the_signing_key,
    forward_auth_checks_the_signature_but_not_the_body,
    a_bodys_content_type_and_encoding_must_be_signed,
);

pub const GET_PARTS: [&str; 4] = ["@method", "@authority", "@path", "@query"];
pub const BODY_PARTS: [&str; 4] = ["@method", "@authority", "@path", "content-digest"];

pub struct Signer {
    pub key_id: String,
    secret: Vec<u8>,
}

/// A key (created from `body`) with a signing secret.
pub async fn signer(gw: &Gw, body: Value) -> Signer {
    let (key_id, _) = gw.app.create_key(body).await;
    let root = gw.app.root_key.clone();
    let res = gw
        .app
        .request(
            Method::POST,
            &format!("/v1/keys/{key_id}/signing-secret"),
            Some(&root),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let secret = STANDARD
        .decode(res.body["secret"].as_str().unwrap())
        .unwrap();
    Signer { key_id, secret }
}

pub async fn plain_signer(gw: &Gw) -> Signer {
    signer(
        gw,
        json!({ "name": "signer", "owner": "app-owner", "scopes": ["orders:write"] }),
    )
    .await
}

pub fn now(gw: &Gw) -> i64 {
    keygate_core::MillisClock::now_secs(gw.app.clock.as_ref())
}

impl Signer {
    /// Signs `method url` (and `body`'s digest, when given) as a client
    /// would, created at `created`; returns the headers to send.
    pub fn headers(
        &self,
        method: &str,
        url: &str,
        body: Option<&[u8]>,
        components: &[&str],
        created: i64,
    ) -> Vec<(String, String)> {
        self.headers_with(method, url, body, &[], components, created)
    }

    /// As `headers`, sending `extra` headers too (signed if `components`
    /// names them).
    pub fn headers_with(
        &self,
        method: &str,
        url: &str,
        body: Option<&[u8]>,
        extra: &[(&str, &str)],
        components: &[&str],
        created: i64,
    ) -> Vec<(String, String)> {
        let parts = UrlParts::parse(url).unwrap();
        let mut headers: Vec<(String, String)> = extra
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        if let Some(b) = body {
            headers.push(("content-digest".to_owned(), content_digest_sha256(b)));
        }
        let nonce = keygate_core::keys::apikey::random_id("", 22).unwrap();
        let params = SignatureParams::new(components, created, &nonce, &self.key_id);
        let (input, sig) =
            sign_hmac_sha256(&parts.view(method, &headers), "sig1", &params, &self.secret).unwrap();
        headers.push(("signature-input".into(), input));
        headers.push(("signature".into(), sig));
        headers
    }

    /// A request to the gateway, signed for exactly what it sends.
    fn request(
        &self,
        gw: &Gw,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        components: &[&str],
        created: i64,
    ) -> reqwest::RequestBuilder {
        let url = format!("{}{path}", gw.url);
        let mut req = gw.app.http.request(method.clone(), &url);
        for (n, v) in self.headers(method.as_str(), &url, body, components, created) {
            req = req.header(n, v);
        }
        if let Some(b) = body {
            req = req.body(b.to_vec());
        }
        req
    }
}

pub async fn send(gw: &Gw, req: reqwest::RequestBuilder) -> Response {
    gw.app.raw(req).await
}

pub fn assert_refused(res: &Response, code: &str) {
    assert_problem(res, StatusCode::UNAUTHORIZED, code);
    let challenge = res.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Signature "), "{challenge}");
}

async fn signed_requests_reach_the_upstream_with_the_internal_jwt(gw: Gw) {
    let s = plain_signer(&gw).await;
    let get = s.request(
        &gw,
        Method::GET,
        "/signed/orders?b=2&a=1",
        None,
        &GET_PARTS,
        now(&gw),
    );
    let res = send(&gw, get).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["query"], "b=2&a=1");
    let seen = &res.body["headers"];
    assert!(seen.get("signature").is_none() && seen.get("signature-input").is_none());
    let claims = internal_claims(&gw, &res, "signed").await;
    assert_eq!(claims["client_id"], s.key_id.as_str());
    assert_eq!(claims["sub"], s.key_id.as_str());
    assert_eq!(claims["kg_kind"], "client");
    assert_eq!(claims["kg_owner"], "app-owner");
    assert_eq!(claims["scope"], "orders:write");

    let body = br#"{"item": 7}"#;
    let post = s.request(
        &gw,
        Method::POST,
        "/signed/orders",
        Some(body),
        &BODY_PARTS,
        now(&gw),
    );
    let res = send(&gw, post).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let seen = &res.body["headers"];
    assert_eq!(seen["content-digest"], content_digest_sha256(body));
    assert!(seen.get("signature").is_none() && seen.get("signature-input").is_none());
    let claims = internal_claims(&gw, &res, "signed").await;
    assert_eq!(claims["client_id"], s.key_id.as_str());

    // A body of many frames streams through whole once it matched.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let post = s.request(
        &gw,
        Method::POST,
        "/signed/sink",
        Some(&big),
        &BODY_PARTS,
        now(&gw),
    );
    let res = gw.app.http.execute(post.build().unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let got = gw.upstream.received.lock().await.recv().await.unwrap();
    assert_eq!(
        got,
        Received {
            body: big,
            complete: true
        }
    );
}

async fn every_refusal_has_its_own_code(gw: Gw) {
    let s = plain_signer(&gw).await;
    let res = send(&gw, gw.get("/signed/orders")).await;
    assert_refused(&res, "signature_missing");

    // `@query` left out although the request has one.
    let req = s.request(
        &gw,
        Method::GET,
        "/signed/orders?id=7",
        None,
        &["@method", "@authority", "@path"],
        now(&gw),
    );
    assert_refused(&send(&gw, req).await, "signature_component_missing");

    // A body without a signed Content-Digest.
    let req = s
        .request(
            &gw,
            Method::POST,
            "/signed/orders",
            None,
            &GET_PARTS[..3],
            now(&gw),
        )
        .body("unsigned body");
    assert_refused(&send(&gw, req).await, "signature_component_missing");

    // Signed now, arriving 301 s later by the server's clock; and signed
    // 301 s ahead of it.
    let req = s.request(
        &gw,
        Method::GET,
        "/signed/o",
        None,
        &GET_PARTS[..3],
        now(&gw),
    );
    gw.app.clock.advance_secs(301);
    assert_refused(&send(&gw, req).await, "signature_expired");
    let ahead = now(&gw) + 301;
    let req = s.request(&gw, Method::GET, "/signed/o", None, &GET_PARTS[..3], ahead);
    assert_refused(&send(&gw, req).await, "signature_expired");

    // The exact same request twice.
    let req = s.request(
        &gw,
        Method::GET,
        "/signed/o?x=1",
        None,
        &GET_PARTS,
        now(&gw),
    );
    let again = req.try_clone().unwrap();
    assert_eq!(send(&gw, req).await.status, StatusCode::OK);
    assert_refused(&send(&gw, again).await, "signature_replayed");

    // Signed for one path, sent to another.
    let url = format!("{}/signed/a", gw.url);
    let mut req = gw.app.http.get(format!("{}/signed/b", gw.url));
    for (n, v) in s.headers("GET", &url, None, &GET_PARTS[..3], now(&gw)) {
        req = req.header(n, v);
    }
    assert_refused(&send(&gw, req).await, "signature_invalid");

    let unknown = Signer {
        key_id: format!(
            "key_{}",
            keygate_core::keys::apikey::random_id("", 16).unwrap()
        ),
        secret: s.secret.clone(),
    };
    let req = unknown.request(
        &gw,
        Method::GET,
        "/signed/o",
        None,
        &GET_PARTS[..3],
        now(&gw),
    );
    assert_refused(&send(&gw, req).await, "signature_key_unknown");

    let res = gw
        .app
        .post(&format!("/v1/keys/{}/revoke", s.key_id), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let req = s.request(
        &gw,
        Method::GET,
        "/signed/o",
        None,
        &GET_PARTS[..3],
        now(&gw),
    );
    assert_refused(&send(&gw, req).await, "signature_key_revoked");

    for reason in [
        "signature_missing",
        "signature_replayed",
        "signature_key_revoked",
    ] {
        let metric =
            format!("keygate_gateway_auth_failures_total{{route=\"signed\",reason=\"{reason}\"}}");
        assert!(gw.app.metric(&metric).await >= 1.0, "{metric}");
    }
}

async fn a_body_that_does_not_match_its_digest_never_reaches_the_upstream_whole(gw: Gw) {
    let s = plain_signer(&gw).await;
    let signed_for = vec![b'a'; 300_000];
    let sent = vec![b'b'; 300_000];
    let req = s
        .request(
            &gw,
            Method::POST,
            "/signed/sink",
            Some(&signed_for),
            &BODY_PARTS,
            now(&gw),
        )
        .body(sent.clone());
    assert_refused(&send(&gw, req).await, "content_digest_mismatch");

    // A good request afterwards; whatever the upstream got of the bad one
    // (if it got that far) came before it, and was never complete.
    let good = b"good body".to_vec();
    let req = s.request(
        &gw,
        Method::POST,
        "/signed/sink",
        Some(&good),
        &BODY_PARTS,
        now(&gw),
    );
    assert_eq!(send(&gw, req).await.status, StatusCode::OK);
    let mut received = gw.upstream.received.lock().await;
    loop {
        let got = received.recv().await.unwrap();
        if got.complete && got.body == good {
            break;
        }
        assert!(!got.complete, "a wrong body arrived whole");
        assert!(got.body.len() < sent.len(), "{} bytes", got.body.len());
        assert!(got.body.iter().all(|b| *b == b'b'));
    }
    while let Ok(got) = received.try_recv() {
        assert!(!got.complete && got.body.len() < sent.len());
    }
    let metric =
        "keygate_gateway_auth_failures_total{route=\"signed\",reason=\"content_digest_mismatch\"}";
    assert!(gw.app.metric(metric).await >= 1.0);
}

async fn scopes_rate_limits_and_credits_apply_to_the_signing_key(gw: Gw) {
    let reader = signer(
        &gw,
        json!({ "name": "r", "owner": "o", "scopes": ["orders:read"] }),
    )
    .await;
    let req = reader.request(
        &gw,
        Method::GET,
        "/sscoped/x",
        None,
        &GET_PARTS[..3],
        now(&gw),
    );
    assert_problem(
        &send(&gw, req).await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    let writer = plain_signer(&gw).await;
    let req = writer.request(
        &gw,
        Method::GET,
        "/sscoped/x",
        None,
        &GET_PARTS[..3],
        now(&gw),
    );
    assert_eq!(send(&gw, req).await.status, StatusCode::OK);

    // The route's limit, per key id.
    for _ in 0..2 {
        let req = writer.request(
            &gw,
            Method::GET,
            "/slimited/x",
            None,
            &GET_PARTS[..3],
            now(&gw),
        );
        assert_eq!(send(&gw, req).await.status, StatusCode::OK);
    }
    let req = writer.request(
        &gw,
        Method::GET,
        "/slimited/x",
        None,
        &GET_PARTS[..3],
        now(&gw),
    );
    let res = send(&gw, req).await;
    assert_problem(&res, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(res.headers.contains_key("retry-after"));
    assert!(res.headers.contains_key("ratelimit-policy"));
    let other = signer(&gw, json!({ "name": "x", "owner": "o" })).await;
    let req = other.request(
        &gw,
        Method::GET,
        "/slimited/x",
        None,
        &GET_PARTS[..3],
        now(&gw),
    );
    assert_eq!(send(&gw, req).await.status, StatusCode::OK);

    // The key's own limit and credits, as for an API key.
    let limited = signer(
        &gw,
        json!({ "name": "l", "owner": "o", "rate_limit": { "limit": 1, "period_seconds": 60 } }),
    )
    .await;
    let req = limited.request(
        &gw,
        Method::GET,
        "/signed/x",
        None,
        &GET_PARTS[..3],
        now(&gw),
    );
    assert_eq!(send(&gw, req).await.status, StatusCode::OK);
    let req = limited.request(
        &gw,
        Method::GET,
        "/signed/x",
        None,
        &GET_PARTS[..3],
        now(&gw),
    );
    let res = send(&gw, req).await;
    assert_problem(&res, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(res.headers.contains_key("retry-after"));
    let metered = signer(&gw, json!({ "name": "m", "owner": "o", "remaining": 1 })).await;
    let req = metered.request(
        &gw,
        Method::GET,
        "/signed/x",
        None,
        &GET_PARTS[..3],
        now(&gw),
    );
    assert_eq!(send(&gw, req).await.status, StatusCode::OK);
    let req = metered.request(
        &gw,
        Method::GET,
        "/signed/x",
        None,
        &GET_PARTS[..3],
        now(&gw),
    );
    assert_refused(&send(&gw, req).await, "usage_exceeded");
}

async fn forward_auth_checks_the_signature_but_not_the_body(gw: Gw) {
    let s = plain_signer(&gw).await;
    let fa = |method: &str, uri: &str, headers: Vec<(String, String)>| {
        let mut req = gw
            .app
            .http
            .get(format!("{}/v1/forward-auth", gw.app.base))
            .header("x-original-uri", uri)
            .header("x-original-method", method)
            .header("x-forwarded-host", "api.example")
            .header("x-forwarded-proto", "https");
        for (n, v) in headers {
            req = req.header(n, v);
        }
        req
    };
    // The original request as the client sent it, `@scheme` included.
    let url = "https://api.example/signed/orders?id=7";
    let mut parts = GET_PARTS.to_vec();
    parts.push("@scheme");
    let headers = s.headers("GET", url, None, &parts, now(&gw));
    let res = send(&gw, fa("GET", "/signed/orders?id=7", headers.clone())).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.headers["x-keygate-key-id"], s.key_id.as_str());
    assert_eq!(res.headers["x-keygate-subject"], s.key_id.as_str());
    assert_eq!(res.headers["x-keygate-kind"], "client");
    assert_eq!(res.headers["x-keygate-scopes"], "orders:write");
    let auth = res.headers["authorization"].to_str().unwrap();
    assert!(auth.starts_with("Bearer ey"), "{auth}");
    assert_refused(
        &send(&gw, fa("GET", "/signed/orders?id=7", headers)).await,
        "signature_replayed",
    );

    // A POST: the body never comes here, its signed digest header does.
    let url = "https://api.example/signed/orders";
    let headers = s.headers("POST", url, Some(b"{}"), &BODY_PARTS, now(&gw));
    let res = send(&gw, fa("POST", "/signed/orders", headers)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    // A digest header the signature does not cover is refused.
    let mut headers = s.headers("POST", url, None, &GET_PARTS[..3], now(&gw));
    headers.push(("content-digest".into(), content_digest_sha256(b"{}")));
    assert_refused(
        &send(&gw, fa("POST", "/signed/orders", headers)).await,
        "signature_component_missing",
    );
    let res = send(&gw, fa("GET", "/signed/orders", Vec::new())).await;
    assert_refused(&res, "signature_missing");
}

async fn a_bodys_content_type_and_encoding_must_be_signed(gw: Gw) {
    let s = plain_signer(&gw).await;
    let body = br#"{"item": 7}"#;
    let post = |path: &str, sent: &[(&str, &str)], signed: &[(&str, &str)], parts: &[&str]| {
        let url = format!("{}{path}", gw.url);
        let mut req = gw.app.http.post(&url).body(body.to_vec());
        for (n, v) in s.headers_with("POST", &url, Some(body), signed, parts, now(&gw)) {
            if !sent.iter().any(|(name, _)| name.eq_ignore_ascii_case(&n)) {
                req = req.header(n, v);
            }
        }
        for (n, v) in sent {
            req = req.header(*n, *v);
        }
        req
    };
    let json = [("content-type", "application/json")];
    let mut typed = BODY_PARTS.to_vec();
    typed.push("content-type");
    // An intermediary could change an unsigned Content-Type: refused.
    let res = send(&gw, post("/signed/orders", &json, &[], &BODY_PARTS)).await;
    assert_refused(&res, "signature_component_missing");
    assert!(
        res.body["detail"]
            .as_str()
            .unwrap()
            .contains("content-type")
    );
    // Signed, it passes and the upstream reads the body as it was signed.
    let res = send(&gw, post("/signed/orders", &[], &json, &typed)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["headers"]["content-type"], "application/json");
    // Changed on the way: the signature no longer holds.
    let res = send(
        &gw,
        post(
            "/signed/orders",
            &[("content-type", "text/plain")],
            &json,
            &typed,
        ),
    )
    .await;
    assert_refused(&res, "signature_invalid");
    // Content-Encoding the same.
    let gzip = [("content-encoding", "gzip")];
    let res = send(&gw, post("/signed/orders", &gzip, &[], &BODY_PARTS)).await;
    assert_refused(&res, "signature_component_missing");
    let mut encoded = BODY_PARTS.to_vec();
    encoded.push("content-encoding");
    let res = send(&gw, post("/signed/orders", &[], &gzip, &encoded)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    // A route may let them go unsigned.
    let res = send(&gw, post("/sloose/orders", &json, &[], &BODY_PARTS)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    // Forward-auth holds a body announced by its digest to the same rule.
    let url = "https://api.example/signed/orders";
    let fa = |headers: Vec<(String, String)>| {
        let mut req = gw
            .app
            .http
            .get(format!("{}/v1/forward-auth", gw.app.base))
            .header("x-original-uri", "/signed/orders")
            .header("x-original-method", "POST")
            .header("x-forwarded-host", "api.example")
            .header("x-forwarded-proto", "https")
            .header("content-type", "application/json");
        for (n, v) in headers.into_iter().filter(|(n, _)| n != "content-type") {
            req = req.header(n, v);
        }
        req
    };
    let unsigned = s.headers("POST", url, Some(body), &BODY_PARTS, now(&gw));
    assert_refused(
        &send(&gw, fa(unsigned)).await,
        "signature_component_missing",
    );
    let signed = s.headers_with("POST", url, Some(body), &json, &typed, now(&gw));
    let res = send(&gw, fa(signed)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
}

/// On a TLS gateway listener the scheme a signature covers is `https`, and
/// the upstream is told so; a client's claim of another scheme fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_signed_scheme_is_https() {
    use crate::gateway_upstream::{routes_toml, spawn_upstream};
    use crate::helpers::{Backend, spawn_app_with_toml};
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = crate::tls::server_cert(certs.path(), "gw");
    let upstream = spawn_upstream().await;
    let toml = routes_toml(upstream.addr);
    let mut app = spawn_app_with_toml(Backend::Sqlite, Some(&toml), |args| {
        args.tls_cert = Some(cert.clone());
        args.tls_key = Some(key.clone());
    })
    .await
    .unwrap();
    // The admin listener serves the same certificate.
    app.base = app.base.replacen("http://", "https://", 1);
    app.http = crate::tls::client_trusting(&cert);
    let url = format!("https://{}", app.gateway_addr.unwrap());
    let gw = Gw { app, upstream, url };
    let s = plain_signer(&gw).await;
    let client = gw.app.http.clone();
    let parts = ["@method", "@scheme", "@authority", "@path"];
    let target = format!("{}/signed/x", gw.url);
    let signed_as = |scheme_url: &str| {
        let mut req = client.get(&target);
        for (n, v) in s.headers("GET", scheme_url, None, &parts, now(&gw)) {
            req = req.header(n, v);
        }
        req
    };
    let res = send(&gw, signed_as(&target)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["headers"]["x-forwarded-proto"], "https");
    let as_http = target.replacen("https://", "http://", 1);
    let res = send(&gw, signed_as(&as_http).header("x-forwarded-proto", "http")).await;
    assert_refused(&res, "signature_invalid");
}
