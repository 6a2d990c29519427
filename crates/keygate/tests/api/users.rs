//! Users over HTTP: lifecycle, tenant confinement, validation that changes
//! nothing, session cut-offs, and passwords that never come back out.

use keygate_core::MillisClock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestApp;

crate::on_both_backends!(
    users_lifecycle,
    users_are_confined_to_their_tenant,
    users_refuse_bad_input_and_change_nothing,
    users_cutoff_moves_on_password_change_disable_and_revoke,
    users_passwords_appear_in_no_response_audit_entry_or_column,
    users_cli_reads_passwords_from_stdin_only,
    users_lookalike_names_are_one_name,
);

const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "tr0ub4dor & three more words";

async fn create_user(app: &TestApp, body: Value) -> Value {
    let res = app.post("/v1/users", body).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    res.body
}

fn id_of(user: &Value) -> String {
    user["id"].as_str().unwrap().to_owned()
}

async fn users_lifecycle(app: TestApp) {
    let user = create_user(
        &app,
        json!({"username": " Alice ", "password": PASSWORD, "roles": ["viewer", "billing", "viewer"],
               "claims": {"department": "sales"}}),
    )
    .await;
    let id = id_of(&user);
    assert!(id.starts_with("usr_") && id.len() == 20, "{id}");
    assert_eq!(user["username"], "Alice");
    assert_eq!(user["roles"], json!(["billing", "viewer"]));
    assert_eq!(user["claims"], json!({"department": "sales"}));
    assert_eq!(user["disabled"], false);
    assert_eq!(user["sessions_cutoff_ms"], 0);
    assert!(user["tenant"].is_null());
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());

    let shown = app.get(&format!("/v1/users/{id}")).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.body, user);

    for i in 0..4 {
        create_user(
            &app,
            json!({"username": format!("u{i}"), "password": PASSWORD, "tenant": "t1"}),
        )
        .await;
    }
    let listed = app.get("/v1/users").await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 5);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/users?tenant=t1&limit=3&cursor={c}"),
            None => "/v1/users?tenant=t1&limit=3".to_owned(),
        };
        let page = app.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        for u in page.body["data"].as_array().unwrap() {
            assert_eq!(u["tenant"], "t1");
            seen.push(u["username"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["u0", "u1", "u2", "u3"]);

    let res = app
        .patch(
            &format!("/v1/users/{id}"),
            json!({"roles": ["editor"], "claims": {"department": "ops"}}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["roles"], json!(["editor"]));
    assert_eq!(res.body["claims"], json!({"department": "ops"}));
    assert_eq!(res.body["sessions_cutoff_ms"], 0);
    let res = app
        .post(&format!("/v1/users/{id}/revoke-sessions"), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["sessions_cutoff_ms"], app.clock.now_millis());

    let res = app.get(&format!("/v1/audit?target={id}")).await;
    let entries = res.body["data"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "session.user_revoked",
            "user.sessions_revoked",
            "user.updated",
            "user.created"
        ]
    );
    assert_eq!(entries[2]["detail"]["fields"], json!(["roles", "claims"]));
    assert!(entries[0]["actor"].as_str().unwrap().starts_with("key_"));

    // Unknown, malformed, unauthenticated, not an admin.
    let missing = app.get("/v1/users/usr_0000000000000000").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["code"], "not_found");
    let bad = app.get("/v1/users/key_0000000000000000").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["code"], "invalid_user_id");
    let res = app.request(Method::GET, "/v1/users", None, None).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let (_, plain) = app.create_key(json!({"name": "p", "owner": "o"})).await;
    let res = app
        .request(Method::GET, "/v1/users", Some(&plain), None)
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
}

