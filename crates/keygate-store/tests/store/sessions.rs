//! Refresh-token families and the jti blocklist, through the real
//! `SessionService` and `Blocklist` over the SQL store, with a manual clock.
//! Each case runs on SQLite and, when configured, PostgreSQL.

use std::sync::Arc;

use crate::common::{self, Ctx};
use keygate_core::ManualClock;
use keygate_core::keys::pepper::Pepper;
use keygate_core::model::{AuditEntry, AuditFilter, PageRequest, Tenant};
use keygate_core::sessions::model::{REASON_LOGOUT, REASON_REVOKED, REASON_USER_REVOKED};
use keygate_core::sessions::{
    AuditContext, Blocklist, RefreshError, Refreshed, SessionConfig, SessionService, TokenState,
};
use keygate_core::store::Store;
use keygate_core::{Error, MillisClock};
use keygate_store::{ConnectOptions, connect};
use sqlx::{AnyConnection, Connection, Row};

const NOW_MS: i64 = 1_700_000_000_000;

on_both_backends!(
    rotation_chain,
    reuse_revokes_the_family_and_spares_other_sessions,
    concurrent_refreshes_have_one_winner,
    concurrent_refreshes_inside_the_grace_window_share_one_successor,
    revoke_racing_refresh_leaves_no_live_token,
    grace_window_returns_the_same_successor_to_the_predecessor_only,
    absolute_and_idle_expiry,
    revocation_by_id_token_and_user,
    purge_deletes_only_long_dead_families,
    blocklist_syncs_across_instances,
    blocklist_sync_catches_rows_committed_out_of_order,
    refresh_token_plaintext_never_reaches_the_database,
    the_session_cap_counts_live_sessions_only_and_ends_the_oldest,
);

struct Fixture {
    svc: Arc<SessionService>,
    clock: Arc<ManualClock>,
    store: Arc<dyn Store>,
}

fn pepper() -> Arc<Pepper> {
    Arc::new(Pepper::new(1, &[7; 32]).unwrap())
}

fn fixture(ctx: &Ctx, config: SessionConfig) -> Fixture {
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let store: Arc<dyn Store> = Arc::new(ctx.store.clone());
    let svc = SessionService::new(
        store.clone(),
        store.clone(),
        pepper(),
        clock.clone(),
        config,
    )
    .unwrap();
    Fixture {
        svc: Arc::new(svc),
        clock,
        store,
    }
}

fn grace(secs: i64) -> SessionConfig {
    SessionConfig {
        grace_secs: secs,
        ..SessionConfig::default()
    }
}

fn ctx_of(actor: &str) -> AuditContext {
    AuditContext::new(actor, Some("req-1".into()))
}

async fn audit_of(store: &Arc<dyn Store>, action: &str) -> Vec<AuditEntry> {
    let filter = AuditFilter {
        action: Some(action.into()),
        ..AuditFilter::default()
    };
    let page = PageRequest {
        after: None,
        limit: 500,
    };
    store
        .list_audit(&filter, page)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entry)
        .collect::<Vec<_>>()
}

