//! Users and their password hashes in storage, and the user service over a
//! real store: login, throttling, cut-offs. Each case runs on SQLite and,
//! when configured, PostgreSQL.

use std::net::IpAddr;
use std::sync::Arc;

use crate::common::{Ctx, audit_len, exec};
use crate::fixtures::{NOW, fake_hash, user_audit};
use keygate_core::keys::cache::CacheConfig;
use keygate_core::keys::pepper::Pepper;
use keygate_core::model::{AuditFilter, PageRequest, Scope, Tenant};
use keygate_core::ratelimit::GcraLimiter;
use keygate_core::store::{AuditStore, Store, UserStore};
use keygate_core::users::{Password, PhcHash, Role, UserFilter, UserId, UserRecord, Username};
use keygate_core::{
    Admin, Error, KeyService, LoginError, ManualClock, MillisClock, NewKey, NewUser, UserPatch,
    UserService,
};
use keygate_store::{ConnectOptions, connect};
use sqlx::{Connection, Row};

const PASSWORD: &str = "correct horse battery staple";

on_both_backends!(
    insert_get_find_and_list,
    usernames_are_unique_ignoring_case_and_a_refusal_writes_nothing,
    usernames_equal_under_precis_are_one_name,
    usernames_from_before_precis_get_their_keys_at_start,
    update_is_guarded_by_version_and_keeps_the_hash_unless_given,
    authenticate_checks_password_disabled_and_unknown_alike,
    login_throttling_refuses_before_hashing,
    cutoff_moves_on_password_change_disable_and_revoke,
    tenant_admins_are_confined,
    plaintext_passwords_are_stored_nowhere,
);

fn user(name: &str, tenant: Option<&str>) -> UserRecord {
    let mut claims = keygate_core::users::Claims::new();
    claims.insert("department".into(), serde_json::json!("sales"));
    UserRecord {
        id: UserId::generate().unwrap(),
        username: name.to_owned(),
        roles: vec![
            Role::parse("billing").unwrap(),
            Role::parse("viewer").unwrap(),
        ],
        tenant: tenant.map(|t| Tenant::parse(t).unwrap()),
        claims,
        disabled: false,
        sessions_cutoff_ms: 0,
        created_at: NOW,
        updated_at: NOW,
        version: 1,
    }
}