async fn users_are_confined_to_their_tenant(app: TestApp) {
    let (_, acme_admin) = app
        .create_key(
            json!({"name": "acme admin", "owner": "acme", "tenant": "acme", "scopes": ["admin"]}),
        )
        .await;
    let globex = create_user(
        &app,
        json!({"username": "g", "password": PASSWORD, "tenant": "globex"}),
    )
    .await;
    let gid = id_of(&globex);
    let as_acme = |method: Method, path: String, body: Option<Value>| {
        let key = acme_admin.clone();
        let app = &app;
        async move { app.request(method, &path, Some(&key), body).await }
    };
    let res = as_acme(
        Method::POST,
        "/v1/users".into(),
        Some(json!({"username": "a", "password": PASSWORD})),
    )
    .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(res.body["tenant"], "acme");
    let res = as_acme(
        Method::POST,
        "/v1/users".into(),
        Some(json!({"username": "b", "password": PASSWORD, "tenant": "globex"})),
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    for (method, path, body) in [
        (Method::GET, format!("/v1/users/{gid}"), None),
        (
            Method::PATCH,
            format!("/v1/users/{gid}"),
            Some(json!({"disabled": true})),
        ),
        (
            Method::POST,
            format!("/v1/users/{gid}/revoke-sessions"),
            None,
        ),
    ] {
        let res = as_acme(method.clone(), path.clone(), body).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let listed = as_acme(Method::GET, "/v1/users".into(), None).await;
    let data = listed.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["tenant"], "acme");
    let listed = as_acme(Method::GET, "/v1/users?tenant=globex".into(), None).await;
    assert!(listed.body["data"].as_array().unwrap().is_empty());
    // globex's user is untouched.
    let g = app.get(&format!("/v1/users/{gid}")).await;
    assert_eq!(g.body, globex);
}

async fn users_refuse_bad_input_and_change_nothing(app: TestApp) {
    let user = create_user(
        &app,
        json!({"username": "Bob", "password": PASSWORD, "roles": ["viewer"]}),
    )
    .await;
    let id = id_of(&user);
    let path = format!("/v1/users/{id}");
    let audit_before = app.get("/v1/audit?limit=500").await.body["data"].clone();
    let long = "p".repeat(1025);
    let big = "x".repeat(2100);
    let cases: Vec<(Method, &str, Value, StatusCode, &str)> = vec![
        (
            Method::POST,
            "/v1/users",
            json!({"username": "c", "password": "too short"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/users",
            json!({"username": "c", "password": long}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/users",
            json!({"username": "c", "password": PASSWORD, "claims": {"sub": "x"}}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/users",
            json!({"username": "c", "password": PASSWORD, "claims": {"big": big}}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/users",
            json!({"username": "c", "password": PASSWORD, "roles": ["has space"]}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/users",
            json!({"username": "c", "password": PASSWORD, "tenant": "a/b"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/users",
            json!({"username": "   ", "password": PASSWORD}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/users",
            json!({"username": "c\u{7}", "password": PASSWORD}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/users",
            json!({"username": "c", "password": PASSWORD, "admin": true}),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            Method::POST,
            "/v1/users",
            json!({"username": "bOB", "password": PASSWORD}),
            StatusCode::CONFLICT,
            "already_exists",
        ),
        (
            Method::PATCH,
            &path,
            json!({"password": "short"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::PATCH,
            &path,
            json!({"claims": {"roles": ["admin"]}}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::PATCH,
            &path,
            json!({"username": "renamed"}),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            Method::PATCH,
            &path,
            json!({"disabled": "yes"}),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let res = app
            .request(
                method.clone(),
                path,
                Some(&app.root_key),
                Some(body.clone()),
            )
            .await;
        assert_eq!(res.status, status, "{method} {path} {body}: {}", res.body);
        assert_eq!(res.body["code"], code, "{body}");
        assert_eq!(
            res.headers.get("content-type").unwrap(),
            "application/problem+json"
        );
    }
    let listed = app.get("/v1/users").await;
    assert_eq!(listed.body["data"], json!([user]));
    assert_eq!(app.get(&path).await.body, user);
    assert_eq!(
        app.get("/v1/audit?limit=500").await.body["data"],
        audit_before
    );
}

async fn users_cutoff_moves_on_password_change_disable_and_revoke(app: TestApp) {
    let user = create_user(&app, json!({"username": "carol", "password": PASSWORD})).await;
    let path = format!("/v1/users/{}", id_of(&user));
    let mut last = 0_i64;
    let steps: [(&str, Value, bool); 5] = [
        ("roles", json!({"roles": ["x"]}), false),
        ("password", json!({"password": NEW_PASSWORD}), true),
        ("claims", json!({"claims": {"k": 1}}), false),
        ("disable", json!({"disabled": true}), true),
        ("enable", json!({"disabled": false}), false),
    ];
    for (what, body, moves) in steps {
        app.clock.advance_millis(1789);
        let res = app.patch(&path, body).await;
        assert_eq!(res.status, StatusCode::OK, "{what}: {}", res.body);
        let cutoff = res.body["sessions_cutoff_ms"].as_i64().unwrap();
        if moves {
            assert_eq!(cutoff, app.clock.now_millis(), "{what}");
            last = cutoff;
        } else {
            assert_eq!(cutoff, last, "{what}");
        }
        assert_eq!(app.get(&path).await.body["sessions_cutoff_ms"], cutoff);
    }
    app.clock.advance_millis(1789);
    let res = app
        .post(&format!("{path}/revoke-sessions"), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body["sessions_cutoff_ms"], app.clock.now_millis());
    let res = app.get(&format!("/v1/audit?target={}", id_of(&user))).await;
    let updated = res.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "user.updated" && e["detail"]["sessions_revoked"] == true)
        .count();
    assert_eq!(updated, 2, "password and disable ended sessions");
}

async fn users_passwords_appear_in_no_response_audit_entry_or_column(app: TestApp) {
    let mut seen = String::new();
    let user = create_user(
        &app,
        json!({"username": "dave", "password": PASSWORD, "roles": ["viewer"]}),
    )
    .await;
    let id = id_of(&user);
    seen.push_str(&user.to_string());
    let res = app
        .patch(
            &format!("/v1/users/{id}"),
            json!({"password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    seen.push_str(&res.body.to_string());
    // A refused password is not echoed either.
    let res = app
        .patch(
            &format!("/v1/users/{id}"),
            json!({"password": "tiny secret"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    seen.push_str(&res.body.to_string());
    for path in [
        format!("/v1/users/{id}"),
        "/v1/users".to_owned(),
        "/v1/audit?limit=500".to_owned(),
    ] {
        seen.push_str(&app.get(&path).await.body.to_string());
    }
    for secret in [PASSWORD, NEW_PASSWORD, "tiny secret", "$argon2"] {
        assert!(!seen.contains(secret), "{secret} leaked");
    }

    let dump = dump_tables(&app, &["users", "audit_log"]).await;
    for secret in [PASSWORD, NEW_PASSWORD, "tiny secret"] {
        assert!(!dump.contains(secret), "{secret} stored");
    }
    // The one hash stored is the current password's argon2id PHC string.
    assert_eq!(dump.matches("$argon2id$v=19$m=19456,t=2,p=1$").count(), 1);
}

/// Every text value of `tables`, read straight from the database.
async fn dump_tables(app: &TestApp, tables: &[&str]) -> String {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let url = app.args.database_url.clone().unwrap();
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    let mut dump = String::new();
    for table in tables {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {table}")))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        for row in rows {
            for i in 0..row.len() {
                if let Ok(Some(text)) = row.try_get::<Option<String>, _>(i) {
                    dump.push_str(&text);
                    dump.push('\n');
                }
            }
        }
    }
    conn.close().await.unwrap();
    dump
}

/// Runs `keygate users ARGS` against the app, with `stdin` piped in.
fn cli(app: &TestApp, args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_keygate"))
        .arg("users")
        .args(args)
        .env("KEYGATE_URL", &app.base)
        .env("KEYGATE_ADMIN_KEY", &app.root_key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn users_cli_reads_passwords_from_stdin_only(app: TestApp) {
    // The CLI blocks on its child process; run it off the async workers.
    let app = std::sync::Arc::new(app);
    let run = |args: Vec<String>, stdin: String| {
        let app = app.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                cli(&app, &args, &stdin)
            })
            .await
            .unwrap()
        }
    };
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    let (code, _, err) = run(args(&["create", "--username", "erin"]), String::new()).await;
    assert_eq!(code, Some(2));
    assert!(err.contains("--password-stdin"), "{err}");

    let (code, out, err) = run(
        args(&[
            "create",
            "--username",
            "erin",
            "--role",
            "viewer",
            "--password-stdin",
            "--json",
        ]),
        format!("{PASSWORD}\n"),
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    let user: Value = serde_json::from_str(&out).unwrap();
    let id = id_of(&user);
    assert_eq!(user["roles"], json!(["viewer"]));

    let (code, out, _) = run(args(&["list"]), String::new()).await;
    assert_eq!(code, Some(0));
    assert!(out.contains(&id) && out.contains("erin"), "{out}");
    let (code, out, _) = run(
        args(&["update", &id, "--disable", "--password-stdin"]),
        format!("{NEW_PASSWORD}\r\n"),
    )
    .await;
    assert_eq!(code, Some(0));
    assert!(out.contains("disabled") && out.contains("true"), "{out}");
    let (code, out, _) = run(args(&["revoke-sessions", &id, "--json"]), String::new()).await;
    assert_eq!(code, Some(0));
    let revoked: Value = serde_json::from_str(&out).unwrap();
    // A second cut-off lies a full second after the first (the clock here
    // stands still): see users::service::next_cutoff.
    assert_eq!(revoked["sessions_cutoff_ms"], app.clock.now_millis() + 1000);
    let (code, _, err) = run(args(&["show", "key_0000000000000000"]), String::new()).await;
    assert_eq!(code, Some(2));
    assert!(err.contains("not a user id"), "{err}");

    // The new password went in whole, its line ending stripped, and is
    // stored only as its hash.
    let dump = dump_tables(&app, &["users", "audit_log"]).await;
    assert!(!dump.contains(PASSWORD) && !dump.contains(NEW_PASSWORD));
    let stored = dump.lines().find(|l| l.starts_with("$argon2id$")).unwrap();
    let stored = keygate_core::users::PhcHash::from_stored(stored.to_owned());
    assert!(keygate_core::users::password::verify_now(NEW_PASSWORD.as_bytes(), &stored).unwrap());
}

/// RFC 8265 (PRECIS UsernameCaseMapped): fullwidth and case variants of a
/// name are that name, for creation and for login; names the profile
/// refuses get a 400 and create nothing.
async fn users_lookalike_names_are_one_name(app: TestApp) {
    let carol = create_user(&app, json!({"username": "carol", "password": PASSWORD})).await;
    for twin in [
        "\u{ff43}arol",
        "\u{ff23}\u{ff21}\u{ff32}\u{ff2f}\u{ff2c}",
        "Carol",
    ] {
        let res = app
            .post("/v1/users", json!({"username": twin, "password": PASSWORD}))
            .await;
        assert_eq!(res.status, StatusCode::CONFLICT, "{twin}: {}", res.body);
    }
    for bad in ["carol smith", "snow\u{2603}", "car\u{200b}ol"] {
        let res = app
            .post("/v1/users", json!({"username": bad, "password": PASSWORD}))
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{bad}: {}", res.body);
        assert_eq!(res.body["code"], "invalid_request");
        assert!(res.body["detail"].as_str().unwrap().contains("RFC 8265"));
    }
    let listed = app.get("/v1/users").await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
    // A fullwidth name is shown in its usual width.
    let dave = create_user(
        &app,
        json!({"username": "\u{ff24}ave", "password": PASSWORD}),
    )
    .await;
    assert_eq!(dave["username"], "Dave");
    // Login under any spelling reaches the one user.
    for spelling in ["carol", "\u{ff23}\u{ff21}\u{ff32}\u{ff2f}\u{ff2c}"] {
        let res = app
            .request(
                Method::POST,
                "/v1/auth/login",
                None,
                Some(json!({"username": spelling, "password": PASSWORD, "refresh_token_in_body": true})),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{spelling}: {}", res.body);
    }
    let _ = carol;
}
