//! HMAC request signatures (RFC 9421): signing secrets over HTTP, requests
//! signed with the core signer or the `keygate sign` binary and verified by
//! the running server's `HmacService`, on both backends.

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keygate_core::httpsig::base::SignatureParams;
use keygate_core::httpsig::{
    BodyStatus, HmacError, SigCode, UrlParts, content_digest_sha256, sign_hmac_sha256,
};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::TestApp;

crate::on_both_backends!(
    a_signing_secret_is_shown_once_and_signed_requests_verify,
    revoking_the_key_refuses_its_signatures_at_once,
    a_new_secret_invalidates_signatures_made_with_the_old_one,
    signing_secrets_are_tenant_confined_and_bad_input_changes_nothing,
    the_cli_signs_what_the_server_accepts,
    axum_parts_verify,
);

const BIN: &str = env!("CARGO_BIN_EXE_keygate");

struct Signed {
    url: UrlParts,
    method: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn sign(key_id: &str, secret_b64: &str, app: &TestApp, body: &[u8]) -> Signed {
    let secret = STANDARD.decode(secret_b64).unwrap();
    let url = UrlParts::parse("https://api.example.com/orders?id=7").unwrap();
    let headers = vec![("content-digest".to_owned(), content_digest_sha256(body))];
    let nonce = keygate_core::keys::apikey::random_id("", 22).unwrap();
    let params = SignatureParams::new(
        &["@method", "@authority", "@path", "@query", "content-digest"],
        keygate_core::MillisClock::now_secs(app.clock.as_ref()),
        &nonce,
        key_id,
    );
    let (input, sig) =
        sign_hmac_sha256(&url.view("POST", &headers), "sig1", &params, &secret).unwrap();
    let mut headers = headers;
    headers.push(("Signature-Input".into(), input));
    headers.push(("Signature".into(), sig));
    Signed {
        url,
        method: "POST",
        headers,
        body: body.to_vec(),
    }
}

/// What the server's verifier says: `Ok(key id)` or the refusal code.
async fn verify(app: &TestApp, s: &Signed) -> Result<String, SigCode> {
    let hmac = app.hmac.as_ref().unwrap();
    match hmac
        .verify_request(
            &s.url.view(s.method, &s.headers),
            BodyStatus::Complete(&s.body),
        )
        .await
    {
        Ok(who) => Ok(who.key_id.to_string()),
        Err(HmacError::Refused(r)) => Err(r.code),
        Err(e) => panic!("not a refusal: {e:?}"),
    }
}

async fn new_secret(app: &TestApp, id: &str) -> String {
    let res = app
        .request(
            Method::POST,
            &format!("/v1/keys/{id}/signing-secret"),
            Some(&app.root_key.clone()),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(res.body["key_id"], id);
    assert!(res.body["created_at"].as_str().unwrap().ends_with('Z'));
    let secret = res.body["secret"].as_str().unwrap().to_owned();
    assert_eq!(STANDARD.decode(&secret).unwrap().len(), 32);
    secret
}

/// Every sealed secret and audit row, as stored.
async fn stored(app: &TestApp) -> (Vec<Vec<u8>>, String) {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let url = app.args.database_url.clone().unwrap();
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    let sealed = sqlx::query("SELECT sealed FROM hmac_secrets")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<Vec<u8>, _>("sealed"))
        .collect();
    let audit: Vec<String> = sqlx::query("SELECT action, detail FROM audit_log")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.get::<String, _>("action"),
                r.get::<String, _>("detail")
            )
        })
        .collect();
    conn.close().await.unwrap();
    (sealed, audit.join("\n"))
}

async fn a_signing_secret_is_shown_once_and_signed_requests_verify(app: TestApp) {
    let (id, _) = app
        .create_key(json!({"name": "signer", "owner": "svc", "tenant": "acme"}))
        .await;
    let secret = new_secret(&app, &id).await;
    let s = sign(&id, &secret, &app, b"{\"qty\":1}");
    assert_eq!(verify(&app, &s).await, Ok(id.clone()));
    assert_eq!(verify(&app, &s).await, Err(SigCode::SignatureReplayed));
    let mut tampered = sign(&id, &secret, &app, b"{\"qty\":1}");
    tampered.body = b"{\"qty\":100}".to_vec();
    assert_eq!(
        verify(&app, &tampered).await,
        Err(SigCode::ContentDigestMismatch)
    );

    // The secret is nowhere else: not in the key's view, not stored in
    // plain form, not in the audit log.
    let shown = app.get(&format!("/v1/keys/{id}")).await;
    assert!(!shown.body.to_string().contains(&secret));
    let raw = STANDARD.decode(&secret).unwrap();
    let (sealed, audit) = stored(&app).await;
    assert_eq!(sealed.len(), 1);
    assert!(!sealed[0].windows(raw.len()).any(|w| w == raw.as_slice()));
    assert!(
        !sealed[0]
            .windows(8)
            .any(|w| secret.as_bytes().starts_with(w))
    );
    assert!(audit.contains("key.signing_secret_created"));
    assert!(!audit.contains(&secret));
    let entries = app.get("/v1/audit?action=key.signing_secret_created").await;
    assert_eq!(entries.body["data"][0]["target"], id);
    assert_eq!(entries.body["data"][0]["tenant"], "acme");
}

