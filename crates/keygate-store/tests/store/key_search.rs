//! The keys list's search, status and expiry filters and the per-status
//! counts, through `KeyService` over the SQL store; and their cost at
//! 10,000 keys (printed, never asserted). Each case runs on both backends.

use std::sync::Arc;
use std::time::Instant;

use crate::common::{Ctx, exec};
use keygate_core::keys::cache::CacheConfig;
use keygate_core::keys::pepper::Pepper;
use keygate_core::model::{KeyCounts, KeyFilter, KeyStatus, PageRequest, Scope, Tenant};
use keygate_core::ratelimit::GcraLimiter;
use keygate_core::store::{KeyStore, Store};
use keygate_core::{Admin, Error, KeyId, KeyService, ManualClock, NewKey};

const NOW: i64 = 1_700_000_000;
const DAY: i64 = 86_400;

on_both_backends!(
    search_status_and_expiry_filters,
    counts_by_status_for_root_and_tenant_admins,
    bad_search_text_is_refused,
    search_pages_follow_the_cursor,
    list_search_and_counts_at_10k_keys,
);

struct Fx {
    keys: KeyService,
    clock: Arc<ManualClock>,
    root: Admin,
}

async fn fx(ctx: &Ctx) -> Fx {
    let store: Arc<dyn Store> = Arc::new(ctx.store.clone());
    let clock = Arc::new(ManualClock::new(NOW * 1000));
    let keys = KeyService::new(
        store,
        Arc::new(Pepper::new(1, &[5; 32]).unwrap()),
        clock.clone(),
        Arc::new(GcraLimiter::new()),
        CacheConfig::default(),
    );
    let root = keys.bootstrap_root_key().await.unwrap();
    let root = keys.authorize_admin(root.key.expose(), None).await.unwrap();
    Fx { keys, clock, root }
}

impl Fx {
    async fn key(&self, name: &str, owner: &str, tenant: Option<&str>, ttl: Option<i64>) -> KeyId {
        use keygate_core::MillisClock;
        let input = NewKey {
            name: name.into(),
            owner: owner.into(),
            tenant: tenant.map(|t| Tenant::parse(t).unwrap()),
            scopes: vec![Scope::parse("orders:read").unwrap()],
            expires_at: ttl.map(|t| self.clock.now_secs() + t),
            ..NewKey::default()
        };
        self.keys.create(&self.root, input).await.unwrap().record.id
    }

    async fn find(&self, admin: &Admin, filter: KeyFilter) -> Result<Vec<KeyId>, Error> {
        let page = PageRequest {
            after: None,
            limit: 100,
        };
        let (rows, _) = self.keys.list(admin, filter, page).await?;
        Ok(rows.into_iter().map(|k| k.id).collect())
    }
}

fn q(text: &str) -> KeyFilter {
    KeyFilter {
        search: Some(text.into()),
        ..KeyFilter::default()
    }
}

