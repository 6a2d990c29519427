//! Route modes `mtls` and `mtls_and_jwt`, and RFC 8705 certificate-bound
//! tokens, end to end: keygate serves TLS asking for client certificates
//! (`client_auth = "request"`, a CA and self-signed pins), the gateway
//! listener reads the connection's certificate, forward-auth a trusted
//! proxy's nginx header, and `/oauth2/token` binds what it issues.

use std::path::PathBuf;

use keygate_test_support::Backend;
use keygate_test_support::certs::{TestCa, TestCert, self_signed_client};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::gateway_upstream::{Upstream, spawn_upstream};
use crate::helpers::{Response, TestApp, spawn_app_with_toml};

crate::on_both_backends!(spawn = crate::mtls_routes::spawn;
    an_mtls_route_admits_the_registered_client_and_no_one_else,
    mtls_and_jwt_needs_both_and_one_tenant,
    forward_auth_takes_the_certificate_from_the_trusted_proxys_header,
    the_token_endpoint_binds_tokens_to_the_connections_certificate,
);

/// The proxy forward-auth trusts.
pub(crate) const PROXY: &str = "127.0.0.2";

pub struct Mtls {
    pub(crate) app: TestApp,
    _upstream: Upstream,
    gateway: String,
    server_cert: PathBuf,
    pub(crate) mesh: TestCa,
    _dir: tempfile::TempDir,
}

fn route(name: &str, prefix: &str, up: &str, extra: &str) -> String {
    format!(
        "[[gateway.routes]]\nname = \"{name}\"\nmatch = {{ path_prefix = \"{prefix}\" }}\nupstream = \"{up}\"\n{extra}\n"
    )
}

pub async fn spawn(backend: Backend) -> Option<Mtls> {
    spawn_with(backend, "").await
}

/// As `spawn`, with `extra` appended to the configuration file.
pub(crate) async fn spawn_with(backend: Backend, extra: &str) -> Option<Mtls> {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = crate::tls::server_cert(dir.path(), "server");
    let mesh = TestCa::new("mesh");
    let mesh_file = mesh.write(dir.path(), "mesh.pem");
    let upstream = spawn_upstream().await;
    let up = format!("http://{}", upstream.addr);
    let mut toml = format!(
        "trusted_proxies = [\"{PROXY}\"]\n\
         [tls]\ncert = {cert:?}\nkey = {key:?}\nclient_auth = \"request\"\n\
         client_ca_files = [{mesh_file:?}]\nclient_auth_self_signed = true\n\
         [mtls]\ncas = {{ mesh = {mesh_file:?} }}\n\
         [forward_auth]\nclient_cert_header = \"nginx\"\n\
         [ext_authz]\nlisten = \"127.0.0.1:0\"\n\
         [gateway]\nlisten = \"127.0.0.1:0\"\n"
    );
    toml += &route(
        "svc",
        "/svc",
        &up,
        "auth = \"mtls\"\nscopes = [\"orders:read\"]",
    );
    toml += &route(
        "admin",
        "/admin",
        &up,
        "auth = \"mtls\"\nscopes = [\"admin:all\"]",
    );
    toml += &route(
        "both",
        "/both",
        &up,
        "auth = \"mtls_and_jwt\"\nroles = [\"customer\"]",
    );
    toml += &route(
        "machines",
        "/machines",
        &up,
        "auth = \"jwt\"\njwt_subjects = \"clients\"",
    );
    toml += extra;
    let mut app = spawn_app_with_toml(backend, Some(&toml), |_| {}).await?;
    // The admin API is https now: talk to it as a client trusting it.
    app.base = format!("https://127.0.0.1:{}", app.addr.port());
    app.http = crate::tls::client_trusting(&cert);
    let gateway = format!("https://127.0.0.1:{}", app.gateway_addr.unwrap().port());
    Some(Mtls {
        app,
        _upstream: upstream,
        gateway,
        server_cert: cert,
        mesh,
        _dir: dir,
    })
}

