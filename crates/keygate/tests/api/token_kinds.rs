//! Token confusion (issue 9, item 3): a client-credentials token is not a
//! user token. Every token keygate signs says which it is (`kg_kind`); `jwt`
//! routes and the user half of `api_key_and_jwt` take user tokens unless
//! the route opts in with `jwt_subjects`; a client token's `sub` is its key
//! id, never a free-text owner; the internal token, forward-auth's headers
//! and introspection all name the kind; NumericDates are integers.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::gateway::{assert_problem, internal_claims};
use crate::gateway_upstream::{Gw, spawn_upstream};
use crate::helpers::{Backend, Response, TestApp, spawn_app_with_toml};
use crate::oauth::{create_key, form};
use crate::on_both_backends;

on_both_backends!(
    spawn = crate::token_kinds::spawn;
    jwt_routes_take_user_tokens_unless_they_opt_in_to_clients,
    the_user_half_of_api_key_and_jwt_refuses_a_client_token,
    internal_tokens_and_forward_auth_name_the_kind,
    a_key_owned_by_a_user_id_cannot_mint_that_users_sub,
    introspection_reports_the_kind_and_integer_dates,
);

const PASSWORD: &str = "correct horse battery staple";

fn route(name: &str, prefix: &str, upstream: &str, extra: &str) -> String {
    format!(
        "[[gateway.routes]]\nname = \"{name}\"\nmatch = {{ path_prefix = \"{prefix}\" }}\nupstream = \"{upstream}\"\n{extra}\n"
    )
}

async fn spawn(backend: Backend) -> Option<Gw> {
    let upstream = spawn_upstream().await;
    let t = routes(&format!("http://{}", upstream.addr));
    let app = spawn_app_with_toml(backend, Some(&t), |_| {}).await?;
    let url = format!("http://{}", app.gateway_addr.unwrap());
    Some(Gw { app, upstream, url })
}

fn routes(u: &str) -> String {
    let u = u.to_owned();
    let mut t = String::from("[gateway]\nlisten = \"127.0.0.1:0\"\n");
    t += &route("users", "/users", &u, "auth = \"jwt\"");
    t += &route(
        "clients",
        "/clients",
        &u,
        "auth = \"jwt\"\njwt_subjects = \"clients\"",
    );
    t += &route("any", "/any", &u, "auth = \"jwt\"\njwt_subjects = \"any\"");
    t += &route("either", "/either", &u, "auth = \"api_key_or_jwt\"");
    t += &route(
        "either-any",
        "/either-any",
        &u,
        "auth = \"api_key_or_jwt\"\njwt_subjects = \"any\"",
    );
    t += &route("both", "/both", &u, "auth = \"api_key_and_jwt\"");
    t += &route("keys", "/keys", &u, "auth = \"api_key\"");
    t
}

