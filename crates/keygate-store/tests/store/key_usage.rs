//! Verification counts per key, hour and outcome: the store's upsert,
//! range and purge, and through `KeyService` the counts read back equal to
//! the verifications made, flushed or not, with a failed flush re-queued.
//! Each case runs on SQLite and, when configured, PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use keygate_core::keys::cache::CacheConfig;
use keygate_core::keys::pepper::Pepper;
use keygate_core::model::{RateLimitSpec, Scope, Tenant};
use keygate_core::ratelimit::GcraLimiter;
use keygate_core::store::{Store, UsageCount, UsageStore};
use keygate_core::{
    Admin, Error, Granularity, KeyId, KeyService, KeyUsage, ManualClock, NewKey, UsageQuery,
    VerifyCode,
};

use crate::common::Ctx;
use crate::fixtures::NOW;

on_both_backends!(
    add_usage_adds_and_usage_reads_a_range_of_many_keys,
    counts_equal_the_verifications_of_each_outcome,
    a_failed_flush_is_requeued_and_written_once_later,
    a_tenant_admin_reads_only_its_tenants_usage,
);

const HOUR: i64 = 3600;
/// The start of NOW's hour.
const H0: i64 = NOW / HOUR * HOUR;

fn row(id: &KeyId, hour: i64, code: VerifyCode, count: u64) -> UsageCount {
    UsageCount {
        key_id: id.clone(),
        hour,
        code,
        count,
    }
}

async fn add_usage_adds_and_usage_reads_a_range_of_many_keys(ctx: Ctx) {
    let s = &ctx.store;
    let (a, b, c) = (
        KeyId::generate().unwrap(),
        KeyId::generate().unwrap(),
        KeyId::generate().unwrap(),
    );
    s.add_usage(&[
        row(&a, H0, VerifyCode::Valid, 3),
        row(&b, H0, VerifyCode::RateLimited, 1),
    ])
    .await
    .unwrap();
    s.add_usage(&[
        row(&a, H0, VerifyCode::Valid, 4),
        row(&a, H0 - HOUR, VerifyCode::Revoked, 2),
        row(&c, H0, VerifyCode::Valid, 9),
    ])
    .await
    .unwrap();
    let got = s
        .usage(&[a.clone(), b.clone()], H0 - HOUR, H0 + HOUR)
        .await
        .unwrap();
    let mut want = vec![
        row(&a, H0 - HOUR, VerifyCode::Revoked, 2),
        row(&a, H0, VerifyCode::Valid, 7),
        row(&b, H0, VerifyCode::RateLimited, 1),
    ];
    want.sort_by(|x, y| (&x.key_id, x.hour, x.code).cmp(&(&y.key_id, y.hour, y.code)));
    assert_eq!(got, want);
    // `until` is exclusive, `since` inclusive.
    let got = s
        .usage(std::slice::from_ref(&a), H0 - HOUR, H0)
        .await
        .unwrap();
    assert_eq!(got, vec![row(&a, H0 - HOUR, VerifyCode::Revoked, 2)]);
    assert_eq!(s.purge_usage(H0).await.unwrap(), 1);
    let got = s
        .usage(&[a.clone(), c.clone()], 0, H0 + HOUR)
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    assert!(s.usage(&[], 0, H0 + HOUR).await.unwrap().is_empty());
}

/// The case's store, whose writes of counts fail while `fail` is set.
struct Flaky {
    inner: Arc<dyn Store>,
    fail: AtomicBool,
}

#[async_trait]
impl UsageStore for Flaky {
    async fn add_usage(&self, rows: &[UsageCount]) -> Result<(), Error> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(Error::Storage("refused by the test".into()));
        }
        self.inner.add_usage(rows).await
    }
    async fn usage(
        &self,
        keys: &[KeyId],
        since: i64,
        until: i64,
    ) -> Result<Vec<UsageCount>, Error> {
        self.inner.usage(keys, since, until).await
    }
    async fn purge_usage(&self, before: i64) -> Result<u64, Error> {
        self.inner.purge_usage(before).await
    }
}

struct Rig {
    keys: KeyService,
    admin: Admin,
    clock: Arc<ManualClock>,
    flaky: Arc<Flaky>,
}

async fn rig(ctx: &Ctx) -> Rig {
    let store: Arc<dyn Store> = Arc::new(ctx.store.clone());
    let clock = Arc::new(ManualClock::new(NOW * 1000));
    let flaky = Arc::new(Flaky {
        inner: store.clone(),
        fail: AtomicBool::new(false),
    });
    let keys = KeyService::new(
        store,
        Arc::new(Pepper::new(1, b"0123456789abcdef0123456789abcdef").unwrap()),
        clock.clone(),
        Arc::new(GcraLimiter::new()),
        CacheConfig::default(),
    )
    .with_usage_store(flaky.clone());
    let root = keys.bootstrap_root_key().await.unwrap();
    let admin = keys.authorize_admin(root.key.expose(), None).await.unwrap();
    Rig {
        keys,
        admin,
        clock,
        flaky,
    }
}

