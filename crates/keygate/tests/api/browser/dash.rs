//! The dashboard as a person uses it: sign in, follow links, submit forms.

use serde_json::Value;

use super::Browser;
use crate::helpers::TestApp;

pub fn url(app: &TestApp, path: &str) -> String {
    format!("{}/dashboard{path}", app.base)
}

/// Signs in on the login page with `key` (typed, then the button).
pub async fn sign_in(b: &Browser, app: &TestApp, key: &str) {
    b.goto(&url(app, "/login")).await;
    b.find("#key")
        .await
        .send_keys(key)
        .await
        .expect("type the key");
    b.click("main form button[type=submit]").await;
    b.wait_for("nav[aria-label='Main']").await;
}

/// Fills the create form (on the page already) and submits it with a
/// click; answers the secret from the show-once page.
pub async fn create_key(b: &Browser, name: &str, owner: &str, scopes: &str) -> String {
    b.find("#name").await.send_keys(name).await.expect("name");
    b.find("#owner")
        .await
        .send_keys(owner)
        .await
        .expect("owner");
    b.find("#scopes")
        .await
        .send_keys(scopes)
        .await
        .expect("scopes");
    b.click("main form button[type=submit]").await;
    b.wait_for("[data-show-once] #secret").await;
    b.value("#secret").await
}

/// The key's id from the show-once page's "Done" link.
pub async fn shown_key_id(b: &Browser) -> String {
    let href = b
        .find("a.done")
        .await
        .attr("href")
        .await
        .expect("href")
        .unwrap_or_default();
    href.rsplit('/').next().unwrap_or_default().to_owned()
}

/// The id of the key `secret` over the API.
pub async fn key_id_of(app: &TestApp, secret: &str) -> String {
    app.verify(secret, &[]).await["key_id"]
        .as_str()
        .expect("key_id")
        .to_owned()
}

/// The audit rows for `target` over the API (newest first).
pub async fn audit_of(app: &TestApp, target: &str) -> Vec<Value> {
    let res = app
        .get(&format!("/v1/audit?target={target}&limit=100"))
        .await;
    assert_eq!(res.status, reqwest::StatusCode::OK, "{}", res.body);
    res.body["data"].as_array().cloned().unwrap_or_default()
}

/// Whether the page cancels `beforeunload` (the browser's "Leave site?").
pub async fn leaving_is_warned(b: &Browser) -> bool {
    let script = "const e = new Event('beforeunload', { cancelable: true }); \
                  window.dispatchEvent(e); return e.defaultPrevented;";
    let v = b
        .client()
        .execute(script, vec![])
        .await
        .expect("beforeunload");
    v.as_bool() == Some(true)
}