async fn rotation_chain(ctx: Ctx) {
    let f = fixture(&ctx, SessionConfig::default());
    let acme = Tenant::parse("acme").unwrap();
    let (first, family) = f
        .svc
        .start("user-1", Some(acme.clone()), &ctx_of("client-1"))
        .await
        .unwrap();
    assert_eq!(family.tenant, Some(acme));
    assert_eq!(family.created_at_ms, NOW_MS);
    assert_eq!(family.absolute_expires_at_ms, NOW_MS + 30 * 86_400_000);
    assert_eq!(f.svc.expires_at_ms(&family), NOW_MS + 7 * 86_400_000);
    let mut tokens = vec![first];
    for i in 1..=5 {
        f.clock.advance_secs(60);
        let prev = tokens.last().unwrap().expose().to_owned();
        let got = f.svc.refresh(&prev, &ctx_of("client-1")).await.unwrap();
        assert!(!got.replayed);
        assert_eq!(got.family.id, family.id);
        assert_eq!(got.family.last_used_at_ms, f.clock.now_millis());
        assert!(tokens.iter().all(|t| t.expose() != got.token.expose()));
        let status = f.svc.family_of(got.token.expose()).await.unwrap().unwrap();
        assert_eq!(status.generation, i);
        assert!(status.is_active());
        tokens.push(got.token);
    }
    for old in &tokens[..5] {
        let status = f.svc.family_of(old.expose()).await.unwrap().unwrap();
        assert_eq!(status.state, TokenState::Used);
    }
    assert!(f.svc.family_of("kgr_nope").await.unwrap().is_none());
    let bogus = format!("kgr_{}", "A".repeat(43));
    assert!(f.svc.family_of(&bogus).await.unwrap().is_none());
    assert!(matches!(
        f.svc.refresh(&bogus, &ctx_of("c")).await,
        Err(RefreshError::Invalid)
    ));
    assert!(matches!(
        f.svc
            .refresh("kg_live_notarefreshtoken", &ctx_of("c"))
            .await,
        Err(RefreshError::Invalid)
    ));
    assert_eq!(audit_of(&f.store, "session.started").await.len(), 1);
    let refreshed = audit_of(&f.store, "session.refreshed").await;
    assert_eq!(refreshed.len(), 5);
    assert!(refreshed.iter().all(|e| {
        e.target.as_deref() == Some(family.id.as_str())
            && e.actor == "client-1"
            && e.tenant.as_deref() == Some("acme")
            && e.detail["user_id"] == "user-1"
    }));
    let listed = f.svc.families_of_user("user-1", 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_used_at_ms, f.clock.now_millis());
}

async fn reuse_revokes_the_family_and_spares_other_sessions(ctx: Ctx) {
    let f = fixture(&ctx, SessionConfig::default());
    let c = ctx_of("client-1");
    let (a0, fam_a) = f.svc.start("user-1", None, &c).await.unwrap();
    let (b0, _) = f.svc.start("user-1", None, &c).await.unwrap();
    let a1 = f.svc.refresh(a0.expose(), &c).await.unwrap().token;
    f.clock.advance_secs(1);

    // The thief (or the victim) presents the used token: the family dies.
    let err = f.svc.refresh(a0.expose(), &c).await.unwrap_err();
    assert!(matches!(err, RefreshError::Reused), "{err:?}");
    let err = f.svc.refresh(a1.expose(), &c).await.unwrap_err();
    assert!(matches!(err, RefreshError::Revoked), "{err:?}");
    let status = f.svc.family_of(a1.expose()).await.unwrap().unwrap();
    assert_eq!(status.state, TokenState::Revoked);
    assert_eq!(status.family.revoked_reason.as_deref(), Some("reuse"));
    assert_eq!(status.family.revoked_at_ms, Some(f.clock.now_millis()));
    // Presenting it again changes nothing and answers "revoked".
    let err = f.svc.refresh(a0.expose(), &c).await.unwrap_err();
    assert!(matches!(err, RefreshError::Revoked), "{err:?}");

    let reuse = audit_of(&f.store, "session.reuse_detected").await;
    assert_eq!(reuse.len(), 1);
    assert_eq!(reuse[0].target.as_deref(), Some(fam_a.id.as_str()));
    assert_eq!(reuse[0].detail["user_id"], "user-1");
    assert_eq!(reuse[0].detail["generation"], 0);
    let text = serde_json::to_string(&reuse[0]).unwrap();
    assert!(!text.contains(&a0.expose()[4..]) && !text.contains(&a1.expose()[4..]));

    // The user's other session is untouched.
    let b1 = f.svc.refresh(b0.expose(), &c).await.unwrap();
    assert!(f.svc.refresh(b1.token.expose(), &c).await.is_ok());
}

async fn concurrent_refreshes_have_one_winner(ctx: Ctx) {
    let f = fixture(&ctx, SessionConfig::default());
    let (t0, family) = f.svc.start("user-1", None, &ctx_of("c")).await.unwrap();
    let tasks = refresh_together(&f.svc, t0.expose(), 50);
    let mut wins = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(r) => wins.push(r),
            Err(RefreshError::Reused | RefreshError::Revoked) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(wins.len(), 1, "exactly one refresh wins");
    // The losers presented a used token: the family is revoked, the
    // winner's successor with it, and the family never forked.
    let err = f.svc.refresh(wins[0].token.expose(), &ctx_of("c")).await;
    assert!(matches!(err, Err(RefreshError::Revoked)), "{err:?}");
    let fam = f.store.get_family(&family.id).await.unwrap().unwrap();
    assert_eq!(fam.revoked_reason.as_deref(), Some("reuse"));
    assert_eq!(token_count(&ctx, family.id.as_str()).await, 2);
    assert_eq!(audit_of(&f.store, "session.refreshed").await.len(), 1);
    assert_eq!(audit_of(&f.store, "session.reuse_detected").await.len(), 1);
}

