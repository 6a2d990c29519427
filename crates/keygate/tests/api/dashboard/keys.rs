//! The keys pages end to end: create (shown once), list and filters, edit,
//! rotate with grace, revoke, bulk revoke, the signing secret; every change
//! audited with the session's key as actor; no secret in any URL.

use reqwest::StatusCode;
use serde_json::json;

use super::{Dash, Page, shown_secret};
use crate::helpers::TestApp;

crate::on_both_backends!(
    create_shows_the_secret_once,
    bad_create_form_is_shown_again_and_creates_nothing,
    list_filters_and_pages,
    edit_changes_only_what_changed,
    rotate_with_grace_then_revoke,
    bulk_revoke_asks_first_then_revokes,
    signing_secret_is_shown_once_and_audited,
);

fn no_secret_in(page: &Page, secret: &str) {
    assert!(!page.location().contains(secret), "secret in a Location");
    for v in page.headers.values() {
        assert!(
            !v.to_str().unwrap_or("").contains(secret),
            "secret in a header"
        );
    }
}

async fn root_id(app: &TestApp) -> String {
    let keys = app.get("/v1/keys").await;
    keys.body["data"][0]["id"].as_str().unwrap().to_owned()
}

async fn create_shows_the_secret_once(app: TestApp) {
    let mut dash = Dash::signed_in(&app, &app.root_key).await;
    let form = [
        ("name", "billing"),
        ("owner", "svc-billing"),
        ("scopes", "orders:read orders:write"),
        ("env", "test"),
        ("expires_days", "30"),
        ("rate_limit", "100"),
        ("rate_period", "60"),
        ("remaining", "5"),
        ("metadata", "{\"plan\": \"pro\"}"),
    ];
    let page = dash.submit("/dashboard/keys", &form).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.headers["cache-control"], "no-store");
    let secret = shown_secret(&page.body);
    assert!(secret.starts_with("kg_test_"));
    no_secret_in(&page, &secret);
    assert!(page.body.contains("data-show-once"));
    assert!(
        page.body
            .contains("<button type=\"button\" class=\"copy\" data-copy=\"secret\" hidden>")
    );
    let v = app.verify(&secret, &["orders:read"]).await;
    assert_eq!(v["code"], "VALID");
    assert_eq!(v["metadata"], json!({"plan": "pro"}));
    assert_eq!(v["remaining"], 4);
    let id = v["key_id"].as_str().unwrap().to_owned();
    // Every later page shows the prefix only.
    for path in [
        format!("/dashboard/keys/{id}"),
        "/dashboard/keys?status=all".into(),
    ] {
        let later = dash.get(&path).await;
        assert_eq!(later.status, StatusCode::OK);
        assert!(!later.body.contains(&secret), "{path} shows the secret");
        assert!(
            later.body.contains(&secret[..12]),
            "{path} shows the prefix"
        );
    }
    let audit = app
        .get(&format!("/v1/audit?action=key.created&target={id}"))
        .await;
    assert_eq!(audit.body["data"][0]["actor"], root_id(&app).await.as_str());
}

async fn bad_create_form_is_shown_again_and_creates_nothing(app: TestApp) {
    let mut dash = Dash::signed_in(&app, &app.root_key).await;
    for (form, needle) in [
        (
            vec![("name", "n"), ("owner", "o"), ("metadata", "[1]")],
            "metadata",
        ),
        (
            vec![
                ("name", "n"),
                ("owner", "o"),
                ("rate_limit", "x"),
                ("rate_period", "60"),
            ],
            "rate limit",
        ),
        (
            vec![("name", "n"), ("owner", "o"), ("scopes", "bad\u{1}scope")],
            "scope",
        ),
        (vec![("name", ""), ("owner", "o")], "name"),
    ] {
        let mut form = form;
        form.push(("env", "live"));
        let page = dash.submit("/dashboard/keys", &form).await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{needle}: {}",
            page.body
        );
        assert!(page.body.contains("role=\"alert\""), "{needle}");
        assert!(
            page.body.to_lowercase().contains(needle),
            "{needle}: {}",
            page.body
        );
        assert!(page.body.contains("value=\"o\""), "typed values kept");
    }
    let listed = app.get("/v1/keys").await;
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(1));
}

