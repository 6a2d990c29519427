//! The dashboard's sessions (`ConsoleSessions`) over the SQL store, with a
//! manual clock: login, resume, expiry, the key's fate, logout, CSRF,
//! throttling and purging. Each case runs on SQLite and PostgreSQL.

use std::sync::Arc;

use crate::common::Ctx;
use keygate_core::audit::{AuditConfig, AuditLog};
use keygate_core::console::{ConsoleError, ConsoleSessions, ConsoleSettings};
use keygate_core::keys::cache::CacheConfig;
use keygate_core::keys::pepper::Pepper;
use keygate_core::model::{AuditFilter, PageRequest, Scope, Tenant};
use keygate_core::ratelimit::GcraLimiter;
use keygate_core::store::Store;
use keygate_core::users::throttle::{LoginThrottle, ThrottleConfig};
use keygate_core::{Admin, IssuedKey, KeyService, ManualClock, NewKey};
use sqlx::{AnyConnection, Connection, Row};

const NOW_MS: i64 = 1_700_000_000_000;
const CLIENT: &str = "192.0.2.7";

on_both_backends!(
    login_resume_logout_are_audited_with_the_key_as_actor,
    only_a_hash_of_the_token_is_stored,
    idle_and_absolute_expiry_end_the_session,
    a_revoked_expired_or_rotated_away_key_ends_the_session,
    bad_and_non_admin_keys_are_refused_and_throttled_per_client,
    tenant_admin_sessions_carry_their_tenant,
    csrf_tokens_belong_to_their_session,
    purge_deletes_only_expired_sessions,
);

struct Fx {
    console: ConsoleSessions,
    keys: Arc<KeyService>,
    audit: Arc<AuditLog>,
    clock: Arc<ManualClock>,
    store: Arc<dyn Store>,
    root: IssuedKey,
    admin: Admin,
}

const SETTINGS: ConsoleSettings = ConsoleSettings {
    idle_secs: 600,
    absolute_secs: 3600,
};

async fn fx(ctx: &Ctx) -> Fx {
    let store: Arc<dyn Store> = Arc::new(ctx.store.clone());
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let keys = Arc::new(KeyService::new(
        store.clone(),
        Arc::new(Pepper::new(1, &[9; 32]).unwrap()),
        clock.clone(),
        Arc::new(GcraLimiter::new()),
        CacheConfig::default(),
    ));
    let audit = Arc::new(AuditLog::new(
        store.clone(),
        clock.clone(),
        AuditConfig::default(),
    ));
    let throttle = Arc::new(LoginThrottle::new(ThrottleConfig {
        free_failures: 3,
        client_failures: 5,
        ..ThrottleConfig::default()
    }));
    let console = ConsoleSessions::new(store.clone(), keys.clone(), audit.clone(), throttle)
        .with_settings(SETTINGS.validate().unwrap());
    let root = keys.bootstrap_root_key().await.unwrap();
    let admin = keys.authorize_admin(root.key.expose(), None).await.unwrap();
    Fx {
        console,
        keys,
        audit,
        clock,
        store,
        root,
        admin,
    }
}

async fn audit_rows(store: &Arc<dyn Store>, action: &str) -> Vec<(String, Option<String>)> {
    let filter = AuditFilter {
        action: Some(action.into()),
        ..AuditFilter::default()
    };
    let page = PageRequest {
        after: None,
        limit: 100,
    };
    let rows = store.list_audit(&filter, page).await.unwrap();
    rows.into_iter()
        .map(|r| (r.entry.actor, r.entry.target))
        .collect()
}

async fn new_key(f: &Fx, scopes: &[&str], tenant: Option<&str>) -> IssuedKey {
    let input = NewKey {
        name: "dash".into(),
        owner: "ops".into(),
        tenant: tenant.map(|t| Tenant::parse(t).unwrap()),
        scopes: scopes.iter().map(|s| Scope::parse(s).unwrap()).collect(),
        ..NewKey::default()
    };
    f.keys.create(&f.admin, input).await.unwrap()
}