async fn concurrent_refreshes_inside_the_grace_window_share_one_successor(ctx: Ctx) {
    let f = fixture(&ctx, grace(10));
    let (t0, family) = f.svc.start("user-1", None, &ctx_of("c")).await.unwrap();
    let tasks = refresh_together(&f.svc, t0.expose(), 50);
    let mut got = Vec::new();
    for task in tasks {
        got.push(task.await.unwrap().unwrap());
    }
    assert_eq!(
        got.iter().filter(|r| !r.replayed).count(),
        1,
        "one rotation"
    );
    assert!(
        got.iter()
            .all(|r| r.token.expose() == got[0].token.expose())
    );
    assert_eq!(token_count(&ctx, family.id.as_str()).await, 2);
    assert!(
        f.svc
            .refresh(got[0].token.expose(), &ctx_of("c"))
            .await
            .is_ok()
    );
}

async fn revoke_racing_refresh_leaves_no_live_token(ctx: Ctx) {
    let f = fixture(&ctx, SessionConfig::default());
    let c = ctx_of("c");
    for round in 0..15 {
        let (t0, family) = f.svc.start("user-1", None, &c).await.unwrap();
        let refresh = {
            let svc = f.svc.clone();
            let text = t0.expose().to_owned();
            tokio::spawn(async move { svc.refresh(&text, &ctx_of("c")).await })
        };
        let revoke = {
            let svc = f.svc.clone();
            let id = family.id.clone();
            tokio::spawn(async move { svc.revoke_family(&id, REASON_LOGOUT, &ctx_of("c")).await })
        };
        let revoked = revoke.await.unwrap().unwrap();
        assert_eq!(revoked.revoked_reason.as_deref(), Some(REASON_LOGOUT));
        // Whatever the order, once the revoke has returned nothing refreshes.
        let raced = refresh.await.unwrap();
        let mut tokens = vec![t0];
        match raced {
            Ok(r) => tokens.push(r.token),
            Err(RefreshError::Revoked) => {}
            Err(e) => panic!("round {round}: unexpected {e:?}"),
        }
        for t in &tokens {
            let err = f.svc.refresh(t.expose(), &c).await.unwrap_err();
            assert!(
                matches!(err, RefreshError::Revoked),
                "round {round}: {err:?}"
            );
            let status = f.svc.family_of(t.expose()).await.unwrap().unwrap();
            assert!(!status.is_active());
        }
    }
}

async fn grace_window_returns_the_same_successor_to_the_predecessor_only(ctx: Ctx) {
    let f = fixture(&ctx, grace(10));
    let c = ctx_of("c");

    // Inside the window the predecessor gets the identical successor.
    let (t0, _) = f.svc.start("user-1", None, &c).await.unwrap();
    let t1 = f.svc.refresh(t0.expose(), &c).await.unwrap();
    f.clock.advance_secs(10);
    let again = f.svc.refresh(t0.expose(), &c).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.token.expose(), t1.token.expose());
    // Once the successor is used, the predecessor is two steps back: reuse.
    let t2 = f.svc.refresh(t1.token.expose(), &c).await.unwrap();
    assert!(!t2.replayed);
    let err = f.svc.refresh(t0.expose(), &c).await.unwrap_err();
    assert!(matches!(err, RefreshError::Reused), "{err:?}");

    // Just outside the window: reuse.
    let (u0, _) = f.svc.start("user-1", None, &c).await.unwrap();
    f.svc.refresh(u0.expose(), &c).await.unwrap();
    f.clock.advance_millis(10_001);
    let err = f.svc.refresh(u0.expose(), &c).await.unwrap_err();
    assert!(matches!(err, RefreshError::Reused), "{err:?}");

    // Two steps back inside the window: reuse.
    let (v0, _) = f.svc.start("user-1", None, &c).await.unwrap();
    let v1 = f.svc.refresh(v0.expose(), &c).await.unwrap();
    let v2 = f.svc.refresh(v1.token.expose(), &c).await.unwrap();
    // v1 is v2's predecessor and v2 is unused: the same v2 comes back.
    let replay = f.svc.refresh(v1.token.expose(), &c).await.unwrap();
    assert_eq!(replay.token.expose(), v2.token.expose());
    let err = f.svc.refresh(v0.expose(), &c).await.unwrap_err();
    assert!(matches!(err, RefreshError::Reused), "{err:?}");
    assert_eq!(audit_of(&f.store, "session.reuse_detected").await.len(), 3);
}

