//! Every page, light and dark: no console error, no CSP violation, no axe
//! WCAG 2 A/AA violation, no layout shift; a screenshot of each in
//! `<target dir>/dashboard-shots/` (two of them are the README's).

use serde_json::json;

use super::Browser;
use super::dash::{self, url};
use crate::helpers::{Backend, TestApp, spawn_app};

/// Keys with some history, a tenant and a user, so that pages show rows,
/// sparklines and charts rather than empty tables.
async fn populate(app: &TestApp) -> (String, String) {
    let (id, secret) = app
        .create_key(json!({"name": "billing-service", "owner": "team-billing",
                           "scopes": ["orders:read", "orders:write"], "metadata": {"plan": "pro"}}))
        .await;
    for _ in 0..5 {
        app.verify_code(&secret).await;
    }
    app.verify(&secret, &["admin"]).await;
    app.create_key(
        json!({"name": "reporting", "owner": "analytics", "tenant": "acme", "env": "test"}),
    )
    .await;
    let (gone, _) = app
        .create_key(json!({"name": "legacy-cron", "owner": "ops"}))
        .await;
    let res = app
        .post(&format!("/v1/keys/{gone}/revoke"), json!({}))
        .await;
    assert_eq!(res.status, reqwest::StatusCode::OK, "{}", res.body);
    let res = app
        .post("/v1/users", json!({"username": "alice", "password": "correct horse battery staple", "roles": ["viewer"]}))
        .await;
    assert_eq!(res.status, reqwest::StatusCode::CREATED, "{}", res.body);
    let user = res.body["id"].as_str().expect("user id").to_owned();
    (id, user)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_is_clean_in_light_and_dark() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let (key, user) = populate(&app).await;
    let Some(b) = Browser::start().await else {
        return;
    };
    b.check_both_schemes(&url(&app, "/login"), "login").await;
    dash::sign_in(&b, &app, &app.root_key).await;
    let pages = [
        ("/".to_owned(), "overview"),
        ("/keys?status=all".to_owned(), "keys"),
        ("/keys/new".to_owned(), "keys-new"),
        (format!("/keys/{key}"), "key-detail"),
        (format!("/keys/{key}/revoke"), "key-revoke"),
        ("/users".to_owned(), "users"),
        (format!("/users/{user}"), "user-detail"),
        (format!("/users/{user}/disable"), "user-disable"),
        (
            format!("/users/{user}/revoke-sessions"),
            "user-revoke-sessions",
        ),
        ("/signing-keys".to_owned(), "signing-keys"),
        ("/audit".to_owned(), "audit"),
        ("/routes".to_owned(), "routes"),
    ];
    for (path, name) in &pages {
        b.check_both_schemes(&url(&app, path), name).await;
    }
    // The dashboard's own not-found page (not the API's JSON).
    let missing = url(&app, "/no-such-page");
    b.check_both_schemes_of_error(&missing, "not-found", 404)
        .await;
    b.wait_for("main h1").await;
    // Pages that only a post shows: the secret, and the bulk confirmation.
    for (dark, scheme) in [(false, "light"), (true, "dark")] {
        b.set_dark(dark).await;
        b.goto(&url(&app, "/keys/new")).await;
        dash::create_key(&b, &format!("shown-{scheme}"), "qa", "").await;
        b.report(&format!("key-secret-{scheme}"))
            .await
            .assert_clean();
        b.goto(&url(&app, "/keys")).await;
        b.click("tbody input[type=checkbox]").await;
        b.click("button.danger[type=submit]").await;
        b.wait_for("form[action$='/revoke-selected/confirm']").await;
        b.report(&format!("keys-bulk-confirm-{scheme}"))
            .await
            .assert_clean();
    }
    b.finish().await;
}