async fn login_resume_logout_are_audited_with_the_key_as_actor(ctx: Ctx) {
    let f = fx(&ctx).await;
    let login = f.console.login(f.root.key.expose(), CLIENT).await.unwrap();
    let id = f.root.record.id.to_string();
    assert_eq!(login.resumed.key_id, f.root.record.id);
    assert_eq!(login.resumed.admin.actor(), id);
    assert!(login.resumed.tenant.is_none());
    assert_eq!(login.resumed.key_prefix, f.root.record.prefix);
    assert_eq!(login.resumed.key_name, "root admin");
    assert_eq!(login.resumed.expires_at, NOW_MS / 1000 + 3600);
    assert_eq!(login.resumed.idle_expires_at, NOW_MS / 1000 + 600);
    let token = login.token.expose_str().to_owned();
    assert_eq!(token.len(), 43);
    assert!(
        !format!("{login:?}").contains(&token),
        "the token never prints"
    );

    f.clock.advance_secs(120);
    let resumed = f.console.resume(&token).await.unwrap();
    assert_eq!(resumed.key_id, f.root.record.id);
    assert_eq!(resumed.idle_expires_at, NOW_MS / 1000 + 120 + 600);

    assert_eq!(
        audit_rows(&f.store, "dashboard.login").await,
        vec![(id.clone(), Some(id.clone()))]
    );
    f.console.logout(&token).await.unwrap();
    assert!(matches!(
        f.console.resume(&token).await,
        Err(ConsoleError::Unknown)
    ));
    // A second logout is no error and writes nothing more.
    f.console.logout(&token).await.unwrap();
    assert_eq!(
        audit_rows(&f.store, "dashboard.logout").await,
        vec![(id.clone(), Some(id))]
    );
    for junk in ["", "short", &"x".repeat(43), &format!("{token}x")] {
        assert!(matches!(
            f.console.resume(junk).await,
            Err(ConsoleError::Unknown)
        ));
    }
}

async fn only_a_hash_of_the_token_is_stored(ctx: Ctx) {
    let f = fx(&ctx).await;
    let login = f.console.login(f.root.key.expose(), CLIENT).await.unwrap();
    let token = login.token.expose_str();
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(&ctx.url).await.unwrap();
    let rows = sqlx::query("SELECT token_hash, key_id, secret_hash FROM console_sessions")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let stored: Vec<u8> = rows[0].try_get("token_hash").unwrap();
    assert_eq!(stored.len(), 32);
    assert!(!String::from_utf8_lossy(&stored).contains(token));
    let key_id: String = rows[0].try_get("key_id").unwrap();
    assert_eq!(key_id, f.root.record.id.to_string());
    let audit = sqlx::query("SELECT detail FROM audit_log")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    for row in audit {
        let detail: String = row.try_get("detail").unwrap();
        assert!(!detail.contains(token));
    }
    conn.close().await.unwrap();
}

async fn idle_and_absolute_expiry_end_the_session(ctx: Ctx) {
    let f = fx(&ctx).await;
    let idle = f.console.login(f.root.key.expose(), CLIENT).await.unwrap();
    let busy = f.console.login(f.root.key.expose(), CLIENT).await.unwrap();
    let (idle, busy) = (idle.token.expose_str(), busy.token.expose_str());
    // Used every 500 s, `busy` outlives the 600 s idle limit...
    for _ in 0..7 {
        f.clock.advance_secs(500);
        let r = f.console.resume(busy).await.unwrap();
        assert!(r.idle_expires_at <= r.expires_at);
    }
    // ...while `idle`, unused for 3500 s, has expired and is deleted.
    assert!(matches!(
        f.console.resume(idle).await,
        Err(ConsoleError::Expired)
    ));
    assert!(matches!(
        f.console.resume(idle).await,
        Err(ConsoleError::Unknown)
    ));
    // 3600 s after login the absolute expiry ends `busy` too.
    f.clock.advance_secs(100);
    assert!(matches!(
        f.console.resume(busy).await,
        Err(ConsoleError::Expired)
    ));
}