async fn search_status_and_expiry_filters(ctx: Ctx) {
    let f = fx(&ctx).await;
    let a = f
        .key("Billing API", "alice", Some("acme"), Some(10 * DAY))
        .await;
    let b = f.key("50%_off promo", "bob", Some("acme"), None).await;
    let c = f.key("legacy", "Carol", Some("globex"), Some(DAY)).await;
    let d = f.key("billing worker", "dave", None, None).await;
    let e = f.key("x", "eve", None, Some(2 * DAY)).await;
    f.keys.revoke(&f.root, &d).await.unwrap();
    f.clock.advance_secs(DAY); // `c` expires now.

    assert_eq!(
        f.find(&f.root, q("BILLING")).await.unwrap(),
        vec![a.clone()]
    );
    let with_revoked = KeyFilter {
        include_revoked: true,
        ..q("billing")
    };
    assert_eq!(
        f.find(&f.root, with_revoked).await.unwrap(),
        vec![a.clone(), d.clone()]
    );
    let revoked = KeyFilter {
        status: Some(KeyStatus::Revoked),
        ..q(" Billing ")
    };
    assert_eq!(f.find(&f.root, revoked).await.unwrap(), vec![d.clone()]);
    // `%` and `_` are matched literally.
    assert_eq!(f.find(&f.root, q("%")).await.unwrap(), vec![b.clone()]);
    assert_eq!(f.find(&f.root, q("0%_O")).await.unwrap(), vec![b.clone()]);
    // Owner, id and display prefix are searched too.
    assert_eq!(f.find(&f.root, q("carol")).await.unwrap(), vec![c.clone()]);
    let id_part = c.as_str()[6..].to_lowercase();
    assert_eq!(f.find(&f.root, q(&id_part)).await.unwrap(), vec![c.clone()]);
    let e_prefix = f.keys.get(&f.root, &e).await.unwrap().prefix;
    assert_eq!(
        f.find(&f.root, q(&e_prefix)).await.unwrap(),
        vec![e.clone()]
    );

    let status = |s| KeyFilter {
        status: Some(s),
        ..KeyFilter::default()
    };
    assert_eq!(
        f.find(&f.root, status(KeyStatus::Expired)).await.unwrap(),
        vec![c.clone()]
    );
    let active = f.find(&f.root, status(KeyStatus::Active)).await.unwrap();
    assert_eq!(
        active[1..],
        [a.clone(), b.clone(), e.clone()],
        "after the root key"
    );
    let soon = KeyFilter {
        expires_before: Some(NOW + 5 * DAY),
        ..KeyFilter::default()
    };
    assert_eq!(
        f.find(&f.root, soon.clone()).await.unwrap(),
        vec![c.clone(), e.clone()]
    );
    let soon_active = KeyFilter {
        status: Some(KeyStatus::Active),
        ..soon
    };
    assert_eq!(f.find(&f.root, soon_active).await.unwrap(), vec![e.clone()]);

    // A tenant admin searches its own tenant only.
    let acme_admin = tenant_admin(&f, "acme").await;
    assert_eq!(f.find(&acme_admin, q("billing")).await.unwrap(), vec![a]);
    assert!(f.find(&acme_admin, q("carol")).await.unwrap().is_empty());
}

async fn tenant_admin(f: &Fx, tenant: &str) -> Admin {
    let input = NewKey {
        name: format!("{tenant} admin"),
        owner: "ops".into(),
        tenant: Some(Tenant::parse(tenant).unwrap()),
        scopes: vec![Scope::parse("admin").unwrap()],
        ..NewKey::default()
    };
    let k = f.keys.create(&f.root, input).await.unwrap();
    f.keys.authorize_admin(k.key.expose(), None).await.unwrap()
}

async fn counts_by_status_for_root_and_tenant_admins(ctx: Ctx) {
    let f = fx(&ctx).await;
    f.key("a", "o", Some("acme"), Some(10 * DAY)).await;
    f.key("b", "o", Some("acme"), Some(3 * DAY)).await;
    let gone = f.key("c", "o", Some("acme"), None).await;
    f.key("d", "o", Some("globex"), Some(DAY)).await;
    f.key("e", "o", None, Some(6 * DAY)).await;
    f.keys.revoke(&f.root, &gone).await.unwrap();
    f.clock.advance_secs(DAY);
    let now = NOW + DAY;
    let root = f.keys.counts(&f.root, now, now + 7 * DAY).await.unwrap();
    // Active: the root key, a, b, e; d expired; b and e expire within 7 days.
    let want = KeyCounts {
        active: 4,
        revoked: 1,
        expired: 1,
        expiring: 2,
    };
    assert_eq!(root, want);
    let acme = tenant_admin(&f, "acme").await;
    let acme_counts = f.keys.counts(&acme, now, now + 7 * DAY).await.unwrap();
    let want = KeyCounts {
        active: 3, // a, b and the tenant admin's own key
        revoked: 1,
        expired: 0,
        expiring: 1,
    };
    assert_eq!(acme_counts, want);
}

async fn bad_search_text_is_refused(ctx: Ctx) {
    let f = fx(&ctx).await;
    for bad in ["a\u{0}b", "tab\there", &"x".repeat(257)] {
        let err = f.find(&f.root, q(bad)).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { field: "q", .. }), "{err:?}");
    }
    // Blank text is no search at all.
    assert_eq!(f.find(&f.root, q("   ")).await.unwrap().len(), 1);
}

async fn search_pages_follow_the_cursor(ctx: Ctx) {
    let f = fx(&ctx).await;
    let mut want = Vec::new();
    for i in 0..7 {
        want.push(f.key(&format!("match {i}"), "o", None, None).await);
        f.key(&format!("other {i}"), "o", None, None).await;
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = PageRequest { after, limit: 3 };
        let (rows, next) = f.keys.list(&f.root, q("MATCH"), page).await.unwrap();
        assert!(rows.len() <= 3);
        seen.extend(rows.into_iter().map(|k| k.id));
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, want);
}

