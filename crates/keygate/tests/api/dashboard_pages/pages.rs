//! Every page renders for a root and a tenant admin; a tenant admin sees
//! nothing of another tenant; signing keys rotate; the audit filters.

use reqwest::StatusCode;
use serde_json::json;

use super::{Dash, root_key_id, tenant_admin};
use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    every_page_renders_for_root_and_tenant_admins,
    tenant_admins_see_only_their_tenant,
    signing_keys_rotate_from_the_page,
    audit_filters_narrow_the_trail,
);

const PAGES: [(&str, &str); 6] = [
    ("/dashboard", "<h1>Overview</h1>"),
    ("/dashboard/keys", "<h1>Keys</h1>"),
    ("/dashboard/users", "<h1>Users</h1>"),
    ("/dashboard/signing-keys", "<h1>Signing keys</h1>"),
    ("/dashboard/audit", "<h1>Audit log</h1>"),
    ("/dashboard/routes", "<h1>Routes</h1>"),
];

async fn every_page_renders_for_root_and_tenant_admins(app: TestApp) {
    let root = Dash::login(&app, &app.root_key).await;
    for (path, heading) in PAGES {
        let page = root.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert!(page.body.contains(heading), "{path}: {}", page.body);
        assert!(!page.body.contains("style="), "{path} has an inline style");
    }
    let (_, secret) = tenant_admin(&app, "t1").await;
    let tenant = Dash::login(&app, &secret).await;
    for (path, heading) in PAGES {
        let page = tenant.get(path).await;
        if path == "/dashboard/signing-keys" {
            // Server-wide keys: a tenant admin may neither list nor rotate.
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
            continue;
        }
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert!(page.body.contains(heading), "{path}");
    }
    let rotate = tenant.post("/dashboard/signing-keys/rotate", &[]).await;
    assert_eq!(rotate.status, StatusCode::FORBIDDEN);
}

async fn tenant_admins_see_only_their_tenant(app: TestApp) {
    let mine = app
        .post("/v1/users", json!({"username": "mine-user", "password": "correct horse battery staple", "tenant": "t1"}))
        .await;
    let theirs = app
        .post("/v1/users", json!({"username": "their-user", "password": "correct horse battery staple", "tenant": "t2"}))
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.body);
    let theirs_id = theirs.body["id"].as_str().unwrap();
    let mine_id = mine.body["id"].as_str().unwrap();
    let (their_key, _) = app
        .create_key(json!({"name": "their-key", "owner": "o", "tenant": "t2"}))
        .await;
    let (_, secret) = tenant_admin(&app, "t1").await;
    let dash = Dash::login(&app, &secret).await;

    let users = dash.get("/dashboard/users").await;
    assert!(users.body.contains("mine-user") && !users.body.contains("their-user"));
    assert_eq!(
        dash.get(&format!("/dashboard/users/{theirs_id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        dash.get(&format!("/dashboard/users/{mine_id}"))
            .await
            .status,
        StatusCode::OK
    );
    // Acting on another tenant's user is refused and changes nothing.
    let res = dash
        .post(&format!("/dashboard/users/{theirs_id}/disable"), &[])
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let after = app.get(&format!("/v1/users/{theirs_id}")).await;
    assert_eq!(after.body["disabled"], false);

    for path in ["/dashboard/audit", "/dashboard"] {
        let page = dash.get(path).await;
        assert!(
            !page.body.contains(theirs_id) && !page.body.contains(&their_key),
            "{path} shows t2"
        );
    }
    let overview = dash.get("/dashboard").await;
    // t1 has one key, its admin key, active.
    assert!(
        overview
            .body
            .contains("<span class=\"tile-n\">1</span> active"),
        "{}",
        overview.body
    );
}

async fn signing_keys_rotate_from_the_page(app: TestApp) {
    let dash = Dash::login(&app, &app.root_key).await;
    let before = dash.get("/dashboard/signing-keys").await;
    assert!(before.body.contains("Active") && !before.body.contains(">Pending<"));
    let res = dash.post("/dashboard/signing-keys/rotate", &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(
        res.location.as_deref(),
        Some("/dashboard/signing-keys?rotated=new")
    );
    let after = dash.get("/dashboard/signing-keys?rotated=new").await;
    assert!(after.body.contains(">Pending<") && after.body.contains("A new key was added"));
    assert!(after.body.contains("starts signing in "), "{}", after.body);
    // A second rotation finds the pending key and adds none.
    let again = dash.post("/dashboard/signing-keys/rotate", &[]).await;
    assert_eq!(
        again.location.as_deref(),
        Some("/dashboard/signing-keys?rotated=pending")
    );
    let listed = app.get("/v1/signing-keys").await;
    let pending = listed.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["state"] == "pending")
        .count();
    assert_eq!(pending, 1, "{}", listed.body);
    // The audit trail names the session's key as the actor.
    let actor = root_key_id(&app).await;
    let audit = dash
        .get("/dashboard/audit?action=signing_key.created")
        .await;
    assert!(audit.body.contains(&actor), "{}", audit.body);
}

async fn audit_filters_narrow_the_trail(app: TestApp) {
    let (key, _) = app
        .create_key(json!({"name": "audited", "owner": "o"}))
        .await;
    app.post(&format!("/v1/keys/{key}/revoke"), json!({})).await;
    let dash = Dash::login(&app, &app.root_key).await;
    let all = dash.get("/dashboard/audit").await;
    assert!(all.body.contains("key.created") && all.body.contains("key.revoked"));
    let revoked = dash.get("/dashboard/audit?action=key.revoked").await;
    assert!(revoked.body.contains(&key) && !revoked.body.contains(">key.created<"));
    let target = dash.get(&format!("/dashboard/audit?target={key}")).await;
    assert!(target.body.contains(">key.created<") && target.body.contains(">key.revoked<"));
    let nobody = dash.get("/dashboard/audit?actor=key_nobody").await;
    assert!(nobody.body.contains("No events match."));
    let future = dash.get("/dashboard/audit?since=2999-01-01T00:00").await;
    assert!(future.body.contains("No events match."));
    let past = dash.get("/dashboard/audit?until=2000-01-01").await;
    assert!(past.body.contains("No events match."));
    let bad = dash.get("/dashboard/audit?since=yesterday").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let backwards = dash
        .get("/dashboard/audit?since=2026-01-02&until=2026-01-01")
        .await;
    assert_eq!(backwards.status, StatusCode::BAD_REQUEST);
}