async fn list_filters_and_pages(app: TestApp) {
    for i in 0..55 {
        app.create_key(json!({"name": format!("bulk-{i:02}"), "owner": "team-a"}))
            .await;
    }
    let (_, _) = app
        .create_key(json!({"name": "needle", "owner": "team-b"}))
        .await;
    let (gone, _) = app
        .create_key(json!({"name": "gone", "owner": "team-b"}))
        .await;
    app.post(&format!("/v1/keys/{gone}/revoke"), json!({}))
        .await;
    let mut dash = Dash::signed_in(&app, &app.root_key).await;
    let first = dash.get("/dashboard/keys").await;
    assert_eq!(
        first.body.matches("name=\"id\"").count(),
        50,
        "one page of 50"
    );
    let next = first
        .body
        .split("href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap_or(""))
        .find(|s| s.contains("after="))
        .expect("a Next link")
        .replace("&#38;", "&");
    let second = dash.get(&next).await;
    assert!(second.body.contains("needle"));
    assert!(!second.body.contains("bulk-00"));
    let owner = dash.get("/dashboard/keys?owner=team-b").await;
    assert!(owner.body.contains("needle") && !owner.body.contains("bulk-01"));
    assert!(
        !owner.body.contains(">gone<"),
        "revoked keys are hidden by default"
    );
    let revoked = dash.get("/dashboard/keys?status=revoked").await;
    assert!(revoked.body.contains(">gone<") && !revoked.body.contains("needle"));
    assert!(revoked.body.contains("Revoked"), "status in words");
    let search = dash.get("/dashboard/keys?q=NEEDLE").await;
    assert!(search.body.contains("needle") && !search.body.contains("bulk-"));
    let bad = dash.get("/dashboard/keys?status=sideways").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

async fn edit_changes_only_what_changed(app: TestApp) {
    let (id, secret) = app
        .create_key(json!({"name": "edit-me", "owner": "o", "remaining": 10, "scopes": ["a"]}))
        .await;
    let mut dash = Dash::signed_in(&app, &app.root_key).await;
    let page = dash.get(&format!("/dashboard/keys/{id}")).await;
    let csrf = page.csrf();
    // Credits are spent while the page is open.
    assert_eq!(app.verify(&secret, &[]).await["remaining"], 9);
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "edited"),
        ("scopes", "a b"),
        ("rate_limit", "5"),
        ("rate_period", "1"),
        ("remaining", "10"),
        ("remaining_was", "10"),
        ("metadata", "{}"),
        ("expires", ""),
    ];
    let res = dash.post(&format!("/dashboard/keys/{id}"), &form).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(res.location(), format!("/dashboard/keys/{id}?saved=1"));
    let key = app.get(&format!("/v1/keys/{id}")).await.body;
    assert_eq!(key["name"], "edited");
    assert_eq!(key["scopes"], json!(["a", "b"]));
    assert_eq!(key["rate_limit"]["limit"], 5);
    assert_eq!(
        key["remaining"], 9,
        "unchanged credits are not written back"
    );
    let bad = [
        ("csrf", csrf.as_str()),
        ("name", "edited"),
        ("expires", "1999-01-01T00:00"),
    ];
    let res = dash.post(&format!("/dashboard/keys/{id}"), &bad).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    let audit = app
        .get(&format!("/v1/audit?action=key.updated&target={id}"))
        .await;
    assert_eq!(audit.body["data"][0]["actor"], root_id(&app).await.as_str());
}