/// Inserts `n` keys straight into the table, 500 rows a statement: 1 in
/// 100 revoked, 1 in 20 expired, 1 in 10 expiring within 7 days, ten
/// tenants, and "needle" in the name of 1 in 1000.
async fn bulk_keys(url: &str, n: usize) {
    let mut sql = String::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        sql.push_str(
            "INSERT INTO api_keys (id, name, owner, tenant, scopes, metadata, env, prefix, \
             created_at, updated_at, expires_at, revoked_at, last_used_at, rate_limit_limit, \
             rate_limit_period, remaining, version) VALUES ",
        );
        let rows: Vec<String> = chunk.iter().map(|&i| bulk_row(i)).collect();
        sql.push_str(&rows.join(", "));
        sql.push_str(";\n");
    }
    exec(url, &sql).await;
}

fn bulk_row(i: usize) -> String {
    let id = format!("key_{i:0>16}");
    let needle = if i.is_multiple_of(1000) { " needle" } else { "" };
    let expires = match i % 20 {
        0 => (NOW - DAY).to_string(),
        1 | 2 => (NOW + 3 * DAY).to_string(),
        3..=9 => (NOW + 30 * DAY).to_string(),
        _ => "NULL".into(),
    };
    let revoked = if i % 100 == 50 {
        NOW.to_string()
    } else {
        "NULL".into()
    };
    format!(
        "('{id}', 'service {i}{needle}', 'owner{o}', 't{t}', '[\"orders:read\"]', '{{}}', \
         'live', 'kg_live_{i:0>4}', {NOW}, {NOW}, {expires}, {revoked}, NULL, NULL, NULL, \
         NULL, 1)",
        o = i % 100,
        t = i % 10,
    )
}

/// The median of five runs of `f`, in milliseconds.
async fn median_ms<F, Fut, T>(mut f: F) -> (f64, T)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let start = Instant::now();
        last = Some(f().await);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (times[2], last.unwrap())
}

async fn list_search_and_counts_at_10k_keys(ctx: Ctx) {
    let f = fx(&ctx).await;
    bulk_keys(&ctx.url, 10_000).await;
    let backend = ctx.store.backend_kind().as_str();
    let page = PageRequest {
        after: None,
        limit: 50,
    };
    let cases: Vec<(&str, KeyFilter, usize)> = vec![
        ("first page", KeyFilter::default(), 50),
        ("search rare (needle)", q("needle"), 10),
        ("search common (owner7)", q("owner7"), 50),
        ("search by prefix", q("kg_live_0042"), 1),
        (
            "status expired",
            KeyFilter {
                status: Some(KeyStatus::Expired),
                ..KeyFilter::default()
            },
            50,
        ),
        (
            "tenant + expiring, active",
            KeyFilter {
                tenant: Some(Tenant::parse("t1").unwrap()),
                status: Some(KeyStatus::Active),
                expires_before: Some(NOW + 7 * DAY),
                ..KeyFilter::default()
            },
            50,
        ),
    ];
    for (name, filter, want) in cases {
        let (ms, rows) = median_ms(|| f.keys.list(&f.root, filter.clone(), page)).await;
        assert_eq!(rows.unwrap().0.len(), want, "{name}");
        eprintln!("[10k keys, {backend}] list {name}: {ms:.2} ms");
    }
    let (ms, counts) = median_ms(|| f.keys.counts(&f.root, NOW, NOW + 7 * DAY)).await;
    // 100 revoked; of the rest, every 20th expired (i % 20 == 0, never
    // i % 100 == 50) and 2 in 20 expiring; the root key is active too.
    let want = KeyCounts {
        revoked: 100,
        expired: 500,
        expiring: 1000,
        active: 10_000 - 100 - 500 + 1,
    };
    assert_eq!(counts.unwrap(), want);
    eprintln!("[10k keys, {backend}] counts (root): {ms:.2} ms");
    let t3 = Tenant::parse("t3").unwrap();
    let (ms, counts) = median_ms(|| {
        ctx.store
            .count_keys_by_status(Some(&t3), NOW, NOW + 7 * DAY)
    })
    .await;
    assert_eq!(counts.unwrap().revoked, 0);
    eprintln!("[10k keys, {backend}] counts (one tenant, 1,000 keys): {ms:.2} ms");
}