async fn revoking_the_key_refuses_its_signatures_at_once(app: TestApp) {
    let (id, _) = app.create_key(json!({"name": "s", "owner": "o"})).await;
    let secret = new_secret(&app, &id).await;
    // Warm the cache first: the revoke must still win.
    assert!(verify(&app, &sign(&id, &secret, &app, b"a")).await.is_ok());
    let res = app.post(&format!("/v1/keys/{id}/revoke"), json!({})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(
        verify(&app, &sign(&id, &secret, &app, b"a")).await,
        Err(SigCode::SignatureKeyRevoked)
    );
    // A revoked key gets no new secret.
    let res = app
        .request(
            Method::POST,
            &format!("/v1/keys/{id}/signing-secret"),
            Some(&app.root_key.clone()),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.body);
    assert_eq!(res.body["code"], "key_revoked");
    // An expired key is refused the same way.
    let (id, _) = app.create_key(json!({"name": "s", "owner": "o"})).await;
    let secret = new_secret(&app, &id).await;
    let soon = time::OffsetDateTime::from_unix_timestamp(
        keygate_core::MillisClock::now_secs(app.clock.as_ref()) + 60,
    )
    .unwrap()
    .format(&time::format_description::well_known::Rfc3339)
    .unwrap();
    let res = app
        .patch(&format!("/v1/keys/{id}"), json!({"expires_at": soon}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    app.clock.advance_secs(61);
    assert_eq!(
        verify(&app, &sign(&id, &secret, &app, b"a")).await,
        Err(SigCode::SignatureKeyRevoked)
    );
}

async fn a_new_secret_invalidates_signatures_made_with_the_old_one(app: TestApp) {
    let (id, _) = app.create_key(json!({"name": "s", "owner": "o"})).await;
    let first = new_secret(&app, &id).await;
    let old = sign(&id, &first, &app, b"x");
    assert!(verify(&app, &sign(&id, &first, &app, b"x")).await.is_ok());
    let second = new_secret(&app, &id).await;
    assert_ne!(first, second);
    assert_eq!(verify(&app, &old).await, Err(SigCode::SignatureInvalid));
    assert!(verify(&app, &sign(&id, &second, &app, b"x")).await.is_ok());
    // Rotating the API key itself leaves the signing secret as it is.
    let res = app.post(&format!("/v1/keys/{id}/rotate"), json!({})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert!(verify(&app, &sign(&id, &second, &app, b"x")).await.is_ok());
    // A key without a secret, and an unknown key, are unknown signers.
    let (bare, _) = app.create_key(json!({"name": "s", "owner": "o"})).await;
    assert_eq!(
        verify(&app, &sign(&bare, &second, &app, b"x")).await,
        Err(SigCode::SignatureKeyUnknown)
    );
    let ghost = keygate_core::KeyId::generate().unwrap().to_string();
    assert_eq!(
        verify(&app, &sign(&ghost, &second, &app, b"x")).await,
        Err(SigCode::SignatureKeyUnknown)
    );
}

async fn signing_secrets_are_tenant_confined_and_bad_input_changes_nothing(app: TestApp) {
    let (_, acme_admin) = app
        .create_key(json!({"name": "a", "owner": "o", "tenant": "acme", "scopes": ["admin"]}))
        .await;
    let (acme_key, _) = app
        .create_key(json!({"name": "k", "owner": "o", "tenant": "acme"}))
        .await;
    let (other_key, _) = app
        .create_key(json!({"name": "k", "owner": "o", "tenant": "other"}))
        .await;
    let post = |id: String, key: Option<String>, body: Option<serde_json::Value>| {
        let app = &app;
        async move {
            app.request(
                Method::POST,
                &format!("/v1/keys/{id}/signing-secret"),
                key.as_deref(),
                body,
            )
            .await
        }
    };
    let res = post(acme_key.clone(), Some(acme_admin.clone()), None).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let res = post(other_key.clone(), Some(acme_admin.clone()), None).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.body);
    let (_, plain) = app.create_key(json!({"name": "p", "owner": "o"})).await;
    let res = post(other_key.clone(), Some(plain), None).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    let res = post(other_key.clone(), None, None).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
    let res = post("key_bad".into(), Some(app.root_key.clone()), None).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert_eq!(res.body["code"], "invalid_key_id");
    let res = post(
        other_key.clone(),
        Some(app.root_key.clone()),
        Some(json!({"secret": "mine"})),
    )
    .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    let res = post(
        keygate_core::KeyId::generate().unwrap().to_string(),
        Some(app.root_key.clone()),
        None,
    )
    .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.body);
    // Only the one allowed call stored a secret.
    let (sealed, _) = stored(&app).await;
    assert_eq!(sealed.len(), 1);
}

fn run_sign(app: &TestApp, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("sign")
        .args(args)
        .current_dir(app.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn the_cli_signs_what_the_server_accepts(app: TestApp) {
    let (id, _) = app.create_key(json!({"name": "s", "owner": "o"})).await;
    let secret = new_secret(&app, &id).await;
    let dir = app.dir.path();
    std::fs::write(dir.join("secret"), format!("{secret}\n")).unwrap();
    let body = b"{\"it's\": \"a body\"}\n";
    std::fs::write(dir.join("body.json"), body).unwrap();
    let url = "https://API.example.com:443/orders/7?expand=items&x=1";
    let args = [
        "--method",
        "POST",
        "--url",
        url,
        "--body",
        "body.json",
        "--key-id",
        &id,
        "--secret-file",
        "secret",
        "--header",
        "X-Request-Id: it's 42",
    ];
    let printed = run_sign(&app, &args);
    let headers: Vec<(String, String)> = printed
        .lines()
        .map(|l| {
            let (n, v) = l.split_once(": ").unwrap();
            (n.to_owned(), v.to_owned())
        })
        .collect();
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "x-request-id",
            "Content-Digest",
            "Signature-Input",
            "Signature"
        ]
    );
    assert!(!printed.contains(&secret));
    let signed = Signed {
        url: UrlParts::parse(url).unwrap(),
        method: "POST",
        headers: headers.clone(),
        body: body.to_vec(),
    };
    assert_eq!(verify(&app, &signed).await, Ok(id.clone()));

    // --curl: shell words that, parsed by a shell, are exactly curl's
    // arguments (checked by letting sh print them one per line).
    let mut curl_args = args.to_vec();
    curl_args.push("--curl");
    let words = run_sign(&app, &curl_args);
    let out = Command::new("sh")
        .arg("-c")
        .arg("eval \"set -- $(cat)\"; printf '%s\\n' \"$@\"")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(words.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let argv: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(argv[..2], ["-X", "POST"]);
    assert_eq!(argv[2], "-H");
    assert_eq!(argv[3], "x-request-id: it's 42");
    assert!(argv[7].starts_with("Signature-Input: sig1=(\"@method\" \"@authority\""));
    assert_eq!(
        argv[argv.len() - 4..],
        ["-H", "Content-Type:", "--data-binary", "@body.json"]
    );
    let from_curl: Vec<(String, String)> = argv
        .chunks(2)
        .filter(|w| w[0] == "-H" && w[1] != "Content-Type:")
        .map(|w| {
            let (n, v) = w[1].split_once(": ").unwrap();
            (n.to_owned(), v.to_owned())
        })
        .collect();
    let signed = Signed {
        url: UrlParts::parse(url).unwrap(),
        method: "POST",
        headers: from_curl,
        body: body.to_vec(),
    };
    assert_eq!(verify(&app, &signed).await, Ok(id));
}

/// The gateway's entry point: an axum request's parts, as received.
async fn axum_parts_verify(app: TestApp) {
    use keygate::http::signing::verify_parts;
    let (id, _) = app.create_key(json!({"name": "s", "owner": "o"})).await;
    let secret = new_secret(&app, &id).await;
    let s = sign(&id, &secret, &app, b"{}");
    let mut req = axum::http::Request::builder()
        .method("POST")
        .uri("/orders?id=7")
        .header("host", "API.example.com:443");
    for (n, v) in &s.headers {
        req = req.header(n.as_str(), v.as_str());
    }
    let (parts, ()) = req.body(()).unwrap().into_parts();
    let hmac = app.hmac.as_ref().unwrap();
    let who = verify_parts(hmac, &parts, "https", BodyStatus::Complete(b"{}"))
        .await
        .unwrap();
    assert_eq!(who.key_id.to_string(), id);
    // The same request again is a replay.
    match verify_parts(hmac, &parts, "https", BodyStatus::Complete(b"{}")).await {
        Err(HmacError::Refused(r)) => assert_eq!(r.code, SigCode::SignatureReplayed),
        other => panic!("{other:?}"),
    }
    // Reached as http on port 443, the authority keeps its port: no match.
    let s = sign(&id, &secret, &app, b"{}");
    let mut req = axum::http::Request::builder()
        .method("POST")
        .uri("/orders?id=7")
        .header("host", "api.example.com:443");
    for (n, v) in &s.headers {
        req = req.header(n.as_str(), v.as_str());
    }
    let (parts, ()) = req.body(()).unwrap().into_parts();
    match verify_parts(hmac, &parts, "http", BodyStatus::Complete(b"{}")).await {
        Err(HmacError::Refused(r)) => assert_eq!(r.code, SigCode::SignatureInvalid),
        other => panic!("{other:?}"),
    }
}