async fn absolute_and_idle_expiry(ctx: Ctx) {
    let config = SessionConfig {
        absolute_lifetime_secs: 3_600,
        idle_timeout_secs: 600,
        ..SessionConfig::default()
    };
    let f = fixture(&ctx, config);
    let c = ctx_of("c");

    // Active use keeps it alive, until the absolute lifetime.
    let (mut t, family) = f.svc.start("user-1", None, &c).await.unwrap();
    for _ in 0..6 {
        f.clock.advance_secs(590);
        t = f.svc.refresh(t.expose(), &c).await.unwrap().token;
    }
    f.clock.set_millis(NOW_MS + 3_600_000 - 1);
    assert!(
        f.svc
            .family_of(t.expose())
            .await
            .unwrap()
            .unwrap()
            .is_active()
    );
    f.clock.advance_millis(1);
    let err = f.svc.refresh(t.expose(), &c).await.unwrap_err();
    assert!(matches!(err, RefreshError::Expired), "{err:?}");
    let status = f.svc.family_of(t.expose()).await.unwrap().unwrap();
    assert_eq!(status.state, TokenState::Expired);
    assert!(
        status.family.revoked_at_ms.is_none(),
        "expiry is not revocation"
    );
    assert_eq!(status.family.id, family.id);

    // Idle for the whole timeout: expired, even with lifetime left.
    let (u, _) = f.svc.start("user-1", None, &c).await.unwrap();
    f.clock.advance_secs(599);
    assert_eq!(
        f.svc.family_of(u.expose()).await.unwrap().unwrap().state,
        TokenState::Active
    );
    f.clock.advance_secs(1);
    let err = f.svc.refresh(u.expose(), &c).await.unwrap_err();
    assert!(matches!(err, RefreshError::Expired), "{err:?}");
}

async fn revocation_by_id_token_and_user(ctx: Ctx) {
    let f = fixture(&ctx, SessionConfig::default());
    let c = ctx_of("admin");
    let (a, fam_a) = f.svc.start("user-1", None, &c).await.unwrap();
    let (b, fam_b) = f.svc.start("user-1", None, &c).await.unwrap();
    let (d, _) = f.svc.start("user-1", None, &c).await.unwrap();
    let (other, _) = f.svc.start("user-2", None, &c).await.unwrap();

    // RFC 7009: unknown and malformed tokens are not errors.
    let unknown = format!("kgr_{}", "B".repeat(43));
    assert!(
        f.svc
            .revoke_by_token(&unknown, REASON_LOGOUT, &c)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        f.svc
            .revoke_by_token("garbage", REASON_LOGOUT, &c)
            .await
            .unwrap()
            .is_none()
    );
    let bad = f.svc.revoke_by_token(a.expose(), "Not A Reason", &c).await;
    assert!(matches!(bad, Err(Error::Invalid { .. })), "{bad:?}");

    let by_token = f
        .svc
        .revoke_by_token(a.expose(), REASON_LOGOUT, &c)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_token.id, fam_a.id);
    assert!(matches!(
        f.svc.refresh(a.expose(), &c).await,
        Err(RefreshError::Revoked)
    ));
    // Idempotent, keeping the first reason.
    f.clock.advance_secs(5);
    let again = f
        .svc
        .revoke_family(&fam_a.id, REASON_REVOKED, &c)
        .await
        .unwrap();
    assert_eq!(again.revoked_reason.as_deref(), Some(REASON_LOGOUT));
    assert_eq!(again.revoked_at_ms, Some(NOW_MS));
    let missing = keygate_core::sessions::FamilyId::generate().unwrap();
    let err = f
        .svc
        .revoke_family(&missing, REASON_REVOKED, &c)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");

    // A user's remaining live families go at once; other users' stay.
    let n = f
        .svc
        .revoke_user_families("user-1", REASON_USER_REVOKED, &c)
        .await
        .unwrap();
    assert_eq!(n, 2);
    for t in [&b, &d] {
        let status = f.svc.family_of(t.expose()).await.unwrap().unwrap();
        assert_eq!(status.state, TokenState::Revoked);
        assert_eq!(
            status.family.revoked_reason.as_deref(),
            Some(REASON_USER_REVOKED)
        );
    }
    assert!(f.svc.refresh(other.expose(), &c).await.is_ok());
    let fam_b = f.store.get_family(&fam_b.id).await.unwrap().unwrap();
    assert!(fam_b.revoked_at_ms.is_some());
    assert_eq!(audit_of(&f.store, "session.revoked").await.len(), 2);
    let user = audit_of(&f.store, "session.user_revoked").await;
    assert_eq!(user.len(), 1);
    assert_eq!(user[0].target.as_deref(), Some("user-1"));
}

