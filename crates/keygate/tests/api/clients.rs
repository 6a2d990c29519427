//! mTLS clients over HTTP: the registry's lifecycle, its audit trail, bad
//! input that changes nothing, tenant confinement, and identification
//! through the server's own service with certificates made in the test.

use keygate_core::clients::{CertSource, ClientRefusal, PeerCertificate};
use keygate_test_support::Backend;
use keygate_test_support::certs::{LeafSpec, TestCa, self_signed};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with_toml};

crate::on_both_backends!(spawn = crate::clients::spawn;
    create_list_show_update_revoke_audited,
    bad_input_is_a_400_and_changes_nothing,
    conflicts_are_409s,
    tenant_admins_are_confined,
    identification_follows_the_registry_at_once,
    the_cli_manages_clients,
    a_revoke_reaches_the_other_nodes_cache,
);

/// An app with one client CA, `mesh`, configured in `[mtls]`.
pub struct MtlsApp {
    app: TestApp,
    mesh: TestCa,
    _dir: tempfile::TempDir,
}

pub async fn spawn(backend: Backend) -> Option<MtlsApp> {
    let mesh = TestCa::new("mesh root");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("mesh.pem");
    std::fs::write(&ca, &mesh.pem).unwrap();
    let toml = format!(
        "[mtls]\ncas = {{ mesh = {:?} }}\n",
        ca.display().to_string()
    );
    let app = spawn_app_with_toml(backend, Some(&toml), |_| {}).await?;
    Some(MtlsApp {
        app,
        mesh,
        _dir: dir,
    })
}

async fn count(app: &TestApp) -> (usize, usize) {
    let clients = app.get("/v1/clients?include_revoked=true").await;
    let audit = app.get("/v1/audit?limit=500").await;
    let n = |v: &Value| v["data"].as_array().unwrap().len();
    (n(&clients.body), n(&audit.body))
}