#[test]
fn gateway_check_shows_which_tokens_a_route_takes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, routes("http://127.0.0.1:9")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keygate"))
        .args(["gateway", "check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(line("clients").contains("jwt (clients)"), "{stdout}");
    assert!(
        line("either-any").contains("api_key_or_jwt (any)"),
        "{stdout}"
    );
    assert!(!line("users").contains('('), "{stdout}");
}

async fn create_user(app: &TestApp, username: &str) -> String {
    let res = app
        .post(
            "/v1/users",
            json!({"username": username, "password": PASSWORD, "roles": ["customer"]}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    res.body["id"].as_str().unwrap().to_owned()
}

async fn login(app: &TestApp, username: &str) -> String {
    let res = app
        .request(
            reqwest::Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"username": username, "password": PASSWORD})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    res.body["access_token"].as_str().unwrap().to_owned()
}

/// A client-credentials token for a fresh key: (key id, key, token).
async fn client_token(app: &TestApp, owner: &str) -> (String, String, String) {
    let (id, key) = create_key(app, json!({"name": "svc", "owner": owner})).await;
    let (status, _, body) = form(
        app,
        "/oauth2/token",
        Some((&id, &key)),
        None,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    (id, key, token)
}

fn payload(token: &str) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn get(gw: &Gw, path: &str, bearer: &str) -> Response {
    gw.app.raw(gw.get(path).bearer_auth(bearer)).await
}

async fn jwt_routes_take_user_tokens_unless_they_opt_in_to_clients(gw: Gw) {
    let user_id = create_user(&gw.app, "dana").await;
    let user = login(&gw.app, "dana").await;
    let (_, _, client) = client_token(&gw.app, "svc-owner").await;

    // The attack: a client token on a users-only route.
    let res = get(&gw, "/users/me", &client).await;
    assert_problem(&res, StatusCode::FORBIDDEN, "wrong_token_kind");
    let res = get(&gw, "/either/me", &client).await;
    assert_problem(&res, StatusCode::FORBIDDEN, "wrong_token_kind");
    let res = get(&gw, "/users/me", &user).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(internal_claims(&gw, &res, "users").await["sub"], user_id);

    // Opted in.
    let res = get(&gw, "/clients/x", &client).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let res = get(&gw, "/clients/x", &user).await;
    assert_problem(&res, StatusCode::FORBIDDEN, "wrong_token_kind");
    for path in ["/any/x", "/either-any/x"] {
        for token in [&user, &client] {
            let res = get(&gw, path, token).await;
            assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.body);
        }
    }
}

async fn the_user_half_of_api_key_and_jwt_refuses_a_client_token(gw: Gw) {
    create_user(&gw.app, "erin").await;
    let user = login(&gw.app, "erin").await;
    let (key_id, key, client) = client_token(&gw.app, "svc-owner").await;
    // Its own key's token as "the user": refused.
    let res = gw
        .app
        .raw(
            gw.get("/both/x")
                .header("x-api-key", &key)
                .bearer_auth(&client),
        )
        .await;
    assert_problem(&res, StatusCode::FORBIDDEN, "wrong_token_kind");
    let res = gw
        .app
        .raw(
            gw.get("/both/x")
                .header("x-api-key", &key)
                .bearer_auth(&user),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let claims = internal_claims(&gw, &res, "both").await;
    assert_eq!(claims["kg_kind"], "user");
    assert_eq!(claims["client_id"], key_id.as_str());
}

async fn internal_tokens_and_forward_auth_name_the_kind(gw: Gw) {
    let user_id = create_user(&gw.app, "fran").await;
    let user = login(&gw.app, "fran").await;
    let (key_id, key, client) = client_token(&gw.app, "svc-owner").await;

    let res = get(&gw, "/users/me", &user).await;
    let claims = internal_claims(&gw, &res, "users").await;
    assert_eq!(claims["kg_kind"], "user");
    assert_eq!(claims["sub"], user_id);
    assert!(claims.get("client_id").is_none(), "{claims}");

    // A key alone: the principal is the client, named by its key id.
    let res = gw
        .app
        .raw(gw.get("/keys/x").header("x-api-key", &key))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let claims = internal_claims(&gw, &res, "keys").await;
    assert_eq!(claims["kg_kind"], "client");
    assert_eq!(claims["sub"], key_id.as_str());
    assert_eq!(claims["client_id"], key_id.as_str());
    assert_eq!(claims["kg_owner"], "svc-owner");

    // A client token on a route that takes them: the same principal.
    let res = get(&gw, "/clients/x", &client).await;
    let claims = internal_claims(&gw, &res, "clients").await;
    assert_eq!(claims["kg_kind"], "client");
    assert_eq!(claims["sub"], key_id.as_str());
    assert_eq!(claims["client_id"], key_id.as_str());
    assert_eq!(claims["kg_owner"], "svc-owner");

    // Forward-auth says the same in its headers.
    let fa = |uri: &str| {
        gw.app
            .http
            .get(format!("{}/v1/forward-auth", gw.app.base))
            .header("x-original-uri", uri)
            .header("x-original-method", "GET")
    };
    let res = gw.app.raw(fa("/users/me").bearer_auth(&user)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.headers["x-keygate-kind"], "user");
    assert_eq!(res.headers["x-keygate-subject"], user_id.as_str());
    // Present but empty: a proxy copying it overwrites a forged one.
    assert_eq!(res.headers["x-keygate-client-id"], "");
    assert_eq!(res.headers["x-keygate-key-id"], "");
    let res = gw.app.raw(fa("/keys/x").header("x-api-key", &key)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.headers["x-keygate-kind"], "client");
    assert_eq!(res.headers["x-keygate-subject"], key_id.as_str());
    assert_eq!(res.headers["x-keygate-client-id"], key_id.as_str());
    let res = gw.app.raw(fa("/users/me").bearer_auth(&client)).await;
    assert_problem(&res, StatusCode::FORBIDDEN, "wrong_token_kind");
}

async fn a_key_owned_by_a_user_id_cannot_mint_that_users_sub(gw: Gw) {
    let app = &gw.app;
    let victim = create_user(app, "gail").await;
    let (key_id, _, token) = client_token(app, &victim).await;
    let claims = payload(&token);
    assert_ne!(claims["sub"], victim.as_str(), "{claims}");
    assert_eq!(claims["sub"], key_id.as_str());
    assert_eq!(claims["client_id"], key_id.as_str());
    assert_eq!(claims["kg_owner"], victim.as_str());
    assert_eq!(claims["kg_kind"], "client");
    let user = login(app, "gail").await;
    assert_eq!(payload(&user)["kg_kind"], "user");
    assert_eq!(payload(&user)["sub"], victim.as_str());
}

async fn introspection_reports_the_kind_and_integer_dates(gw: Gw) {
    let app = &gw.app;
    let (_, introspector) = create_key(
        app,
        json!({"name": "i", "owner": "i", "scopes": ["tokens:introspect"]}),
    )
    .await;
    let user_id = create_user(app, "hana").await;
    let user = login(app, "hana").await;
    let (key_id, key, client) = client_token(app, "svc-owner").await;
    let introspect = |token: String| {
        let (app, introspector) = (app, &introspector);
        async move {
            let (status, _, body) = form(
                app,
                "/oauth2/introspect",
                None,
                Some(introspector),
                &[("token", &token)],
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["active"], true, "{body}");
            body
        }
    };
    let body = introspect(user.clone()).await;
    for date in ["exp", "iat", "nbf"] {
        assert!(body[date].is_u64(), "{date} is not an integer: {body}");
    }
    assert_eq!(body["kg_kind"], "user");
    assert_eq!(body["sub"], user_id.as_str());
    let body = introspect(client).await;
    assert_eq!(body["kg_kind"], "client");
    assert_eq!(body["sub"], key_id.as_str());
    assert_eq!(body["client_id"], key_id.as_str());
    assert_eq!(body["kg_owner"], "svc-owner");
    for date in ["exp", "iat", "nbf"] {
        assert!(body[date].is_u64(), "{date} is not an integer: {body}");
    }
    // A refresh token is always a user's.
    let res = app
        .request(
            reqwest::Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"username": "hana", "password": PASSWORD, "refresh_token_in_body": true})),
        )
        .await;
    let body = introspect(res.body["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(body["kg_kind"], "user");
    assert_eq!(body["sub"], user_id.as_str());
    // An API key is a client too, named the same way.
    let body = introspect(key).await;
    assert_eq!(body["kg_kind"], "client");
    assert_eq!(body["sub"], key_id.as_str());
    assert_eq!(body["kg_owner"], "svc-owner");
    assert!(body["iat"].is_u64(), "{body}");
}