impl Mtls {
    /// A client presenting `leaf` (or none), trusting keygate's certificate.
    pub(crate) fn client(&self, leaf: Option<&TestCert>) -> reqwest::Client {
        let pem = std::fs::read(&self.server_cert).unwrap();
        let mut b = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()]);
        if let Some(leaf) = leaf {
            let id = format!("{}{}", leaf.pem, leaf.key_pem);
            b = b.identity(reqwest::Identity::from_pem(id.as_bytes()).unwrap());
        }
        b.build().unwrap()
    }

    /// Registers a client pinned to `leaf`'s thumbprint.
    pub(crate) async fn pin(&self, leaf: &TestCert, extra: Value) -> String {
        let mut body = json!({
            "name": "svc", "owner": "team-a", "scopes": ["orders:read"],
            "thumbprint": hex::encode(Sha256::digest(&leaf.der)),
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let res = self.app.post("/v1/clients", body).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        res.body["id"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn call(
        &self,
        leaf: Option<&TestCert>,
        path: &str,
        bearer: Option<&str>,
    ) -> Answer {
        let mut req = self.client(leaf).get(format!("{}{path}", self.gateway));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

/// The upstream echoes what it received; the internal token's claims.
fn internal_claims(body: &Value) -> Value {
    let auth = body["headers"]["authorization"]
        .as_str()
        .unwrap_or_default();
    let token = auth.strip_prefix("Bearer ").unwrap_or_default();
    let payload = token.split('.').nth(1).unwrap_or_default();
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

async fn an_mtls_route_admits_the_registered_client_and_no_one_else(t: Mtls) {
    let leaf = self_signed_client("svc-a");
    let id = t
        .pin(
            &leaf,
            json!({"rate_limit": {"limit": 3, "period_seconds": 60}}),
        )
        .await;
    let ok = t.call(Some(&leaf), "/svc/orders", None).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let claims = internal_claims(&ok.body);
    assert_eq!(claims["kg_kind"], "client", "{}", ok.body);
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["scope"], "orders:read");

    let none = t.call(None, "/svc/orders", None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{}", none.body);
    assert_eq!(none.body["code"], "mtls_required");
    let stranger = t
        .call(Some(&self_signed_client("svc-x")), "/svc/orders", None)
        .await;
    assert_eq!(
        stranger.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        stranger.body
    );
    // A self-signed certificate no one pinned is not trusted, and the
    // answer says nothing the certificate carries.
    assert_eq!(stranger.body["code"], "mtls_untrusted");
    assert!(!stranger.body.to_string().contains("svc-x"));
    let unknown = t
        .call(Some(&t.mesh.client("svc-m")), "/svc/orders", None)
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED, "{}", unknown.body);
    assert_eq!(unknown.body["code"], "mtls_unknown_client");

    let scoped = t.call(Some(&leaf), "/admin/x", None).await;
    assert_eq!(scoped.status, StatusCode::FORBIDDEN, "{}", scoped.body);
    assert_eq!(scoped.body["code"], "insufficient_scope");
    // Its own limit: 3 a minute, one spent above.
    for _ in 0..2 {
        assert_eq!(
            t.call(Some(&leaf), "/svc/o", None).await.status,
            StatusCode::OK
        );
    }
    let over = t.call(Some(&leaf), "/svc/o", None).await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS, "{}", over.body);

    let res = t
        .app
        .post(&format!("/v1/clients/{id}/revoke"), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let revoked = t.call(Some(&leaf), "/svc/orders", None).await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED, "{}", revoked.body);
    assert_eq!(revoked.body["code"], "client_revoked");
}

fn user_token(app: &TestApp, tenant: Option<&str>) -> String {
    let tokens = &app.state().tokens;
    let mut claims = serde_json::Map::new();
    claims.insert("roles".into(), json!(["customer"]));
    if let Some(t) = tenant {
        claims.insert("tenant".into(), t.into());
    }
    tokens
        .issue(keygate_core::jwt::TokenRequest {
            kind: keygate_core::jwt::TokenKind::User,
            subject: "usr_alice".into(),
            audience: tokens.config().audience.clone(),
            ttl: 300,
            not_issued_before: None,
            claims,
        })
        .unwrap()
        .token
}

async fn mtls_and_jwt_needs_both_and_one_tenant(t: Mtls) {
    let leaf = self_signed_client("svc-b");
    let id = t.pin(&leaf, json!({"tenant": "acme"})).await;
    let user = user_token(&t.app, Some("acme"));
    let ok = t.call(Some(&leaf), "/both/x", Some(&user)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let claims = internal_claims(&ok.body);
    assert_eq!(claims["kg_kind"], "user");
    assert_eq!(claims["sub"], "usr_alice");
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["tenant"], "acme");

    let no_jwt = t.call(Some(&leaf), "/both/x", None).await;
    assert_eq!(no_jwt.status, StatusCode::UNAUTHORIZED, "{}", no_jwt.body);
    assert_eq!(no_jwt.body["code"], "missing_credentials");
    let no_cert = t.call(None, "/both/x", Some(&user)).await;
    assert_eq!(no_cert.body["code"], "mtls_required", "{}", no_cert.body);
    let other = user_token(&t.app, Some("globex"));
    let mismatch = t.call(Some(&leaf), "/both/x", Some(&other)).await;
    assert_eq!(mismatch.status, StatusCode::FORBIDDEN, "{}", mismatch.body);
    assert_eq!(mismatch.body["code"], "tenant_mismatch");
}

async fn forward_auth_takes_the_certificate_from_the_trusted_proxys_header(t: Mtls) {
    let leaf = self_signed_client("svc-c");
    let id = t.pin(&leaf, json!({})).await;
    let escaped = utf8_percent_encode(&leaf.pem, NON_ALPHANUMERIC).to_string();
    let app = &t.app;
    let ask = |from: &'static str, header: Option<String>| {
        let client = reqwest::Client::builder()
            .local_address(from.parse::<std::net::IpAddr>().unwrap())
            .tls_certs_only([reqwest::Certificate::from_pem(
                &std::fs::read(&t.server_cert).unwrap(),
            )
            .unwrap()])
            .build()
            .unwrap();
        let mut req = client
            .get(format!("{}/v1/forward-auth", app.base))
            .header("x-original-uri", "/svc/orders")
            .header("x-original-method", "GET");
        if let Some(h) = header {
            req = req.header("x-ssl-client-cert", h);
        }
        async move { app.raw(req).await }
    };
    let ok = ask(PROXY, Some(escaped.clone())).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.headers["x-keygate-client-id"], id.as_str());
    assert_eq!(ok.headers["x-keygate-kind"], "client");
    let missing = ask(PROXY, None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED, "{}", missing.body);
    assert_eq!(missing.body["code"], "mtls_required");
    // From a peer that is not a trusted proxy, the header is no certificate.
    let stranger = ask("127.0.0.1", Some(escaped)).await;
    assert_eq!(
        stranger.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        stranger.body
    );
    assert_eq!(stranger.body["code"], "mtls_required");
}

/// `POST /oauth2/token` over a connection presenting `leaf` (or none).
pub(crate) async fn token(t: &Mtls, leaf: Option<&TestCert>, form: &str) -> Response {
    let req = t
        .client(leaf)
        .post(format!("{}/oauth2/token", t.app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned());
    t.app.raw(req).await
}

fn cnf_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["cnf"].clone()
}

async fn the_token_endpoint_binds_tokens_to_the_connections_certificate(t: Mtls) {
    // self_signed_tls_client_auth: a client pinned by thumbprint.
    let pinned = self_signed_client("svc-d");
    let pinned_id = t.pin(&pinned, json!({})).await;
    // tls_client_auth: a client matched by name under the mesh CA.
    let issued = t.mesh.client("svc-e");
    let res = t
        .app
        .post(
            "/v1/clients",
            json!({"name": "e", "owner": "o", "scopes": ["orders:read", "orders:write"],
                   "ca": "mesh", "subject": "CN=svc-e"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let issued_id = res.body["id"].as_str().unwrap().to_owned();

    for (leaf, id) in [(&pinned, &pinned_id), (&issued, &issued_id)] {
        let form = format!("grant_type=client_credentials&client_id={id}&scope=orders:read");
        let res = token(&t, Some(leaf), &form).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let access = res.body["access_token"].as_str().unwrap().to_owned();
        let x5t = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            Sha256::digest(&leaf.der),
        );
        assert_eq!(cnf_of(&access), json!({"x5t#S256": x5t}));
        assert_eq!(res.body["scope"], "orders:read");

        // Replayed through the gateway: only with its certificate.
        let good = t.call(Some(leaf), "/machines/x", Some(&access)).await;
        assert_eq!(good.status, StatusCode::OK, "{}", good.body);
        let stolen = t
            .call(
                Some(&self_signed_client("thief")),
                "/machines/x",
                Some(&access),
            )
            .await;
        assert_eq!(stolen.status, StatusCode::UNAUTHORIZED, "{}", stolen.body);
        assert_eq!(stolen.body["code"], "invalid_token");
        let bare = t.call(None, "/machines/x", Some(&access)).await;
        assert_eq!(bare.status, StatusCode::UNAUTHORIZED, "{}", bare.body);

        // Introspection says what it is bound to.
        let res = t
            .app
            .raw(
                t.app
                    .http
                    .post(format!("{}/oauth2/introspect", t.app.base))
                    .bearer_auth(&t.app.root_key)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("token={access}")),
            )
            .await;
        assert_eq!(res.body["active"], true, "{}", res.body);
        assert_eq!(res.body["cnf"], json!({"x5t#S256": x5t}));
        assert_eq!(res.body["client_id"], id.as_str());
    }

    // Refusals are RFC 6749 invalid_client, with nothing of the certificate.
    let form = format!("grant_type=client_credentials&client_id={pinned_id}");
    let res = token(&t, None, &form).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
    assert_eq!(res.body["error"], "invalid_client");
    let res = token(&t, Some(&issued), &form).await;
    assert_eq!(res.body["error"], "invalid_client", "{}", res.body);
    assert!(!res.body.to_string().contains("svc-e"));

    // An API key's token over a connection with a certificate is bound too.
    let (key_id, secret) = t
        .app
        .create_key(json!({"name": "k", "owner": "o", "scopes": []}))
        .await;
    let form = format!("grant_type=client_credentials&client_id={key_id}&client_secret={secret}");
    let res = token(&t, Some(&pinned), &form).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let access = res.body["access_token"].as_str().unwrap();
    assert!(cnf_of(access)["x5t#S256"].is_string());
    let res = token(&t, None, &form).await;
    assert_eq!(
        cnf_of(res.body["access_token"].as_str().unwrap()),
        Value::Null
    );

    let meta = t.app.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(
        meta.body["tls_client_certificate_bound_access_tokens"],
        true
    );
    let methods = meta.body["token_endpoint_auth_methods_supported"].to_string();
    assert!(
        methods.contains("\"tls_client_auth\"") && methods.contains("self_signed_tls_client_auth")
    );
}