async fn create_list_show_update_revoke_audited(t: MtlsApp) {
    let app = &t.app;
    let res = app
        .post(
            "/v1/clients",
            json!({"name": "payments", "owner": "team-pay", "scopes": ["orders:read"],
                   "ca": "mesh", "spiffe_id": "spiffe://prod/ns/pay/*",
                   "rate_limit": {"limit": 10, "period_seconds": 60}}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let id = res.body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("cli_"));
    assert_eq!(res.body["status"], "active");
    assert_eq!(res.body["spiffe_id"], "spiffe://prod/ns/pay/*");
    assert!(res.body.get("thumbprint").is_none());

    let hex = "AB".repeat(32);
    let pinned = app
        .post(
            "/v1/clients",
            json!({"name": "batch", "owner": "o", "thumbprint": hex}),
        )
        .await;
    assert_eq!(pinned.status, StatusCode::CREATED, "{}", pinned.body);
    // Shown as x5t#S256 whatever form it was given in.
    assert_eq!(pinned.body["thumbprint"].as_str().unwrap().len(), 43);

    let first = app.get("/v1/clients?limit=1").await;
    assert_eq!(first.body["data"][0]["id"], id.as_str());
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = app
        .get(&format!("/v1/clients?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(second.body["data"][0]["name"], "batch");
    assert!(second.body["next_cursor"].is_null());
    let by_ca = app.get("/v1/clients?ca=mesh").await;
    assert_eq!(by_ca.body["data"].as_array().unwrap().len(), 1);

    let shown = app.get(&format!("/v1/clients/{id}")).await;
    assert_eq!(shown.body, res.body);
    let patched = app
        .patch(
            &format!("/v1/clients/{id}"),
            json!({"name": "pay", "rate_limit": null}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(
        (
            patched.body["name"].clone(),
            patched.body["rate_limit"].clone()
        ),
        (json!("pay"), Value::Null)
    );
    assert_eq!(patched.body["spiffe_id"], "spiffe://prod/ns/pay/*");

    let revoked = app
        .post(&format!("/v1/clients/{id}/revoke"), json!({}))
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    assert_eq!(revoked.body["status"], "revoked");
    assert!(revoked.body["revoked_at"].is_string());
    let live = app.get("/v1/clients").await;
    assert_eq!(live.body["data"].as_array().unwrap().len(), 1);

    let audit = app.get(&format!("/v1/audit?target={id}")).await;
    let actions: Vec<&str> = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["client.revoked", "client.updated", "client.created"]
    );
    assert!(
        audit.body["data"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("key_")
    );
}

async fn bad_input_is_a_400_and_changes_nothing(t: MtlsApp) {
    let app = &t.app;
    let before = count(app).await;
    let base = json!({"name": "n", "owner": "o"});
    let with = |extra: Value| {
        let mut b = base.clone();
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    for (body, says) in [
        (
            with(json!({"ca": "nope", "spiffe_id": "spiffe://a/b"})),
            "no client CA is named",
        ),
        (with(json!({"thumbprint": "abc"})), "thumbprint"),
        (
            with(json!({"ca": "mesh", "spiffe_id": "spiffe://a/x*"})),
            "spiffe_id",
        ),
        (with(json!({"ca": "mesh", "dns": "*.com"})), "dns"),
        (with(json!({"ca": "mesh", "subject": "CN=a*"})), "subject"),
        (
            with(json!({"thumbprint": "AB".repeat(32), "ca": "mesh", "dns": "a.example"})),
            "not both",
        ),
        (
            with(json!({"ca": "mesh", "dns": "a.example", "spiffe_id": "spiffe://a/b"})),
            "only one",
        ),
        (with(json!({"ca": "mesh"})), "ca needs one of"),
        (with(json!({"dns": "a.example"})), "needs ca"),
        (base.clone(), "give thumbprint"),
        (
            with(json!({"ca": "mesh", "dns": "a.example", "colour": "red"})),
            "colour",
        ),
    ] {
        let res = app.post("/v1/clients", body.clone()).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{body}: {}", res.body);
        assert_eq!(res.headers["content-type"], "application/problem+json");
        assert!(
            res.body["detail"].as_str().unwrap().contains(says),
            "{body}: {}",
            res.body
        );
    }
    let res = app.get("/v1/clients/cli_nope").await;
    assert_eq!(
        (res.status, res.body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_client_id"))
    );
    let ok = app
        .post(
            "/v1/clients",
            with(json!({"ca": "mesh", "dns": "a.example"})),
        )
        .await;
    let id = ok.body["id"].as_str().unwrap();
    let after_create = count(app).await;
    let res = app
        .patch(&format!("/v1/clients/{id}"), json!({"dns": "b.example"}))
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    let res = app
        .patch(
            &format!("/v1/clients/{id}"),
            json!({"scopes": ["bad scope"]}),
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert_eq!(count(app).await, after_create);
    assert_eq!(
        (after_create.0, after_create.1),
        (before.0 + 1, before.1 + 1)
    );
}

async fn conflicts_are_409s(t: MtlsApp) {
    let app = &t.app;
    let body = json!({"name": "n", "owner": "o", "ca": "mesh", "dns": "a.example"});
    let first = app.post("/v1/clients", body.clone()).await;
    let again = app.post("/v1/clients", body.clone()).await;
    assert_eq!(
        (again.status, again.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_exists"))
    );
    let id = first.body["id"].as_str().unwrap();
    app.post(&format!("/v1/clients/{id}/revoke"), json!({}))
        .await;
    let res = app
        .patch(&format!("/v1/clients/{id}"), json!({"name": "x"}))
        .await;
    assert_eq!(
        (res.status, res.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("client_revoked"))
    );
    // Revoked, the matcher is free for a new client.
    assert_eq!(
        app.post("/v1/clients", body).await.status,
        StatusCode::CREATED
    );
}

async fn tenant_admins_are_confined(t: MtlsApp) {
    let app = &t.app;
    let (_, acme) = app
        .create_key(json!({"name": "t", "owner": "o", "tenant": "acme", "scopes": ["admin"]}))
        .await;
    let theirs = app
        .post("/v1/clients", json!({"name": "g", "owner": "o", "tenant": "globex", "ca": "mesh", "dns": "g.example"}))
        .await;
    let theirs = theirs.body["id"].as_str().unwrap().to_owned();
    let as_acme =
        async |method, path: String, body| app.request(method, &path, Some(&acme), body).await;
    let mine = as_acme(
        reqwest::Method::POST,
        "/v1/clients".into(),
        Some(json!({"name": "a", "owner": "o", "ca": "mesh", "dns": "a.example"})),
    )
    .await;
    assert_eq!(mine.status, StatusCode::CREATED, "{}", mine.body);
    assert_eq!(mine.body["tenant"], "acme");
    let other = as_acme(reqwest::Method::POST, "/v1/clients".into(), Some(json!({"name": "b", "owner": "o", "tenant": "globex", "ca": "mesh", "dns": "b.example"}))).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    let listed = as_acme(reqwest::Method::GET, "/v1/clients".into(), None).await;
    let names: Vec<&str> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a"]);
    for (method, path) in [
        (reqwest::Method::GET, format!("/v1/clients/{theirs}")),
        (
            reqwest::Method::POST,
            format!("/v1/clients/{theirs}/revoke"),
        ),
    ] {
        let res = as_acme(method, path, Some(json!({}))).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.body);
    }
    let res = as_acme(
        reqwest::Method::PATCH,
        format!("/v1/clients/{theirs}"),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&format!("/v1/clients/{theirs}")).await.body["status"],
        "active"
    );
}

async fn identification_follows_the_registry_at_once(t: MtlsApp) {
    let app = &t.app;
    let clients = app.state().clients.clone();
    let leaf = t.mesh.leaf(&LeafSpec::spiffe("spiffe://prod/ns/pay/api"));
    let peer = PeerCertificate::new(vec![leaf.der.clone()], CertSource::Tls).unwrap();
    assert_eq!(
        clients.identify(&peer).await.unwrap_err(),
        ClientRefusal::UnknownClient
    );
    let res = app
        .post(
            "/v1/clients",
            json!({"name": "p", "owner": "o", "ca": "mesh", "spiffe_id": "spiffe://prod/ns/pay/*"}),
        )
        .await;
    let id = res.body["id"].as_str().unwrap();
    assert_eq!(
        clients.identify(&peer).await.unwrap().client.id.as_str(),
        id
    );
    app.post(&format!("/v1/clients/{id}/revoke"), json!({}))
        .await;
    assert_eq!(
        clients.identify(&peer).await.unwrap_err(),
        ClientRefusal::ClientRevoked
    );

    // A self-signed certificate pinned by its hex thumbprint.
    let own = self_signed(&LeafSpec::default());
    let own_peer = PeerCertificate::new(vec![own.der.clone()], CertSource::Proxy).unwrap();
    let hex: String = own_peer
        .thumbprint()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let res = app
        .post(
            "/v1/clients",
            json!({"name": "s", "owner": "o", "thumbprint": hex}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let got = clients.identify(&own_peer).await.unwrap();
    assert_eq!(got.client.id.as_str(), res.body["id"].as_str().unwrap());
    assert_eq!(
        got.thumbprint.to_b64url(),
        res.body["thumbprint"].as_str().unwrap()
    );
}

/// `keygate clients ...` (the real binary) against this server.
async fn clients_cli(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_keygate"));
    cmd.arg("clients")
        .args(args)
        .env("KEYGATE_URL", &app.base)
        .env("KEYGATE_ADMIN_KEY", &app.root_key);
    // Off the runtime's threads: the server answers on them.
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn the_cli_manages_clients(t: MtlsApp) {
    let app = &t.app;
    let (ok, out, err) = clients_cli(
        app,
        &[
            "create",
            "--name",
            "pay",
            "--owner",
            "team",
            "--scope",
            "orders:read",
            "--ca",
            "mesh",
            "--spiffe-id",
            "spiffe://prod/ns/pay/*",
            "--rate-limit",
            "5/60",
            "--json",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["rate_limit"],
        json!({"limit": 5, "period_seconds": 60})
    );
    let (ok, out, _) = clients_cli(app, &["list"]).await;
    assert!(
        ok && out.contains(&id) && out.contains("mesh spiffe_id spiffe://prod/ns/pay/*"),
        "{out}"
    );
    let (ok, out, err) = clients_cli(app, &["update", &id, "--thumbprint", &"ab".repeat(32)]).await;
    assert!(ok, "{err}");
    assert!(out.contains("thumbprint q6ur"), "{out}");
    let (ok, _, err) = clients_cli(app, &["update", &id]).await;
    assert!(!ok && err.contains("nothing to update"), "{err}");
    let (ok, _, err) = clients_cli(
        app,
        &[
            "create",
            "--name",
            "x",
            "--owner",
            "o",
            "--ca",
            "nope",
            "--dns",
            "a.example",
        ],
    )
    .await;
    assert!(!ok && err.contains("no client CA is named"), "{err}");
    let (ok, out, _) = clients_cli(app, &["revoke", &id]).await;
    assert!(ok && out.contains("revoked"), "{out}");
    let (ok, _, err) = clients_cli(app, &["show", "key_AbCdEfGh01234567"]).await;
    assert!(!ok && err.contains("not a client id"), "{err}");
}

/// Many nodes: node B caches an identification, A revokes the client with
/// `?wait=all`, and B refuses at once: the feed's `client.changed` emptied
/// B's cache (without it, B would answer from its cache for 30 s).
async fn a_revoke_reaches_the_other_nodes_cache(t: MtlsApp) {
    let a = &t.app;
    if a.backend == Backend::Sqlite {
        return; // one node: covered by identification_follows_the_registry_at_once
    }
    let b = a.second_node().await;
    // Both nodes live, so `?wait=all` waits for B.
    for _ in 0..100 {
        let res = a.get("/v1/cluster").await;
        let live = res.body["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["live"] == true)
            .count();
        if live >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let res = a
        .post(
            "/v1/clients",
            json!({"name": "p", "owner": "o", "ca": "mesh", "dns": "api.svc.example"}),
        )
        .await;
    let id = res.body["id"].as_str().unwrap();
    let leaf = t.mesh.leaf(&LeafSpec::dns("api.svc.example"));
    let peer = PeerCertificate::new(vec![leaf.der.clone()], CertSource::Tls).unwrap();
    let on_b = b.state().clients.clone();
    assert_eq!(on_b.identify(&peer).await.unwrap().client.id.as_str(), id);
    assert_eq!(on_b.cache_len(), 1);
    let res = a
        .post(&format!("/v1/clients/{id}/revoke?wait=all"), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert!(
        res.body["propagation"]["unconfirmed"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{}",
        res.body
    );
    assert_eq!(
        on_b.identify(&peer).await.unwrap_err(),
        ClientRefusal::ClientRevoked
    );
}