async fn make(r: &Rig, tweak: impl FnOnce(&mut NewKey)) -> (KeyId, String) {
    let mut input = NewKey {
        name: "k".into(),
        owner: "o".into(),
        scopes: vec![Scope::parse("orders:read").unwrap()],
        ..NewKey::default()
    };
    tweak(&mut input);
    let issued = r.keys.create(&r.admin, input).await.unwrap();
    (issued.record.id, issued.key.expose().to_owned())
}

async fn verify(r: &Rig, key: &str, scope: &str, times: usize) -> Vec<VerifyCode> {
    let scopes = [Scope::parse(scope).unwrap()];
    let mut codes = Vec::new();
    for _ in 0..times {
        codes.push(r.keys.verify_key(key, &scopes, None).await.unwrap().code);
    }
    codes
}

fn sum(u: &KeyUsage, code: &str) -> u64 {
    u.buckets.iter().map(|b| b.counts[code]).sum()
}

async fn counts_equal_the_verifications_of_each_outcome(ctx: Ctx) {
    let r = rig(&ctx).await;
    let (plain, plain_key) = make(&r, |_| {}).await;
    let (limited, limited_key) = make(&r, |k| {
        k.rate_limit = Some(RateLimitSpec {
            limit: 3,
            period_seconds: 3600,
        })
    })
    .await;
    let (metered, metered_key) = make(&r, |k| k.remaining = Some(2)).await;
    let (expiring, expiring_key) = make(&r, |k| k.expires_at = Some(NOW + 60)).await;
    let (revoked, revoked_key) = make(&r, |_| {}).await;

    verify(&r, &plain_key, "orders:read", 5).await;
    verify(&r, &plain_key, "orders:write", 2).await;
    let codes = verify(&r, &limited_key, "orders:read", 5).await;
    assert_eq!(
        codes
            .iter()
            .filter(|c| **c == VerifyCode::RateLimited)
            .count(),
        2
    );
    let codes = verify(&r, &metered_key, "orders:read", 4).await;
    assert_eq!(
        codes
            .iter()
            .filter(|c| **c == VerifyCode::UsageExceeded)
            .count(),
        2
    );
    verify(&r, &expiring_key, "orders:read", 1).await;
    verify(&r, &revoked_key, "orders:read", 1).await;
    // Half written now, half left in memory: a read sees both.
    assert!(r.keys.flush_usage_counts().await.unwrap() > 0);
    r.keys.revoke(&r.admin, &revoked).await.unwrap();
    verify(&r, &revoked_key, "orders:read", 3).await;
    r.clock.advance_secs(120);
    verify(&r, &expiring_key, "orders:read", 2).await;
    // The next hour gets buckets of its own.
    r.clock.set_millis((H0 + HOUR + 5) * 1000);
    verify(&r, &plain_key, "orders:read", 4).await;

    let ids = [
        plain.clone(),
        limited.clone(),
        metered.clone(),
        expiring.clone(),
        revoked.clone(),
    ];
    let got = r
        .keys
        .usage_many(&r.admin, &ids, H0 - 2 * HOUR, H0 + 2 * HOUR)
        .await
        .unwrap();
    assert_eq!(got.len(), 5);
    for u in &got {
        assert_eq!(u.buckets.len(), 4, "every hour of the window is present");
        assert!(u.buckets.iter().all(|b| b.counts.len() == 6));
    }
    let by = |id: &KeyId| got.iter().find(|u| &u.key_id == id).unwrap();
    assert_eq!(by(&plain).buckets[2].counts["VALID"], 5);
    assert_eq!(by(&plain).buckets[3].counts["VALID"], 4);
    assert_eq!(sum(by(&plain), "INSUFFICIENT_SCOPE"), 2);
    assert_eq!(
        (
            sum(by(&limited), "VALID"),
            sum(by(&limited), "RATE_LIMITED")
        ),
        (3, 2)
    );
    assert_eq!(
        (
            sum(by(&metered), "VALID"),
            sum(by(&metered), "USAGE_EXCEEDED")
        ),
        (2, 2)
    );
    assert_eq!(
        (sum(by(&expiring), "VALID"), sum(by(&expiring), "EXPIRED")),
        (1, 2)
    );
    assert_eq!(
        (sum(by(&revoked), "VALID"), sum(by(&revoked), "REVOKED")),
        (1, 3)
    );

    // After the flush the same answer comes from the store alone.
    r.keys.flush_usage_counts().await.unwrap();
    let again = r
        .keys
        .usage_many(&r.admin, &ids, H0 - 2 * HOUR, H0 + 2 * HOUR)
        .await
        .unwrap();
    assert_eq!(again, got);
    assert_eq!(r.keys.flush_usage_counts().await.unwrap(), 0);
    // By day: one bucket holding everything.
    let q = UsageQuery {
        since: H0,
        until: H0 + 2 * HOUR,
        granularity: Granularity::Day,
    };
    let day = r.keys.usage(&r.admin, &plain, q).await.unwrap();
    assert_eq!(day.buckets.len(), 1);
    assert_eq!(day.buckets[0].counts["VALID"], 9);
    assert_eq!(day.buckets[0].start % 86_400, 0);
}

