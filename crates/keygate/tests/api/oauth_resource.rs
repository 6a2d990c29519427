//! RFC 8707 resource indicators at `/oauth2/token`, and access tokens
//! encrypted per audience (`[[jwt.audiences]] encrypt`): a client asks for
//! an audience and gets a nested JWT its recipient opens with its private
//! key and verifies against keygate's JWKS; keygate reads those it holds
//! the private key of (gateway routes, introspection, revocation) and
//! says so plainly for those it cannot; unknown resources issue nothing;
//! certificate-bound tokens stay bound inside the encryption.

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::agreement;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use keygate_test_support::certs::self_signed_client;
use keygate_verify::jwe::{Decrypter, DecryptionKey};
use keygate_verify::{Encryption, Validation, Verifier};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::gateway_upstream::{Upstream, spawn_upstream};
use crate::helpers::{TestApp, spawn_app_with_toml};
use crate::mtls_routes::{Mtls, spawn_with, token};
use crate::oauth::form;
use crate::on_both_backends;
use keygate_test_support::Backend;

const PAYMENTS: &str = "https://payments.internal";
const LEDGER: &str = "https://ledger.internal";
const PLAIN: &str = "https://plain.internal";

on_both_backends!(
    spawn = crate::oauth_resource::spawn;
    an_encrypted_audience_gets_a_nested_jwt_its_recipient_reads,
    keygate_reads_what_it_holds_the_key_of_and_says_so_for_the_rest,
    unknown_or_malformed_resources_issue_nothing,
);

/// The key of the audience is never fetched: its own modules.
mod dark {
    use super::an_audience_whose_key_is_not_fetched_gets_no_token;
    crate::on_both_backends!(
        spawn = crate::oauth_resource::spawn_dark;
        an_audience_whose_key_is_not_fetched_gets_no_token,
    );
}

/// Over keygate's TLS, with client certificates: its own `sqlite` and
/// `postgres` modules.
mod bound {
    use super::a_bound_token_stays_bound_inside_the_encryption;
    crate::on_both_backends!(
        spawn = crate::oauth_resource::spawn_mtls;
        a_bound_token_stays_bound_inside_the_encryption,
    );
}

/// A recipient's key pair: the PKCS#8 the recipient keeps, its public JWK.
struct Recipient {
    pkcs8: Vec<u8>,
    x: String,
    y: String,
}

fn recipient() -> Recipient {
    let key = agreement::PrivateKey::generate(&agreement::ECDH_P256).unwrap();
    let pkcs8 = AsDer::<Pkcs8V1Der>::as_der(&key).unwrap().as_ref().to_vec();
    let point = key.compute_public_key().unwrap().as_ref().to_vec();
    Recipient {
        pkcs8,
        x: B64.encode(&point[1..33]),
        y: B64.encode(&point[33..]),
    }
}

impl Recipient {
    fn jwk_toml(&self, kid: &str) -> String {
        format!(
            "{{ kty = \"EC\", crv = \"P-256\", kid = \"{kid}\", x = \"{}\", y = \"{}\" }}",
            self.x, self.y
        )
    }

    fn write_pem(&self, dir: &Path, name: &str) -> String {
        let body = STANDARD.encode(&self.pkcs8);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        );
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path.display().to_string()
    }

    fn decrypter(&self, kid: &str) -> Decrypter {
        let key = DecryptionKey::from_der(&self.pkcs8, Some(kid.into())).unwrap();
        Decrypter::with_key(key).unwrap()
    }
}

/// `[[jwt.audiences]]`: payments (encrypted, keygate holds its key),
/// ledger (encrypted, keygate does not), plain (signed only).
fn audiences(dir: &Path, payments: &Recipient, ledger: &Recipient) -> String {
    format!(
        "[[jwt.audiences]]\naudience = \"{PAYMENTS}\"\nencrypt = {{ jwk = {} }}\n\
         decrypt_jwk_file = \"{}\"\n\
         [[jwt.audiences]]\naudience = \"{LEDGER}\"\nencrypt = {{ jwk = {} }}\n\
         [[jwt.audiences]]\naudience = \"{PLAIN}\"\n",
        payments.jwk_toml("pay-1"),
        payments.write_pem(dir, "payments.pem"),
        ledger.jwk_toml("ledger-1"),
    )
}