async fn a_revoked_expired_or_rotated_away_key_ends_the_session(ctx: Ctx) {
    let f = fx(&ctx).await;
    let gone = |r: Result<_, ConsoleError>| matches!(r, Err(ConsoleError::KeyGone));
    // Revoked.
    let k = new_key(&f, &["admin"], None).await;
    let s = f.console.login(k.key.expose(), CLIENT).await.unwrap();
    f.keys.revoke(&f.admin, &k.record.id).await.unwrap();
    assert!(gone(f.console.resume(s.token.expose_str()).await));
    // Rotated with a grace window: alive until the old secret expires.
    let k = new_key(&f, &["admin"], None).await;
    let s = f.console.login(k.key.expose(), CLIENT).await.unwrap();
    f.keys.rotate(&f.admin, &k.record.id, 60).await.unwrap();
    let r = f.console.resume(s.token.expose_str()).await.unwrap();
    assert_eq!(
        r.expires_at,
        NOW_MS / 1000 + 60,
        "no longer than the secret"
    );
    f.clock.advance_secs(60);
    assert!(gone(f.console.resume(s.token.expose_str()).await));
    // Rotated without grace.
    let k = new_key(&f, &["admin"], None).await;
    let s = f.console.login(k.key.expose(), CLIENT).await.unwrap();
    f.keys.rotate(&f.admin, &k.record.id, 0).await.unwrap();
    assert!(gone(f.console.resume(s.token.expose_str()).await));
    // Lost the admin scope.
    let k = new_key(&f, &["admin"], None).await;
    let s = f.console.login(k.key.expose(), CLIENT).await.unwrap();
    let patch = keygate_core::KeyPatch {
        scopes: Some(vec![Scope::parse("orders:read").unwrap()]),
        ..Default::default()
    };
    f.keys.update(&f.admin, &k.record.id, patch).await.unwrap();
    assert!(gone(f.console.resume(s.token.expose_str()).await));
    // Expired.
    let mut input = NewKey {
        name: "short".into(),
        owner: "ops".into(),
        scopes: vec![Scope::parse("admin").unwrap()],
        ..NewKey::default()
    };
    input.expires_at = Some(f.clock_secs() + 30);
    let k = f.keys.create(&f.admin, input).await.unwrap();
    let s = f.console.login(k.key.expose(), CLIENT).await.unwrap();
    assert_eq!(s.resumed.expires_at, f.clock_secs() + 30);
    f.clock.advance_secs(30);
    assert!(gone(f.console.resume(s.token.expose_str()).await));
    // Each ended session was deleted.
    assert!(matches!(
        f.console.resume(s.token.expose_str()).await,
        Err(ConsoleError::Unknown)
    ));
}

impl Fx {
    fn clock_secs(&self) -> i64 {
        use keygate_core::MillisClock;
        self.clock.now_secs()
    }
}

