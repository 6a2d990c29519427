//! Creating keys without a mouse and without scripts, and revoking several
//! keys after one confirmation.

use fantoccini::key::Key;
use serde_json::json;

use super::Browser;
use super::dash::{self, url};
use super::driver::Options;
use crate::helpers::{Backend, TestApp, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_a_key_with_the_keyboard_only() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let Some(b) = Browser::start().await else {
        return;
    };
    b.goto(&url(&app, "/login")).await;
    assert_eq!(b.focused_id().await, "key", "the key field has the focus");
    b.type_text(&app.root_key).await;
    b.press(Key::Enter).await;
    b.wait_for("nav[aria-label='Main']").await;

    b.goto(&url(&app, "/keys")).await;
    b.press(Key::Tab).await;
    assert!(
        b.find("a.skip:focus")
            .await
            .is_displayed()
            .await
            .expect("shown"),
        "skip link first, visible"
    );
    b.press(Key::Enter).await;
    assert_eq!(
        b.focused_id().await,
        "main",
        "the skip link moves the focus to the content"
    );
    b.tab_to("a[href$='/keys/new']", 10).await;
    b.press(Key::Enter).await;
    b.wait_for("#name:focus").await;
    b.type_text("typed").await;
    b.press(Key::Tab).await;
    assert_eq!(b.focused_id().await, "owner");
    b.type_text("keyboard").await;
    b.press(Key::Enter).await;

    b.wait_for("[data-show-once] #secret:focus").await;
    let secret = b.value("#secret").await;
    b.grant_clipboard(&app.base).await;
    b.tab_to("button.copy", 1).await;
    b.press(Key::Enter).await;
    b.wait_for(".copied:not(:empty)").await;
    assert_eq!(b.clipboard().await, secret);
    b.tab_to("a.done", 10).await;
    b.press(Key::Enter).await;
    b.wait_for("h1 .badge").await;
    assert!(b.source().await.contains(&secret[..12]));
    assert_eq!(app.verify_code(&secret).await, "VALID");
    b.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_a_key_with_scripts_disabled() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let opts = Options {
        scripts: false,
        ..Options::default()
    };
    let Some(b) = Browser::start_with(opts).await else {
        return;
    };
    dash::sign_in(&b, &app, &app.root_key).await;
    b.goto(&url(&app, "/keys/new")).await;
    let secret = dash::create_key(&b, "no-script", "plain-forms", "").await;
    assert!(
        !b.find("button.copy")
            .await
            .is_displayed()
            .await
            .expect("shown"),
        "Copy needs app.js"
    );
    assert!(!b.current_url().await.contains(&secret));
    b.report("keys-created-noscript").await.assert_clean();
    assert_eq!(app.verify_code(&secret).await, "VALID");
    b.click("a.done").await;
    b.wait_for("h1 .badge").await;
    let html = b.source().await;
    assert!(html.contains(&secret[..12]) && !html.contains(&secret));
    b.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_selected_keys_after_one_confirmation() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let mut keys = Vec::new();
    for name in ["bulk-a", "bulk-b", "bulk-c"] {
        keys.push(app.create_key(json!({"name": name, "owner": "bulk"})).await);
    }
    let Some(b) = Browser::start().await else {
        return;
    };
    dash::sign_in(&b, &app, &app.root_key).await;
    b.goto(&url(&app, "/keys")).await;
    for (id, _) in &keys[..2] {
        b.click(&format!("#sel-{id}")).await;
    }
    b.click("button.danger[type=submit]").await;
    b.wait_for("form[action$='/revoke-selected/confirm']").await;
    let items = b.find_all("main li").await;
    assert_eq!(items.len(), 2);
    b.report("keys-bulk-confirm-light").await.assert_clean();
    b.click("form[action$='/revoke-selected/confirm'] button.danger")
        .await;
    b.wait_for("p.notice[role=status]").await;
    assert_eq!(
        b.find("p.notice").await.text().await.expect("notice"),
        "Revoked 2 keys."
    );
    assert_eq!(app.verify_code(&keys[0].1).await, "REVOKED");
    assert_eq!(app.verify_code(&keys[1].1).await, "REVOKED");
    assert_eq!(app.verify_code(&keys[2].1).await, "VALID");
    b.finish().await;
}

/// Keys named `name` over the API.
pub async fn keys_named(app: &TestApp, name: &str) -> usize {
    let res = app.get("/v1/keys?limit=100&include_revoked=true").await;
    let data = res.body["data"].as_array().cloned().unwrap_or_default();
    data.iter().filter(|k| k["name"] == name).count()
}
