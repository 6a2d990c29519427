//! User flows through plain forms: create, set a password, disable behind
//! a confirm page, enable, end sessions; each audited with the session's
//! key as the actor.

use reqwest::StatusCode;

use super::{Dash, root_key_id};
use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    user_flows_work_through_forms,
    bad_user_input_changes_nothing
);

const PASSWORD: &str = "correct horse battery staple";

async fn create(dash: &Dash, name: &str) -> String {
    let res = dash
        .post(
            "/dashboard/users",
            &[
                ("username", name),
                ("password", PASSWORD),
                ("roles", "viewer admin"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let to = res.location.unwrap();
    let id = to
        .strip_prefix("/dashboard/users/")
        .and_then(|r| r.strip_suffix("?done=created"))
        .unwrap()
        .to_owned();
    id
}

async fn user_flows_work_through_forms(app: TestApp) {
    let dash = Dash::login(&app, &app.root_key).await;
    let id = create(&dash, "carol").await;
    let page = dash
        .get(&format!("/dashboard/users/{id}?done=created"))
        .await;
    assert!(page.body.contains("User created.") && page.body.contains("admin viewer"));
    assert!(!page.body.contains(PASSWORD));

    // Password: sessions end (the cut-off moves).
    let res = dash
        .post(
            &format!("/dashboard/users/{id}/password"),
            &[("password", "another long password")],
        )
        .await;
    assert_eq!(
        res.location.as_deref(),
        Some(format!("/dashboard/users/{id}?done=password").as_str())
    );
    let user = app.get(&format!("/v1/users/{id}")).await;
    let cut_after_password = user.body["sessions_cutoff_ms"].as_i64().unwrap_or(0);
    assert!(cut_after_password > 0, "{}", user.body);

    // Disable asks first (a GET changes nothing), then disables.
    let confirm = dash.get(&format!("/dashboard/users/{id}/disable")).await;
    assert!(confirm.body.contains("Disable user?"));
    assert_eq!(
        app.get(&format!("/v1/users/{id}")).await.body["disabled"],
        false
    );
    let res = dash
        .post(&format!("/dashboard/users/{id}/disable"), &[])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get(&format!("/v1/users/{id}")).await.body["disabled"],
        true
    );
    dash.post(&format!("/dashboard/users/{id}/enable"), &[])
        .await;
    assert_eq!(
        app.get(&format!("/v1/users/{id}")).await.body["disabled"],
        false
    );

    // End sessions: confirm page, then the cut-off moves again.
    let confirm = dash
        .get(&format!("/dashboard/users/{id}/revoke-sessions"))
        .await;
    assert!(confirm.body.contains("End every session?"));
    app.clock.advance_secs(5);
    let res = dash
        .post(&format!("/dashboard/users/{id}/revoke-sessions"), &[])
        .await;
    assert_eq!(
        res.location.as_deref(),
        Some(format!("/dashboard/users/{id}?done=revoked").as_str())
    );
    let user = app.get(&format!("/v1/users/{id}")).await;
    assert!(user.body["sessions_cutoff_ms"].as_i64().unwrap() > cut_after_password);

    // Every change is in the audit trail with the session's key as actor.
    let actor = root_key_id(&app).await;
    let audit = dash
        .get(&format!("/dashboard/audit?target={id}&actor={actor}"))
        .await;
    for action in ["user.created", "user.updated", "user.sessions_revoked"] {
        assert!(
            audit.body.contains(&format!(">{action}<")),
            "{action} missing: {}",
            audit.body
        );
    }
}

async fn bad_user_input_changes_nothing(app: TestApp) {
    let dash = Dash::login(&app, &app.root_key).await;
    let res = dash
        .post(
            "/dashboard/users",
            &[("username", "dave"), ("password", "short"), ("roles", "")],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.body.contains("role=\"alert\"") && res.body.contains("value=\"dave\""));
    let res = dash
        .post(
            "/dashboard/users",
            &[
                ("username", "dave"),
                ("password", PASSWORD),
                ("roles", "bad role!"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    let listed = app.get("/v1/users").await;
    assert_eq!(
        listed.body["data"].as_array().unwrap().len(),
        0,
        "{}",
        listed.body
    );
    // A post without the form token is refused.
    let id = create(&dash, "erin").await;
    let forged = Dash {
        csrf: "0".repeat(64),
        ..dash
    };
    let res = forged
        .post(&format!("/dashboard/users/{id}/disable"), &[])
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get(&format!("/v1/users/{id}")).await.body["disabled"],
        false
    );
    assert_eq!(
        forged.get("/dashboard/users/usr_nope").await.status,
        StatusCode::NOT_FOUND
    );
}
