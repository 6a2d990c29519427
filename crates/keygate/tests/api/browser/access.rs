//! Who may do what: a tenant admin's view, refused cross-site and
//! token-less posts, expiry, and the cookie-less first visit from another
//! site (SameSite=Strict) that the retry page recovers.

use axum::Router;
use axum::routing::get;
use serde_json::json;

use super::Browser;
use super::create::keys_named;
use super::dash::{self, url};
use crate::helpers::{Backend, spawn_app};

/// A page on `http://localhost:<port>`: another site than the dashboard's
/// `127.0.0.1`. Holds a form posting to the dashboard and a plain link.
async fn other_site(dashboard: &str) -> String {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><title>Elsewhere</title></head><body><main>\
         <form method=\"post\" action=\"{dashboard}/dashboard/keys\">\
         <input type=\"hidden\" name=\"name\" value=\"forged\"><input type=\"hidden\" name=\"owner\" value=\"x\">\
         <input type=\"hidden\" name=\"csrf\" value=\"guess\"><button id=\"forge\">Win a prize</button></form>\
         <a id=\"link\" href=\"{dashboard}/dashboard/keys\">your keys</a></main></body></html>"
    );
    let app = Router::new().route("/", get(move || async move { axum::response::Html(html) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://localhost:{port}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_admin_sees_no_other_tenants_keys() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let (_, acme_admin) = dash_tenant_admin(&app, "acme").await;
    app.create_key(json!({"name": "acme-svc", "owner": "a", "tenant": "acme"}))
        .await;
    let (globex_id, _) = app
        .create_key(json!({"name": "globex-svc", "owner": "g", "tenant": "globex"}))
        .await;
    let Some(b) = Browser::start().await else {
        return;
    };
    dash::sign_in(&b, &app, &acme_admin).await;
    for path in [
        "/keys?status=all",
        "/keys?status=all&tenant=globex",
        "/keys?q=globex&status=all",
        "/",
    ] {
        b.goto(&url(&app, path)).await;
        let html = b.source().await;
        assert!(
            !html.contains("globex-svc") && !html.contains(&globex_id),
            "{path} shows globex"
        );
    }
    b.goto(&url(&app, "/keys?status=all")).await;
    assert!(b.source().await.contains("acme-svc"));
    b.goto(&url(&app, &format!("/keys/{globex_id}"))).await;
    assert!(
        !b.source().await.contains("globex-svc"),
        "another tenant's key page"
    );
    b.goto(&url(&app, &format!("/audit?target={globex_id}")))
        .await;
    let events = b
        .find("table.audit tbody")
        .await
        .text()
        .await
        .expect("rows");
    assert!(
        events.contains("No events match"),
        "another tenant's audit events: {events}"
    );
    b.finish().await;
}

async fn dash_tenant_admin(app: &crate::helpers::TestApp, tenant: &str) -> (String, String) {
    app.create_key(json!({
        "name": format!("{tenant} admin"), "owner": "ops", "tenant": tenant, "scopes": ["admin"]
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_token_less_posts_are_refused() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let Some(b) = Browser::start().await else {
        return;
    };
    dash::sign_in(&b, &app, &app.root_key).await;

    // Another site's form, submitted by the signed-in person.
    b.goto(&other_site(&app.base).await).await;
    b.click("#forge").await;
    b.wait_for("main").await;
    assert!(b.find_all("#secret").await.is_empty(), "no key shown");
    assert_eq!(
        keys_named(&app, "forged").await,
        0,
        "the cross-site post created a key"
    );

    // The dashboard's own form without its token (a native post).
    b.goto(&url(&app, "/keys/new")).await;
    b.find("#name")
        .await
        .send_keys("tokenless")
        .await
        .expect("name");
    b.find("#owner").await.send_keys("x").await.expect("owner");
    let script = "document.querySelector('main form input[name=csrf]').remove(); \
                  document.querySelector('main form').submit();";
    b.client().execute(script, vec![]).await.expect("submit");
    b.wait_for("main h1").await;
    assert!(b.find_all("#secret").await.is_empty());
    assert_eq!(
        keys_named(&app, "tokenless").await,
        0,
        "a post without the token created a key"
    );
    // Both refusals are answered with pages, not crashes; the session lives on.
    b.goto(&url(&app, "/keys")).await;
    b.wait_for("nav[aria-label='Main']").await;
    b.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_sent_to_sign_in_and_back() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let Some(b) = Browser::start().await else {
        return;
    };
    dash::sign_in(&b, &app, &app.root_key).await;
    b.goto(&url(&app, "/audit")).await;
    app.clock.advance_secs(1801);
    b.click("nav a[href$='/dashboard/keys']").await;
    b.wait_for("#key").await;
    assert!(
        b.current_url().await.contains("/dashboard/login?next="),
        "{}",
        b.current_url().await
    );
    b.find("#key")
        .await
        .send_keys(&app.root_key)
        .await
        .expect("key");
    b.click("main form button[type=submit]").await;
    b.wait_for("table.keys").await;
    assert!(
        b.current_url().await.ends_with("/dashboard/keys"),
        "back where it was going"
    );
    b.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_from_another_site_lands_signed_in() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let Some(b) = Browser::start().await else {
        return;
    };
    dash::sign_in(&b, &app, &app.root_key).await;
    // SameSite=Strict keeps the cookie off this first, cross-site request;
    // the dashboard's retry page asks again from its own origin.
    b.goto(&other_site(&app.base).await).await;
    b.click("#link").await;
    b.wait_for("table.keys").await;
    assert!(b.current_url().await.ends_with("/dashboard/keys"));
    b.finish().await;
}
