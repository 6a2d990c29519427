//! Signing in and out, the throttle, expiry, and a tenant admin's view.

use reqwest::StatusCode;

use super::{Dash, tenant_admin};
use crate::helpers::TestApp;

crate::on_both_backends!(
    sign_in_with_an_admin_key_and_out_again,
    wrong_and_non_admin_keys_are_refused_and_audited,
    failed_sign_ins_are_throttled,
    an_idle_session_ends_and_asks_to_sign_in,
    a_revoked_key_ends_its_sessions,
    a_tenant_admin_sees_only_its_tenant,
);

async fn sign_in_with_an_admin_key_and_out_again(app: TestApp) {
    let mut dash = Dash::new(&app);
    let res = dash.login(&app.root_key).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let keys = dash.get("/dashboard/keys").await;
    assert_eq!(keys.status, StatusCode::OK);
    assert!(
        keys.body.contains("root admin"),
        "signed in as the root key"
    );
    let old = dash.cookie.clone().expect("cookie");
    let csrf = keys.csrf();
    let out = dash.post("/dashboard/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/dashboard/login");
    assert!(dash.cookie.is_none(), "the cookie is cleared");
    // The old token no longer opens anything.
    dash.cookie = Some(old);
    let after = dash.get("/dashboard/keys").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert!(after.location().starts_with("/dashboard/login"));
    let audit = app.get("/v1/audit?action=dashboard.login").await;
    let root_id = app.get("/v1/keys").await.body["data"][0]["id"].clone();
    assert_eq!(audit.body["data"][0]["actor"], root_id, "{}", audit.body);
    let audit = app.get("/v1/audit?action=dashboard.logout").await;
    assert_eq!(
        audit.body["data"].as_array().map(Vec::len),
        Some(1),
        "{}",
        audit.body
    );
}

async fn wrong_and_non_admin_keys_are_refused_and_audited(app: TestApp) {
    let (_, plain) = app
        .create_key(serde_json::json!({"name": "svc", "owner": "svc", "scopes": ["orders:read"]}))
        .await;
    let mut dash = Dash::new(&app);
    for key in [plain.as_str(), "kg_live_not-a-key", ""] {
        let res = dash.login(key).await;
        assert!(
            res.status == StatusCode::UNAUTHORIZED || res.status == StatusCode::BAD_REQUEST,
            "{key}: {}",
            res.status
        );
        assert!(dash.cookie.is_none());
        assert!(!res.body.contains(&plain), "the key is not echoed back");
    }
}

async fn failed_sign_ins_are_throttled(app: TestApp) {
    let mut dash = Dash::new(&app);
    let mut throttled = None;
    for _ in 0..50 {
        let res = dash.login("kg_live_wrong").await;
        if res.status == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(res);
            break;
        }
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    }
    let res = throttled.expect("throttled within 50 failures");
    assert!(res.headers.contains_key("retry-after"));
    // While throttled, even the right key waits.
    let res = dash.login(&app.root_key).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(dash.cookie.is_none());
}

async fn an_idle_session_ends_and_asks_to_sign_in(app: TestApp) {
    let mut dash = Dash::signed_in(&app, &app.root_key).await;
    app.clock.advance_secs(1000);
    assert_eq!(dash.get("/dashboard/keys").await.status, StatusCode::OK);
    app.clock.advance_secs(1000);
    assert_eq!(
        dash.get("/dashboard/keys").await.status,
        StatusCode::OK,
        "activity keeps it"
    );
    app.clock.advance_secs(1801);
    let res = dash.get("/dashboard/keys").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/dashboard/login?next=%2Fdashboard%2Fkeys");
    assert!(dash.cookie.is_none(), "the dead cookie is cleared");
}

async fn a_revoked_key_ends_its_sessions(app: TestApp) {
    let (id, key) = tenant_admin(&app, "acme").await;
    let mut dash = Dash::signed_in(&app, &key).await;
    assert_eq!(dash.get("/dashboard/keys").await.status, StatusCode::OK);
    let res = app
        .post(&format!("/v1/keys/{id}/revoke"), serde_json::json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let res = dash.get("/dashboard/keys").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
}

async fn a_tenant_admin_sees_only_its_tenant(app: TestApp) {
    let (_, acme_admin) = tenant_admin(&app, "acme").await;
    let (own, _) = app
        .create_key(serde_json::json!({"name": "acme-svc", "owner": "a", "tenant": "acme"}))
        .await;
    let (other, _) = app
        .create_key(serde_json::json!({"name": "globex-svc", "owner": "g", "tenant": "globex"}))
        .await;
    let mut dash = Dash::signed_in(&app, &acme_admin).await;
    let list = dash.get("/dashboard/keys?status=all").await;
    assert!(list.body.contains("acme-svc"));
    assert!(!list.body.contains("globex-svc"));
    assert!(!list.body.contains("root admin"));
    let asked = dash.get("/dashboard/keys?tenant=globex&status=all").await;
    assert!(!asked.body.contains("globex-svc"));
    assert_eq!(
        dash.get(&format!("/dashboard/keys/{own}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        dash.get(&format!("/dashboard/keys/{other}")).await.status,
        StatusCode::NOT_FOUND
    );
    let res = dash
        .submit(&format!("/dashboard/keys/{other}/revoke"), &[])
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&format!("/v1/keys/{other}")).await.body["status"],
        "active"
    );
    // A key it creates lands in its tenant whatever the form says.
    let res = dash
        .submit(
            "/dashboard/keys",
            &[
                ("name", "made"),
                ("owner", "o"),
                ("tenant", "globex"),
                ("env", "live"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
}