async fn insert_get_find_and_list(ctx: Ctx) {
    let s = &ctx.store;
    let alice = user("Alice", Some("acme"));
    s.insert_user(
        &alice,
        &fake_hash("a"),
        &user_audit("user.created", &alice, NOW),
    )
    .await
    .unwrap();
    assert_eq!(s.get_user(&alice.id).await.unwrap(), Some(alice.clone()));
    assert!(
        s.get_user(&UserId::generate().unwrap())
            .await
            .unwrap()
            .is_none()
    );
    let (found, hash) = s.find_user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(found, alice);
    assert_eq!(hash.as_str(), fake_hash("a").as_str());
    // Lookups are by the normalized form only.
    assert!(s.find_user_by_username("Alice").await.unwrap().is_none());

    for i in 0..5 {
        let tenant = if i % 2 == 0 { Some("acme") } else { None };
        let u = user(&format!("user{i}"), tenant);
        s.insert_user(&u, &fake_hash("x"), &user_audit("user.created", &u, NOW))
            .await
            .unwrap();
    }
    let acme = UserFilter {
        tenant: Some(Tenant::parse("acme").unwrap()),
    };
    let all = s
        .list_users(
            &acme,
            PageRequest {
                after: None,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
    let first = s
        .list_users(
            &acme,
            PageRequest {
                after: None,
                limit: 2,
            },
        )
        .await
        .unwrap();
    let rest = s
        .list_users(
            &acme,
            PageRequest {
                after: Some(first[1].0),
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.len() + rest.len(), 4);
    assert_eq!(rest[0].1, all[2].1);
    let everyone = s
        .list_users(
            &UserFilter::default(),
            PageRequest {
                after: None,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(everyone.len(), 6);
}

async fn usernames_are_unique_ignoring_case_and_a_refusal_writes_nothing(ctx: Ctx) {
    let s = &ctx.store;
    let a = user("Bob", None);
    s.insert_user(&a, &fake_hash("a"), &user_audit("user.created", &a, NOW))
        .await
        .unwrap();
    // Another tenant does not help: usernames are unique server-wide.
    let b = user("bOB", Some("other"));
    let err = s
        .insert_user(&b, &fake_hash("b"), &user_audit("user.created", &b, NOW))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err:?}");
    assert!(s.get_user(&b.id).await.unwrap().is_none());
    assert_eq!(audit_len(s).await, 1);
}

async fn usernames_equal_under_precis_are_one_name(ctx: Ctx) {
    let s = &ctx.store;
    let a = user("carol", None);
    s.insert_user(&a, &fake_hash("a"), &user_audit("user.created", &a, NOW))
        .await
        .unwrap();
    // Fullwidth letters, case, both: the same name (RFC 8265 width and case
    // mapping), refused as taken.
    for name in [
        "\u{ff43}arol",
        "\u{ff23}\u{ff21}\u{ff32}\u{ff2f}\u{ff2c}",
        "CAROL",
    ] {
        let b = user(name, None);
        let err = s
            .insert_user(&b, &fake_hash("b"), &user_audit("user.created", &b, NOW))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::AlreadyExists(_)), "{name}: {err:?}");
    }
    // A name RFC 8265 refuses is refused before storage.
    for name in ["carol smith", "snow\u{2603}", "a\u{200b}b"] {
        let b = user(name, None);
        let err = s
            .insert_user(&b, &fake_hash("b"), &user_audit("user.created", &b, NOW))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{name}: {err:?}");
    }
    assert_eq!(audit_len(s).await, 1);
    let key = Username::login_key("\u{ff23}arol").unwrap();
    let (found, _) = s.find_user_by_username(&key).await.unwrap().unwrap();
    assert_eq!(found.id, a.id);
}

/// A database written before usernames were PRECIS-keyed: keys are
/// recomputed at start; of two rows that now share a key the older keeps
/// it and the newer can no longer log in by name; a name RFC 8265 refuses
/// keeps logging in under its old rule.
async fn usernames_from_before_precis_get_their_keys_at_start(ctx: Ctx) {
    ctx.store.close().await;
    let rows = [
        ("usr_0000000000000001", "Carol", "carol"),
        ("usr_0000000000000002", "\u{ff43}arol", "\u{ff43}arol"),
        ("usr_0000000000000003", "Dave Smith", "dave smith"),
        ("usr_0000000000000004", "\u{ff25}VE", "\u{ff45}ve"),
    ];
    for (id, name, norm) in rows {
        exec(
            &ctx.url,
            &format!(
                "INSERT INTO users (id, username, username_norm, password_hash, roles, tenant, \
                 claims, disabled, sessions_cutoff_ms, created_at, updated_at, version) \
                 VALUES ('{id}', '{name}', '{norm}', 'h', '[]', NULL, '{{}}', 0, 0, 1, 1, 1)"
            ),
        )
        .await;
    }
    exec(
        &ctx.url,
        "DELETE FROM keygate_settings WHERE name = 'username_keys'",
    )
    .await;
    let s = connect(&ctx.url, ConnectOptions::default()).await.unwrap();
    let find = async |name: &str| {
        let key = Username::login_key(name).unwrap();
        s.find_user_by_username(&key)
            .await
            .unwrap()
            .map(|(u, _)| u.id.to_string())
    };
    let carol = Some("usr_0000000000000001".to_owned());
    assert_eq!(find("carol").await, carol);
    assert_eq!(
        find("\u{ff43}arol").await,
        carol,
        "the newer twin is shut out"
    );
    assert_eq!(
        find("dave smith").await.as_deref(),
        Some("usr_0000000000000003")
    );
    assert_eq!(find("eve").await.as_deref(), Some("usr_0000000000000004"));
    // The shut-out twin still exists and is reachable by id.
    let twin = UserId::parse("usr_0000000000000002").unwrap();
    assert!(s.get_user(&twin).await.unwrap().is_some());
    // A new user cannot take a key an old row holds.
    let e = user("\u{ff45}ve", None);
    let err = s
        .insert_user(&e, &fake_hash("e"), &user_audit("user.created", &e, NOW))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err:?}");
    s.close().await;
}

async fn update_is_guarded_by_version_and_keeps_the_hash_unless_given(ctx: Ctx) {
    let s = &ctx.store;
    let u = user("carol", None);
    s.insert_user(&u, &fake_hash("old"), &user_audit("user.created", &u, NOW))
        .await
        .unwrap();
    let mut next = u.clone();
    next.roles = vec![Role::parse("admin").unwrap()];
    next.claims.clear();
    next.disabled = true;
    next.sessions_cutoff_ms = NOW * 1000 + 123;
    next.updated_at = NOW + 5;
    next.version = 2;
    assert!(
        s.update_user(&next, None, &user_audit("user.updated", &next, NOW))
            .await
            .unwrap()
    );
    assert_eq!(s.get_user(&u.id).await.unwrap(), Some(next.clone()));
    let (_, hash) = s.find_user_by_username("carol").await.unwrap().unwrap();
    assert_eq!(hash.as_str(), fake_hash("old").as_str());

    // The same version again is stale and writes nothing, not even audit.
    let before = audit_len(s).await;
    let mut stale = next.clone();
    stale.disabled = false;
    assert!(
        !s.update_user(
            &stale,
            Some(&fake_hash("new")),
            &user_audit("user.updated", &stale, NOW)
        )
        .await
        .unwrap()
    );
    assert_eq!(audit_len(s).await, before);
    assert_eq!(
        s.find_user_by_username("carol")
            .await
            .unwrap()
            .unwrap()
            .1
            .as_str(),
        fake_hash("old").as_str()
    );

    let mut third = next.clone();
    third.version = 3;
    assert!(
        s.update_user(
            &third,
            Some(&fake_hash("new")),
            &user_audit("user.updated", &third, NOW)
        )
        .await
        .unwrap()
    );
    assert_eq!(
        s.find_user_by_username("carol")
            .await
            .unwrap()
            .unwrap()
            .1
            .as_str(),
        fake_hash("new").as_str()
    );
}

/// A user service, and a root admin, over the case's store.
async fn services(ctx: &Ctx) -> (UserService, Admin, Arc<ManualClock>, KeyService) {
    let store: Arc<dyn Store> = Arc::new(ctx.store.clone());
    let clock = Arc::new(ManualClock::new(NOW * 1000));
    let keys = KeyService::new(
        store.clone(),
        Arc::new(Pepper::new(1, b"0123456789abcdef0123456789abcdef").unwrap()),
        clock.clone(),
        Arc::new(GcraLimiter::new()),
        CacheConfig::default(),
    );
    let root = keys.bootstrap_root_key().await.unwrap();
    let admin = keys.authorize_admin(root.key.expose(), None).await.unwrap();
    (UserService::new(store, clock.clone()), admin, clock, keys)
}

fn new_user(name: &str, tenant: Option<&str>) -> NewUser {
    NewUser {
        username: name.to_owned(),
        password: Password::parse(PASSWORD).unwrap(),
        roles: vec![Role::parse("viewer").unwrap()],
        tenant: tenant.map(|t| Tenant::parse(t).unwrap()),
        claims: Default::default(),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn authenticate_checks_password_disabled_and_unknown_alike(ctx: Ctx) {
    let (users, admin, _, _) = services(&ctx).await;
    let dave = users
        .create(&admin, new_user("  Dave ", None))
        .await
        .unwrap();
    assert_eq!(dave.username, "Dave");
    let client = ip("192.0.2.1");
    let ok = users.authenticate("DAVE", PASSWORD, client).await.unwrap();
    assert_eq!(ok.id, dave.id);
    for (name, password) in [
        ("dave", "correct horse battery stapler"),
        ("nobody", PASSWORD),
        ("dave", &"x".repeat(5000)),
        ("bad\u{0}name", PASSWORD),
    ] {
        let err = users
            .authenticate(name, password, client)
            .await
            .unwrap_err();
        assert!(
            matches!(err, LoginError::InvalidCredentials),
            "{name}: {err:?}"
        );
    }
    let patch = UserPatch {
        disabled: Some(true),
        ..UserPatch::default()
    };
    users.update(&admin, &dave.id, patch).await.unwrap();
    let err = users
        .authenticate("dave", PASSWORD, client)
        .await
        .unwrap_err();
    assert!(matches!(err, LoginError::InvalidCredentials));
    // Re-enabled, and a new password: only the new one works.
    let patch = UserPatch {
        disabled: Some(false),
        password: Some(Password::parse("a brand new passphrase").unwrap()),
        ..UserPatch::default()
    };
    users.update(&admin, &dave.id, patch).await.unwrap();
    assert!(users.authenticate("dave", PASSWORD, client).await.is_err());
    users
        .authenticate("dave", "a brand new passphrase", client)
        .await
        .unwrap();
}

async fn login_throttling_refuses_before_hashing(ctx: Ctx) {
    let (users, admin, clock, _) = services(&ctx).await;
    users.create(&admin, new_user("erin", None)).await.unwrap();
    let mut n = 0;
    let mut client = || {
        n += 1;
        ip(&format!("198.51.100.{n}"))
    };
    for name in ["erin", "ghost"] {
        for _ in 0..5 {
            let err = users
                .authenticate(name, "wrong password!", client())
                .await
                .unwrap_err();
            assert!(matches!(err, LoginError::InvalidCredentials));
        }
        // The right password does not help while throttled; the answer is
        // the same for a known and an unknown username.
        let err = users
            .authenticate(name, PASSWORD, client())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                LoginError::Throttled {
                    retry_after_secs: 1
                }
            ),
            "{name}: {err:?}"
        );
    }
    clock.advance_secs(1);
    users
        .authenticate("erin", PASSWORD, client())
        .await
        .unwrap();
    // A success resets the username's count.
    for _ in 0..5 {
        assert!(
            users
                .authenticate("erin", "wrong password!", client())
                .await
                .is_err()
        );
    }

    // One client, many usernames: at most 20 failures per 15 minutes.
    let one = ip("203.0.113.5");
    for i in 0..20 {
        let err = users
            .authenticate(&format!("u{i}"), "wrong password!", one)
            .await
            .unwrap_err();
        assert!(matches!(err, LoginError::InvalidCredentials));
    }
    let err = users
        .authenticate("u99", "wrong password!", one)
        .await
        .unwrap_err();
    assert!(matches!(err, LoginError::Throttled { .. }), "{err:?}");
}

async fn cutoff_moves_on_password_change_disable_and_revoke(ctx: Ctx) {
    let (users, admin, clock, _) = services(&ctx).await;
    let u = users.create(&admin, new_user("frank", None)).await.unwrap();
    assert_eq!(u.sessions_cutoff_ms, 0);
    assert_eq!(users.session_cutoff(&u.id).await.unwrap(), Some((0, false)));
    assert_eq!(
        users
            .session_cutoff(&UserId::generate().unwrap())
            .await
            .unwrap(),
        None
    );

    clock.advance_millis(1500);
    let roles = UserPatch {
        roles: Some(vec![Role::parse("editor").unwrap()]),
        ..UserPatch::default()
    };
    let after = users.update(&admin, &u.id, roles).await.unwrap();
    assert_eq!(after.sessions_cutoff_ms, 0, "a role change keeps sessions");

    let mut expected = 0;
    for step in 0..3 {
        clock.advance_millis(1234);
        let patch = match step {
            0 => Some(UserPatch {
                password: Some(Password::parse("another long password").unwrap()),
                ..UserPatch::default()
            }),
            1 => Some(UserPatch {
                disabled: Some(true),
                ..UserPatch::default()
            }),
            _ => None,
        };
        let updated = match patch {
            Some(p) => users.update(&admin, &u.id, p).await.unwrap(),
            None => users.revoke_sessions(&admin, &u.id).await.unwrap(),
        };
        assert!(updated.sessions_cutoff_ms > expected, "step {step}");
        expected = clock.now_millis();
        assert_eq!(updated.sessions_cutoff_ms, expected, "step {step}");
        // The change shows at once on this node, cache or not.
        assert_eq!(
            users.session_cutoff(&u.id).await.unwrap(),
            Some((expected, step > 0)),
            "step {step}"
        );
    }
    let actions: Vec<String> = ctx
        .store
        .list_audit(
            &AuditFilter {
                target: Some(u.id.to_string()),
                ..AuditFilter::default()
            },
            PageRequest {
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entry)
        .collect::<Vec<_>>()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "user.sessions_revoked",
            "user.updated",
            "user.updated",
            "user.updated",
            "user.created"
        ]
    );
}