async fn purge_deletes_only_long_dead_families(ctx: Ctx) {
    let config = SessionConfig {
        absolute_lifetime_secs: 3_600,
        idle_timeout_secs: 600,
        retention_secs: 86_400,
        ..SessionConfig::default()
    };
    let f = fixture(&ctx, config);
    let c = AuditContext::system();
    let (revoked, fam_r) = f.svc.start("user-1", None, &c).await.unwrap();
    f.svc.refresh(revoked.expose(), &c).await.unwrap();
    f.svc
        .revoke_family(&fam_r.id, REASON_LOGOUT, &c)
        .await
        .unwrap();
    let (idle, _) = f.svc.start("user-1", None, &c).await.unwrap();
    // Revoked a retention ago: kept until the retention has passed.
    f.clock.set_millis(NOW_MS + 86_400_000);
    assert_eq!(f.svc.purge_expired(&c).await.unwrap(), 0);
    assert!(f.svc.family_of(revoked.expose()).await.unwrap().is_some());
    f.clock.advance_secs(1);
    assert_eq!(f.svc.purge_expired(&c).await.unwrap(), 1);
    // Idle since NOW: dead from NOW + 600 s, purged a retention later.
    assert!(f.svc.family_of(idle.expose()).await.unwrap().is_some());
    f.clock.set_millis(NOW_MS + 87_000_000);
    let (fresh, _) = f.svc.start("user-1", None, &c).await.unwrap();
    assert_eq!(f.svc.purge_expired(&c).await.unwrap(), 0);
    f.clock.advance_secs(1);
    assert_eq!(f.svc.purge_expired(&c).await.unwrap(), 1);
    for gone in [&revoked, &idle] {
        assert!(f.svc.family_of(gone.expose()).await.unwrap().is_none());
        assert!(matches!(
            f.svc.refresh(gone.expose(), &c).await,
            Err(RefreshError::Invalid)
        ));
    }
    assert_eq!(token_count(&ctx, fam_r.id.as_str()).await, 0);
    assert!(f.svc.refresh(fresh.expose(), &c).await.is_ok());
    // Only the sweeps that deleted something are audited.
    assert_eq!(audit_of(&f.store, "session.purged").await.len(), 2);
}

async fn blocklist_syncs_across_instances(ctx: Ctx) {
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let store_a: Arc<dyn Store> = Arc::new(ctx.store.clone());
    // The second node has its own pool on the same database.
    let second = connect(&ctx.url, ConnectOptions::default()).await.unwrap();
    let store_b: Arc<dyn Store> = Arc::new(second.clone());
    let a = Blocklist::new(store_a.clone(), clock.clone());
    let b = Blocklist::new(store_b, clock.clone());
    let c = ctx_of("user-1");
    let exp = NOW_MS / 1000 + 900;

    assert!(!a.is_blocked("jti-1"));
    a.block("jti-1", exp, &c).await.unwrap();
    assert!(a.is_blocked("jti-1"));
    assert!(!b.is_blocked("jti-1"), "not before a sync");
    assert_eq!(b.sync().await.unwrap(), 1);
    assert!(b.is_blocked("jti-1"));
    assert!(!b.is_blocked("jti-2"));

    // Idempotent, audited once.
    a.block("jti-1", exp, &c).await.unwrap();
    b.block("jti-1", exp, &c).await.unwrap();
    assert_eq!(
        audit_of(&store_a, "session.access_token_blocked")
            .await
            .len(),
        1
    );
    // A token already dead past any leeway is not worth storing.
    a.block("jti-old", NOW_MS / 1000 - 301, &c).await.unwrap();
    assert!(!a.is_blocked("jti-old"));

    // A node that has never synced loads everything still live.
    for i in 0..30 {
        b.block(&format!("bulk-{i}"), exp + i, &c).await.unwrap();
    }
    a.sync().await.unwrap();
    assert_eq!(a.len(), 31);
    let fresh = Blocklist::new(store_a.clone(), clock.clone());
    fresh.sync().await.unwrap();
    assert_eq!(fresh.len(), 31);
    assert!(fresh.is_blocked("bulk-29"));

    // Entries leave once past their exp and the leeway margin.
    clock.set_millis((exp + 301) * 1000);
    a.sync().await.unwrap();
    assert!(!a.is_blocked("jti-1"));
    assert!(a.is_blocked("bulk-29"));
    assert_eq!(a.purge(&AuditContext::system()).await.unwrap(), 2);
    second.close().await;
}