async fn rotate_with_grace_then_revoke(app: TestApp) {
    let (id, old) = app.create_key(json!({"name": "rot", "owner": "o"})).await;
    let mut dash = Dash::signed_in(&app, &app.root_key).await;
    let bad = dash
        .submit(&format!("/dashboard/keys/{id}/rotate"), &[("grace", "5")])
        .await;
    assert_eq!(
        bad.status,
        StatusCode::BAD_REQUEST,
        "only the offered periods"
    );
    let page = dash
        .submit(
            &format!("/dashboard/keys/{id}/rotate"),
            &[("grace", "3600")],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let new = shown_secret(&page.body);
    no_secret_in(&page, &new);
    assert_ne!(new, old);
    assert_eq!(app.verify_code(&new).await, "VALID");
    assert_eq!(
        app.verify_code(&old).await,
        "VALID",
        "within the grace period"
    );
    app.clock.advance_secs(3601);
    assert_ne!(
        app.verify_code(&old).await,
        "VALID",
        "after the grace period"
    );
    // Past the idle timeout: sign in again.
    let mut dash = Dash::signed_in(&app, &app.root_key).await;
    // Revoke: a confirm page first (a GET changes nothing), then the POST.
    let confirm = dash.get(&format!("/dashboard/keys/{id}/revoke")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert_eq!(app.verify_code(&new).await, "VALID");
    let csrf = confirm.csrf();
    let res = dash
        .post(&format!("/dashboard/keys/{id}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(app.verify_code(&new).await, "REVOKED");
    let detail = dash.get(&format!("/dashboard/keys/{id}")).await;
    assert!(detail.body.contains("key.revoked") && detail.body.contains("key.rotated"));
    let audit = app
        .get(&format!("/v1/audit?action=key.rotated&target={id}"))
        .await;
    assert_eq!(audit.body["data"][0]["actor"], root_id(&app).await.as_str());
}

async fn bulk_revoke_asks_first_then_revokes(app: TestApp) {
    let (a, ka) = app.create_key(json!({"name": "a", "owner": "o"})).await;
    let (b, kb) = app.create_key(json!({"name": "b", "owner": "o"})).await;
    let (_, kc) = app.create_key(json!({"name": "c", "owner": "o"})).await;
    let mut dash = Dash::signed_in(&app, &app.root_key).await;
    let confirm = dash
        .submit("/dashboard/keys/revoke-selected", &[("id", &a), ("id", &b)])
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    assert!(confirm.body.contains("Revoke 2 keys"));
    assert_eq!(
        app.verify_code(&ka).await,
        "VALID",
        "the first step changes nothing"
    );
    let csrf = confirm.csrf();
    let res = dash
        .post(
            "/dashboard/keys/revoke-selected/confirm",
            &[("csrf", &csrf), ("id", &a), ("id", &b)],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/dashboard/keys?revoked=2");
    assert_eq!(app.verify_code(&ka).await, "REVOKED");
    assert_eq!(app.verify_code(&kb).await, "REVOKED");
    assert_eq!(app.verify_code(&kc).await, "VALID");
    let notice = dash.get(res.location()).await;
    assert!(notice.body.contains("Revoked 2 keys."));
}

async fn signing_secret_is_shown_once_and_audited(app: TestApp) {
    let (id, _) = app
        .create_key(json!({"name": "signer", "owner": "o"}))
        .await;
    let mut dash = Dash::signed_in(&app, &app.root_key).await;
    let page = dash
        .submit(&format!("/dashboard/keys/{id}/signing-secret"), &[])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let secret = shown_secret(&page.body);
    assert_eq!(secret.len(), 44, "base64 of 32 bytes");
    no_secret_in(&page, &secret);
    let detail = dash.get(&format!("/dashboard/keys/{id}")).await;
    assert!(!detail.body.contains(&secret));
    assert!(detail.body.contains("key.signing_secret_created"));
    let audit = app
        .get(&format!(
            "/v1/audit?action=key.signing_secret_created&target={id}"
        ))
        .await;
    assert_eq!(audit.body["data"][0]["actor"], root_id(&app).await.as_str());
}