fn jwt_route(name: &str, upstream: &str, audience: Option<&str>) -> String {
    let audience = audience.map_or(String::new(), |a| format!("audience = \"{a}\"\n"));
    format!(
        "[[gateway.routes]]\nname = \"{name}\"\nmatch = {{ path_prefix = \"/{name}\" }}\n\
         upstream = \"{upstream}\"\nauth = \"jwt\"\njwt_subjects = \"clients\"\n{audience}"
    )
}

pub struct Fixture {
    app: TestApp,
    _upstream: Upstream,
    gateway: String,
    payments: Recipient,
    ledger: Recipient,
    _dir: tempfile::TempDir,
}

async fn spawn(backend: Backend) -> Option<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let (payments, ledger) = (recipient(), recipient());
    let upstream = spawn_upstream().await;
    let up = format!("http://{}", upstream.addr);
    let toml = format!(
        "{}[gateway]\nlisten = \"127.0.0.1:0\"\n{}{}{}",
        audiences(dir.path(), &payments, &ledger),
        jwt_route("payments", &up, Some(PAYMENTS)),
        jwt_route("ledger", &up, Some(LEDGER)),
        jwt_route("default", &up, None),
    );
    let app = spawn_app_with_toml(backend, Some(&toml), |_| {}).await?;
    let gateway = format!("http://{}", app.gateway_addr.unwrap());
    Some(Fixture {
        app,
        _upstream: upstream,
        gateway,
        payments,
        ledger,
        _dir: dir,
    })
}

impl Fixture {
    async fn key(&self) -> (String, String) {
        self.app
            .create_key(json!({"name": "svc", "owner": "team", "scopes": ["pay:write"]}))
            .await
    }

    /// `/oauth2/token` for the key, with `extra` parameters.
    async fn token(&self, key: &(String, String), extra: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut pairs = vec![("grant_type", "client_credentials")];
        pairs.extend_from_slice(extra);
        let (status, _, body) = form(
            &self.app,
            "/oauth2/token",
            Some((&key.0, &key.1)),
            None,
            &pairs,
        )
        .await;
        (status, body)
    }

    async fn call(&self, path: &str, token: &str) -> StatusCode {
        let res = self
            .app
            .http
            .get(format!("{}{path}", self.gateway))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        res.status()
    }

    async fn oauth(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let (status, _, body) = form(
            &self.app,
            path,
            None,
            Some(&self.app.root_key),
            &[("token", token)],
        )
        .await;
        (status, body)
    }
}