async fn blocklist_sync_catches_rows_committed_out_of_order(ctx: Ctx) {
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let store: Arc<dyn Store> = Arc::new(ctx.store.clone());
    let writer = Blocklist::new(store.clone(), clock.clone());
    let reader = Blocklist::new(store, clock.clone());
    let exp = NOW_MS / 1000 + 900;
    for jti in ["one", "two", "three"] {
        writer.block(jti, exp, &ctx_of("c")).await.unwrap();
    }
    reader.sync().await.unwrap();
    // A row whose sequence number is below what the reader has seen, as
    // when a PostgreSQL transaction commits after a later one.
    let overriding = match ctx.store.backend() {
        "postgres" => "OVERRIDING SYSTEM VALUE",
        _ => "",
    };
    common::exec(&ctx.url, "DELETE FROM revoked_jtis WHERE jti = 'two'").await;
    clock.advance_secs(30);
    let sql = format!(
        "INSERT INTO revoked_jtis (seq, jti, expires_at, added_at_ms) {overriding} \
         SELECT MIN(seq) + 1, 'late', {exp}, {} FROM revoked_jtis",
        clock.now_millis()
    );
    common::exec(&ctx.url, &sql).await;
    clock.advance_secs(2);
    reader.sync().await.unwrap();
    assert!(reader.is_blocked("late"));
}

async fn refresh_token_plaintext_never_reaches_the_database(ctx: Ctx) {
    let f = fixture(&ctx, grace(5));
    let c = ctx_of("client-1");
    let (t0, fam) = f.svc.start("user-1", None, &c).await.unwrap();
    let t1 = f.svc.refresh(t0.expose(), &c).await.unwrap();
    let replay = f.svc.refresh(t0.expose(), &c).await.unwrap();
    let t2 = f.svc.refresh(t1.token.expose(), &c).await.unwrap();
    let reused = f.svc.refresh(t0.expose(), &c).await.unwrap_err();
    f.svc
        .revoke_by_token(t2.token.expose(), REASON_LOGOUT, &c)
        .await
        .unwrap();
    let secrets = [t0.expose(), t1.token.expose(), t2.token.expose()];
    // Nor in what the caller might log.
    let printed = format!("{t1:?} {replay:?} {reused:?} {fam:?}");
    let dump = dump_database(&ctx).await;
    for s in secrets {
        let body = &s[4..];
        assert!(!printed.contains(body), "a token in Debug output");
        assert!(
            !dump.windows(body.len()).any(|w| w == body.as_bytes()),
            "a token's text is in the database"
        );
    }
    // The stored hashes are there, which proves the dump is complete.
    let hash = Pepper::new(1, &[7; 32]).unwrap().hash(t0.expose());
    let needle = match ctx.store.backend() {
        "postgres" => hash
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into_bytes(),
        _ => hash.to_vec(),
    };
    assert!(dump.windows(needle.len()).any(|w| w == needle.as_slice()));
}

/// Starts `n` refreshes of one token on the runtime's worker threads, all
/// released at once.
fn refresh_together(
    svc: &Arc<SessionService>,
    token: &str,
    n: usize,
) -> Vec<tokio::task::JoinHandle<Result<Refreshed, RefreshError>>> {
    let gate = Arc::new(tokio::sync::Barrier::new(n));
    (0..n)
        .map(|_| {
            let svc = svc.clone();
            let gate = gate.clone();
            let token = token.to_owned();
            tokio::spawn(async move {
                gate.wait().await;
                svc.refresh(&token, &ctx_of("c")).await
            })
        })
        .collect()
}

