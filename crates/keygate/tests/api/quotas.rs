//! Quotas: live sessions per user (`[sessions] max_per_user`: a login past
//! it ends the user's oldest session) and live API keys per tenant (`[keys]
//! max_per_tenant`: a create past it is refused, 409 `quota_exceeded`).
//! Concurrent logins and creates never overshoot.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app_with_toml};

crate::on_both_backends!(
    spawn = crate::quotas::spawn_capped;
    a_login_past_the_session_cap_ends_the_oldest_session,
    concurrent_logins_leave_at_most_the_cap,
    key_creates_past_the_tenant_cap_are_refused,
    concurrent_key_creates_never_overshoot,
);

const PASSWORD: &str = "correct horse battery staple";
const SESSIONS: usize = 3;
const KEYS: usize = 2;

pub async fn spawn_capped(backend: Backend) -> Option<TestApp> {
    let toml =
        format!("[sessions]\nmax_per_user = {SESSIONS}\n\n[keys]\nmax_per_tenant = {KEYS}\n");
    spawn_app_with_toml(backend, Some(&toml), |_| {}).await
}

async fn create_user(app: &TestApp, username: &str) {
    let res = app
        .post(
            "/v1/users",
            json!({"username": username, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
}

async fn login(app: &TestApp, username: &str) -> String {
    let res = app
        .request(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(
                json!({"username": username, "password": PASSWORD, "refresh_token_in_body": true}),
            ),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    res.body["refresh_token"].as_str().unwrap().to_owned()
}

/// Refreshes `token`; the successor, or None when the session is over.
async fn refresh(app: &TestApp, token: &str) -> Option<String> {
    let res = app
        .request(
            Method::POST,
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": token})),
        )
        .await;
    match res.status {
        StatusCode::OK => Some(res.body["refresh_token"].as_str().unwrap().to_owned()),
        _ => {
            assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
            assert_eq!(res.body["detail"], "the session is revoked", "{}", res.body);
            None
        }
    }
}

async fn a_login_past_the_session_cap_ends_the_oldest_session(app: TestApp) {
    create_user(&app, "ivan").await;
    create_user(&app, "judy").await;
    let mut tokens = Vec::new();
    for _ in 0..SESSIONS {
        tokens.push(login(&app, "ivan").await);
    }
    // Judy's sessions are hers alone: they neither count nor get ended.
    let judy = login(&app, "judy").await;
    // At the cap a login still succeeds, and the oldest session ends.
    tokens.push(login(&app, "ivan").await);
    assert!(refresh(&app, &tokens[0]).await.is_none(), "oldest ended");
    for t in &tokens[1..] {
        assert!(refresh(&app, t).await.is_some(), "newer sessions live on");
    }
    assert!(refresh(&app, &judy).await.is_some());
    let audit = app.get("/v1/audit?limit=500").await.body["data"].clone();
    let started = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "session.started")
        .filter(|e| e["detail"]["sessions_ended"] == json!(1))
        .count();
    assert_eq!(started, 1, "{audit}");
}

async fn concurrent_logins_leave_at_most_the_cap(app: TestApp) {
    create_user(&app, "kim").await;
    let body = |_| json!({"username": "kim", "password": PASSWORD, "refresh_token_in_body": true});
    let mut live = 0;
    // Five: the login throttle admits that many attempts of one name at once.
    for (status, body) in at_once(&app, "/v1/auth/login", 5, body).await {
        assert_eq!(status, StatusCode::OK, "{body}");
        if refresh(&app, body["refresh_token"].as_str().unwrap())
            .await
            .is_some()
        {
            live += 1;
        }
    }
    assert_eq!(live, SESSIONS, "exactly the cap survives");
}

async fn create_key(app: &TestApp, tenant: &str, name: &str) -> crate::helpers::Response {
    app.post(
        "/v1/keys",
        json!({"name": name, "owner": "o", "tenant": tenant}),
    )
    .await
}

fn assert_quota(res: &crate::helpers::Response) {
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.body);
    assert_eq!(res.headers["content-type"], "application/problem+json");
    assert_eq!(res.body["code"], "quota_exceeded", "{}", res.body);
}

async fn key_creates_past_the_tenant_cap_are_refused(app: TestApp) {
    let mut ids: Vec<Value> = Vec::new();
    for i in 0..KEYS {
        let res = create_key(&app, "t1", &format!("k{i}")).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        ids.push(res.body["id"].clone());
    }
    let audit_before = app.get("/v1/audit?limit=500").await.body["data"].clone();
    let res = create_key(&app, "t1", "one too many").await;
    assert_quota(&res);
    assert!(
        res.body["detail"]
            .as_str()
            .unwrap()
            .contains(&KEYS.to_string())
    );
    // Refused, nothing written.
    let audit_after = app.get("/v1/audit?limit=500").await.body["data"].clone();
    assert_eq!(audit_before, audit_after);
    // Another tenant has its own count.
    let res = create_key(&app, "t2", "other").await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    // A revoked key no longer counts.
    let id = ids[0].as_str().unwrap();
    let res = app.post(&format!("/v1/keys/{id}/revoke"), json!({})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let res = create_key(&app, "t1", "replacement").await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_quota(&create_key(&app, "t1", "again too many").await);
}

async fn concurrent_key_creates_never_overshoot(app: TestApp) {
    let body = |i| json!({"name": format!("c{i}"), "owner": "o", "tenant": "t3"});
    let mut created = 0;
    for (status, body) in at_once(&app, "/v1/keys", 10, body).await {
        if status == StatusCode::CREATED {
            created += 1;
        } else {
            assert_eq!(status, StatusCode::CONFLICT, "{body}");
            assert_eq!(body["code"], "quota_exceeded", "{body}");
        }
    }
    assert_eq!(created, KEYS);
}

/// Sends `n` copies of a POST at once, each on its own task; their
/// statuses and bodies.
async fn at_once(
    app: &TestApp,
    path: &str,
    n: usize,
    body: impl Fn(usize) -> Value,
) -> Vec<(StatusCode, Value)> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let req = app
            .http
            .post(format!("{}{path}", app.base))
            .bearer_auth(&app.root_key)
            .json(&body(i));
        set.spawn(async move {
            let res = req.send().await.unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        });
    }
    set.join_all().await
}