async fn a_failed_flush_is_requeued_and_written_once_later(ctx: Ctx) {
    let r = rig(&ctx).await;
    let (id, key) = make(&r, |_| {}).await;
    verify(&r, &key, "orders:read", 3).await;
    r.flaky.fail.store(true, Ordering::SeqCst);
    assert!(matches!(
        r.keys.flush_usage_counts().await,
        Err(Error::Storage(_))
    ));
    verify(&r, &key, "orders:read", 2).await;
    assert_eq!(
        sum(&read(&r, &id).await, "VALID"),
        5,
        "the refused batch is still counted"
    );
    assert!(r.keys.flush_usage_counts().await.is_err());
    r.flaky.fail.store(false, Ordering::SeqCst);
    assert_eq!(r.keys.flush_usage_counts().await.unwrap(), 1);
    assert_eq!(r.keys.flush_usage_counts().await.unwrap(), 0);
    let stored = ctx
        .store
        .usage(std::slice::from_ref(&id), H0, H0 + HOUR)
        .await
        .unwrap();
    assert_eq!(stored, vec![row(&id, H0, VerifyCode::Valid, 5)]);
    assert_eq!(sum(&read(&r, &id).await, "VALID"), 5);
    // Retention: a purge that keeps 0 days drops everything before this hour.
    r.clock.set_millis((H0 + 2 * HOUR) * 1000);
    assert_eq!(r.keys.purge_usage(0).await.unwrap(), 1);
}

async fn read(r: &Rig, id: &KeyId) -> KeyUsage {
    let got = r
        .keys
        .usage_many(&r.admin, std::slice::from_ref(id), H0, H0 + HOUR)
        .await;
    got.unwrap().remove(0)
}

async fn a_tenant_admin_reads_only_its_tenants_usage(ctx: Ctx) {
    let r = rig(&ctx).await;
    let acme = Tenant::parse("acme").unwrap();
    let (tenant_admin_id, tenant_admin_key) = make(&r, |k| {
        k.tenant = Some(acme.clone());
        k.scopes = vec![Scope::parse("admin").unwrap()];
    })
    .await;
    let (mine, mine_key) = make(&r, |k| k.tenant = Some(acme.clone())).await;
    let (other, other_key) = make(&r, |k| k.tenant = Some(Tenant::parse("globex").unwrap())).await;
    verify(&r, &mine_key, "orders:read", 2).await;
    verify(&r, &other_key, "orders:read", 3).await;
    let tenant_admin = r
        .keys
        .authorize_admin(&tenant_admin_key, None)
        .await
        .unwrap();
    let got = r
        .keys
        .usage_many(&tenant_admin, &[mine.clone()], H0, H0 + HOUR)
        .await
        .unwrap();
    assert_eq!(sum(&got[0], "VALID"), 2);
    let refused = r
        .keys
        .usage_many(&tenant_admin, &[mine.clone(), other.clone()], H0, H0 + HOUR)
        .await;
    assert!(matches!(refused, Err(Error::NotFound(_))), "{refused:?}");
    let q = UsageQuery {
        since: H0,
        until: H0 + HOUR,
        granularity: Granularity::Hour,
    };
    assert!(matches!(
        r.keys.usage(&tenant_admin, &other, q).await,
        Err(Error::NotFound(_))
    ));
    // The root admin sees both.
    let all = r
        .keys
        .usage_many(&r.admin, &[mine, other, tenant_admin_id], H0, H0 + HOUR)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|u| sum(u, "VALID")).collect::<Vec<_>>(),
        vec![2, 3, 0]
    );
    // Bad windows and too many keys are refused before any read.
    let many: Vec<KeyId> = (0..101).map(|_| KeyId::generate().unwrap()).collect();
    assert!(matches!(
        r.keys.usage_many(&r.admin, &many, H0, H0 + HOUR).await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        r.keys.usage_many(&r.admin, &many[..1], H0, H0).await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        r.keys
            .usage_many(&r.admin, &many[..1], H0, H0 + 745 * HOUR)
            .await,
        Err(Error::Invalid { .. })
    ));
}