/// Every byte the database holds: the files (SQLite) or every row as text.
async fn dump_database(ctx: &Ctx) -> Vec<u8> {
    if ctx.store.backend() == "sqlite" {
        let path = ctx.url.trim_start_matches("sqlite://");
        let mut out = Vec::new();
        for suffix in ["", "-wal", "-shm", "-journal"] {
            if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                out.extend(bytes);
            }
        }
        return out;
    }
    let mut conn = AnyConnection::connect(&ctx.url).await.unwrap();
    let mut out = Vec::new();
    for table in [
        "refresh_families",
        "refresh_tokens",
        "audit_log",
        "revoked_jtis",
    ] {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COALESCE(string_agg(x::text, '|'), '') AS dump FROM {table} x"
        )))
        .fetch_one(&mut conn)
        .await
        .unwrap();
        out.extend(rows.get::<String, _>("dump").into_bytes());
    }
    conn.close().await.unwrap();
    out
}

async fn token_count(ctx: &Ctx, family: &str) -> i64 {
    let mut conn = AnyConnection::connect(&ctx.url).await.unwrap();
    let row = sqlx::query("SELECT COUNT(*) AS n FROM refresh_tokens WHERE family_id = $1")
        .bind(family)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let n: i64 = row.get("n");
    conn.close().await.unwrap();
    n
}

/// Expired, idle and revoked sessions do not count against the cap; past
/// it the oldest live session ends, with reason `session_limit`, and the
/// new session's audit entry names it.
async fn the_session_cap_counts_live_sessions_only_and_ends_the_oldest(ctx: Ctx) {
    let config = SessionConfig {
        absolute_lifetime_secs: 3_600,
        idle_timeout_secs: 600,
        max_per_user: 2,
        ..SessionConfig::default()
    };
    let f = fixture(&ctx, config);
    let c = ctx_of("c");
    // Two sessions left idle past the timeout, one logged out.
    let (_, _) = f.svc.start("user-1", None, &c).await.unwrap();
    let (_, _) = f.svc.start("user-1", None, &c).await.unwrap();
    f.clock.advance_secs(600);
    let (out, _) = f.svc.start("user-1", None, &c).await.unwrap();
    f.svc
        .revoke_by_token(out.expose(), REASON_LOGOUT, &c)
        .await
        .unwrap();
    // Another user's sessions are not this user's.
    let (other, _) = f.svc.start("user-2", None, &c).await.unwrap();
    let (first, first_family) = f.svc.start("user-1", None, &c).await.unwrap();
    f.clock.advance_secs(1);
    let (second, _) = f.svc.start("user-1", None, &c).await.unwrap();
    for t in [&first, &second, &other] {
        assert!(
            f.svc
                .family_of(t.expose())
                .await
                .unwrap()
                .unwrap()
                .is_active()
        );
    }
    assert!(
        audit_of(&f.store, "session.started")
            .await
            .iter()
            .all(|e| e.detail.get("sessions_ended").is_none())
    );
    // The third live one ends the oldest live one.
    let (third, _) = f.svc.start("user-1", None, &c).await.unwrap();
    let ended = f.svc.family_of(first.expose()).await.unwrap().unwrap();
    assert_eq!(ended.state, TokenState::Revoked);
    assert_eq!(
        ended.family.revoked_reason.as_deref(),
        Some("session_limit")
    );
    let err = f.svc.refresh(first.expose(), &c).await.unwrap_err();
    assert!(matches!(err, RefreshError::Revoked), "{err:?}");
    for t in [&second, &third, &other] {
        assert!(
            f.svc
                .family_of(t.expose())
                .await
                .unwrap()
                .unwrap()
                .is_active()
        );
    }
    let started = audit_of(&f.store, "session.started").await;
    let with_end: Vec<_> = started
        .iter()
        .filter(|e| e.detail.get("sessions_ended").is_some())
        .collect();
    assert_eq!(with_end.len(), 1);
    assert_eq!(
        with_end[0].detail["ended"],
        serde_json::json!([first_family.id])
    );
}