fn header(token: &str) -> Value {
    serde_json::from_slice(&B64.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

fn payload(token: &str) -> Value {
    serde_json::from_slice(&B64.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

/// The recipient's side: its private key, keygate's JWKS, its audience.
async fn recipient_reads(
    app: &TestApp,
    token: &str,
    audience: &str,
    key: &Recipient,
) -> Result<keygate_verify::Claims, keygate_verify::Error> {
    let set = app.served_jwks().await;
    let issuer = app.state().tokens.config().issuer.clone();
    let verifier = Verifier::new(set, Validation::new(issuer, audience))
        .unwrap()
        .with_decryption(Arc::new(key.decrypter("pay-1")), Encryption::Required);
    let now = u64::try_from(app.state().tokens.clock().now_secs()).unwrap();
    verifier.verify_unchecked_binding(token, now)
}

async fn an_encrypted_audience_gets_a_nested_jwt_its_recipient_reads(f: Fixture) {
    let key = f.key().await;
    let (status, body) = f.token(&key, &[("resource", PAYMENTS)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 5, "a compact JWE");
    let h = header(token);
    assert_eq!(
        (&h["alg"], &h["enc"], &h["cty"], &h["kid"]),
        (
            &json!("ECDH-ES+A256KW"),
            &json!("A256GCM"),
            &json!("JWT"),
            &json!("pay-1")
        )
    );
    assert!(
        !token.contains(&B64.encode(key.0.as_bytes())),
        "claims in the clear"
    );
    let claims = recipient_reads(&f.app, token, PAYMENTS, &f.payments)
        .await
        .unwrap();
    assert_eq!(claims.sub.as_deref(), Some(key.0.as_str()));
    assert_eq!(claims.extra["scope"], "pay:write");
    // Not to be read by another audience's key.
    assert!(
        recipient_reads(&f.app, token, PAYMENTS, &f.ledger)
            .await
            .is_err()
    );

    // Without a resource: `[jwt] audience`, signed only, as before.
    let (_, body) = f.token(&key, &[]).await;
    let plain = body["access_token"].as_str().unwrap();
    assert_eq!(plain.split('.').count(), 3);
    assert_eq!(
        payload(plain)["aud"],
        f.app.state().tokens.config().audience.as_str()
    );
    // `audience` as some identity providers name it; an audience without
    // `encrypt` is signed only.
    let (_, body) = f.token(&key, &[("audience", PLAIN)]).await;
    let plain = body["access_token"].as_str().unwrap();
    assert_eq!(
        (plain.split('.').count(), payload(plain)["aud"].clone()),
        (3, json!(PLAIN))
    );
}

async fn keygate_reads_what_it_holds_the_key_of_and_says_so_for_the_rest(f: Fixture) {
    let key = f.key().await;
    let (_, body) = f.token(&key, &[("resource", PAYMENTS)]).await;
    let payments = body["access_token"].as_str().unwrap().to_owned();
    let (_, body) = f.token(&key, &[("resource", LEDGER)]).await;
    let ledger = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(ledger.split('.').count(), 5);
    let (_, body) = f.token(&key, &[]).await;
    let default = body["access_token"].as_str().unwrap().to_owned();

    // The gateway: each route its own audience.
    assert_eq!(f.call("/payments/1", &payments).await, StatusCode::OK);
    assert_eq!(
        f.call("/default/1", &payments).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        f.call("/payments/1", &default).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(f.call("/default/1", &default).await, StatusCode::OK);
    // keygate holds no key for the ledger's tokens: it cannot admit them.
    assert_eq!(f.call("/ledger/1", &ledger).await, StatusCode::UNAUTHORIZED);

    // Introspection: the one it can read, with its audience.
    let (_, body) = f.oauth("/oauth2/introspect", &payments).await;
    assert_eq!(
        (body["active"].clone(), body["aud"].clone()),
        (json!(true), json!([PAYMENTS]))
    );
    assert_eq!(body["sub"], key.0.as_str());
    let (_, body) = f.oauth("/oauth2/introspect", &ledger).await;
    assert_eq!(body, json!({"active": false}));

    // Revocation: unreadable is said so; readable is revoked for real.
    let (status, body) = f.oauth("/oauth2/revoke", &ledger).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "unsupported_token_type");
    let (status, _) = f.oauth("/oauth2/revoke", &payments).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        f.call("/payments/1", &payments).await,
        StatusCode::UNAUTHORIZED
    );
    let (_, body) = f.oauth("/oauth2/introspect", &payments).await;
    assert_eq!(body, json!({"active": false}));
}

async fn unknown_or_malformed_resources_issue_nothing(f: Fixture) {
    let key = f.key().await;
    for extra in [
        vec![("resource", "https://unknown.internal")],
        vec![("resource", "payments")],
        vec![("resource", "https://payments.internal#x")],
        vec![("resource", PAYMENTS), ("resource", PLAIN)],
        vec![("resource", PAYMENTS), ("audience", PAYMENTS)],
        vec![("audience", "https://unknown.internal")],
    ] {
        let (status, body) = f.token(&key, &extra).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra:?}: {body}");
        assert_eq!(body["error"], "invalid_target", "{extra:?}: {body}");
        assert!(body.get("access_token").is_none());
    }
    // A session's tokens are for keygate's own audience only: refused
    // before the refresh token is even looked at.
    let (status, _, body) = form(
        &f.app,
        "/oauth2/token",
        None,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("resource", PAYMENTS),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_target"))
    );
    // An unauthenticated client learns nothing about which audiences exist.
    let (status, _, body) = form(
        &f.app,
        "/oauth2/token",
        Some((&key.0, "kg_test_wrong")),
        None,
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://unknown.internal"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid_client"))
    );
}

/// An audience whose tokens are encrypted to a key from a JWKS nobody
/// serves: keygate starts, and refuses to issue rather than sign in clear.
pub async fn spawn_dark(backend: Backend) -> Option<TestApp> {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", closed.local_addr().unwrap());
    drop(closed);
    let toml = format!(
        "[[jwt.audiences]]\naudience = \"{PAYMENTS}\"\nencrypt = {{ jwks_url = \"{url}\" }}\n"
    );
    spawn_app_with_toml(backend, Some(&toml), |_| {}).await
}

async fn an_audience_whose_key_is_not_fetched_gets_no_token(app: TestApp) {
    let key = app
        .create_key(json!({"name": "svc", "owner": "team", "scopes": []}))
        .await;
    let pairs = [("grant_type", "client_credentials"), ("resource", PAYMENTS)];
    let (status, headers, body) =
        form(&app, "/oauth2/token", Some((&key.0, &key.1)), None, &pairs).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(headers.get("retry-after").is_some());
    assert!(body.get("access_token").is_none());
    // The default audience is served as ever.
    let (status, _, body) = form(
        &app,
        "/oauth2/token",
        Some((&key.0, &key.1)),
        None,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

pub struct MtlsFixture {
    t: Mtls,
    payments: Recipient,
    _dir: tempfile::TempDir,
}

pub async fn spawn_mtls(backend: Backend) -> Option<MtlsFixture> {
    let dir = tempfile::tempdir().unwrap();
    let (payments, ledger) = (recipient(), recipient());
    let extra = format!(
        "{}{}",
        audiences(dir.path(), &payments, &ledger),
        jwt_route("sealed", "http://127.0.0.1:9", Some(PAYMENTS)),
    );
    let t = spawn_with(backend, &extra).await?;
    Some(MtlsFixture {
        t,
        payments,
        _dir: dir,
    })
}

async fn a_bound_token_stays_bound_inside_the_encryption(f: MtlsFixture) {
    let t = &f.t;
    let leaf = self_signed_client("svc-bound");
    let (key_id, secret) = t
        .app
        .create_key(json!({"name": "k", "owner": "o", "scopes": []}))
        .await;
    let body = format!(
        "grant_type=client_credentials&client_id={key_id}&client_secret={secret}&resource={}",
        urlencode(PAYMENTS)
    );
    let res = token(t, Some(&leaf), &body).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let access = res.body["access_token"].as_str().unwrap();
    assert_eq!(access.split('.').count(), 5);
    // Inside: bound to the certificate the token was asked over.
    let claims = recipient_reads(&t.app, access, PAYMENTS, &f.payments)
        .await
        .unwrap();
    let x5t = B64.encode(Sha256::digest(&leaf.der));
    assert_eq!(claims.extra["cnf"], json!({"x5t#S256": x5t}));
    // keygate's gateway decrypts, then checks the binding: without the
    // certificate, or with another, the token is useless. (The route's
    // upstream is down: getting past authentication is a 502.)
    let with = t.call(Some(&leaf), "/sealed/x", Some(access)).await;
    assert_eq!(with.status, StatusCode::BAD_GATEWAY, "{}", with.body);
    let thief = t
        .call(
            Some(&self_signed_client("thief")),
            "/sealed/x",
            Some(access),
        )
        .await;
    assert_eq!(thief.status, StatusCode::UNAUTHORIZED, "{}", thief.body);
    assert_eq!(thief.body["code"], "invalid_token");
    let bare = t.call(None, "/sealed/x", Some(access)).await;
    assert_eq!(bare.status, StatusCode::UNAUTHORIZED, "{}", bare.body);
}

fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("", text)]).unwrap()[1..].to_owned()
}