async fn tenant_admins_are_confined(ctx: Ctx) {
    let (users, root, _, keys) = services(&ctx).await;
    let issued = keys
        .create(
            &root,
            NewKey {
                name: "acme admin".into(),
                owner: "acme".into(),
                tenant: Some(Tenant::parse("acme").unwrap()),
                scopes: vec![Scope::parse("admin").unwrap()],
                ..NewKey::default()
            },
        )
        .await
        .unwrap();
    let acme = keys
        .authorize_admin(issued.key.expose(), None)
        .await
        .unwrap();
    let globex = users
        .create(&root, new_user("g", Some("globex")))
        .await
        .unwrap();
    let mine = users.create(&acme, new_user("a", None)).await.unwrap();
    assert_eq!(mine.tenant.as_ref().map(Tenant::as_str), Some("acme"));
    let err = users
        .create(&acme, new_user("b", Some("globex")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)));
    assert!(matches!(
        users.get(&acme, &globex.id).await,
        Err(Error::NotFound("user"))
    ));
    let patch = UserPatch {
        disabled: Some(true),
        ..UserPatch::default()
    };
    assert!(matches!(
        users.update(&acme, &globex.id, patch).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        users.revoke_sessions(&acme, &globex.id).await,
        Err(Error::NotFound(_))
    ));
    let page = PageRequest {
        after: None,
        limit: 100,
    };
    let (seen, _) = users
        .list(&acme, UserFilter::default(), page)
        .await
        .unwrap();
    assert_eq!(seen.iter().map(|u| &u.id).collect::<Vec<_>>(), [&mine.id]);
    let other = UserFilter {
        tenant: Some(Tenant::parse("globex").unwrap()),
    };
    assert!(users.list(&acme, other, page).await.unwrap().0.is_empty());
    assert_eq!(users.get(&root, &globex.id).await.unwrap(), globex);
}

async fn plaintext_passwords_are_stored_nowhere(ctx: Ctx) {
    let (users, admin, _, _) = services(&ctx).await;
    let u = users.create(&admin, new_user("grace", None)).await.unwrap();
    let patch = UserPatch {
        password: Some(Password::parse("second secret passphrase").unwrap()),
        ..UserPatch::default()
    };
    users.update(&admin, &u.id, patch).await.unwrap();
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&ctx.url).await.unwrap();
    let row = sqlx::query("SELECT password_hash FROM users WHERE id = $1")
        .bind(u.id.as_str())
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let stored: String = row.try_get("password_hash").unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    let mut dump = String::new();
    for table in ["users", "audit_log"] {
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
    for secret in [PASSWORD, "second secret passphrase"] {
        assert!(!dump.contains(secret), "plaintext found");
    }
    // The hash is in the users row only, never in the audit log.
    assert_eq!(dump.matches("$argon2id$").count(), 1);
    // A hash from another process still verifies the same way.
    assert!(
        keygate_core::users::password::verify_now(
            b"second secret passphrase",
            &PhcHash::from_stored(stored)
        )
        .unwrap()
    );
}