async fn bad_and_non_admin_keys_are_refused_and_throttled_per_client(ctx: Ctx) {
    let f = fx(&ctx).await;
    let plain = new_key(&f, &["orders:read"], None).await;
    assert!(matches!(
        f.console.login(plain.key.expose(), CLIENT).await,
        Err(ConsoleError::NotAdmin)
    ));
    assert!(matches!(
        f.console.login("not a key", CLIENT).await,
        Err(ConsoleError::BadCredentials)
    ));
    let revoked = new_key(&f, &["admin"], None).await;
    f.keys.revoke(&f.admin, &revoked.record.id).await.unwrap();
    assert!(matches!(
        f.console.login(revoked.key.expose(), CLIENT).await,
        Err(ConsoleError::BadCredentials)
    ));
    // Three failures are free; the fourth attempt waits, even with the
    // right key, while another client is not held up.
    let throttled = f.console.login(f.root.key.expose(), CLIENT).await;
    assert!(
        matches!(throttled, Err(ConsoleError::Throttled { retry_after_secs }) if retry_after_secs >= 1),
        "{throttled:?}"
    );
    f.console
        .login(f.root.key.expose(), "198.51.100.1")
        .await
        .unwrap();
    // The failures were tallied as failed authentications from the client.
    f.audit.flush().await.unwrap();
    let filter = AuditFilter {
        action: Some("auth.failed".into()),
        ..AuditFilter::default()
    };
    let page = PageRequest {
        after: None,
        limit: 100,
    };
    let mut reasons: Vec<(String, i64)> = f
        .store
        .list_audit(&filter, page)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let d = &r.entry.detail;
            assert_eq!(d["source"], "192.0.2.7", "{d}");
            assert_eq!(d["route"], "/dashboard/login", "{d}");
            (d["reason"].as_str().unwrap().to_owned(), r.count)
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        vec![
            ("dashboard_login_failed".to_owned(), 2),
            ("dashboard_not_admin".to_owned(), 1)
        ]
    );
    // Once the back-off has passed, the right key gets in.
    f.clock.advance_secs(2);
    f.console.login(f.root.key.expose(), CLIENT).await.unwrap();
}

async fn tenant_admin_sessions_carry_their_tenant(ctx: Ctx) {
    let f = fx(&ctx).await;
    let k = new_key(&f, &["admin"], Some("acme")).await;
    let s = f.console.login(k.key.expose(), CLIENT).await.unwrap();
    let acme = Tenant::parse("acme").unwrap();
    assert_eq!(s.resumed.tenant.as_ref(), Some(&acme));
    assert_eq!(s.resumed.admin.tenant(), Some(&acme));
    let r = f.console.resume(s.token.expose_str()).await.unwrap();
    assert_eq!(r.admin.tenant(), Some(&acme));
    assert_eq!(r.admin.actor(), k.record.id.as_str());
}

async fn csrf_tokens_belong_to_their_session(ctx: Ctx) {
    let f = fx(&ctx).await;
    let a = f.console.login(f.root.key.expose(), CLIENT).await.unwrap();
    let b = f.console.login(f.root.key.expose(), CLIENT).await.unwrap();
    let (a, b) = (a.token.expose_str(), b.token.expose_str());
    let csrf_a = f.console.csrf_token(a);
    assert_eq!(csrf_a, f.console.csrf_token(a), "stable per session");
    assert_ne!(csrf_a, f.console.csrf_token(b));
    assert!(!csrf_a.contains(a));
    assert!(f.console.check_csrf(a, &csrf_a));
    assert!(!f.console.check_csrf(b, &csrf_a));
    assert!(!f.console.check_csrf(a, ""));
    assert!(!f.console.check_csrf(a, &csrf_a[1..]));
    let mut flipped = csrf_a.clone().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    assert!(
        !f.console
            .check_csrf(a, &String::from_utf8(flipped).unwrap())
    );
}

async fn purge_deletes_only_expired_sessions(ctx: Ctx) {
    let f = fx(&ctx).await;
    let old = f.console.login(f.root.key.expose(), CLIENT).await.unwrap();
    f.clock.advance_secs(400);
    let young = f.console.login(f.root.key.expose(), CLIENT).await.unwrap();
    f.clock.advance_secs(300);
    // `old` is idle for 700 s (> 600), `young` for 300 s.
    assert_eq!(f.console.purge_expired().await.unwrap(), 1);
    assert!(matches!(
        f.console.resume(old.token.expose_str()).await,
        Err(ConsoleError::Unknown)
    ));
    f.console.resume(young.token.expose_str()).await.unwrap();
    assert_eq!(f.console.purge_expired().await.unwrap(), 0);
}
