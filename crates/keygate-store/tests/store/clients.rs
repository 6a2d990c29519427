//! mTLS clients in storage, and identification over a real store with
//! certificates made in the test. Each case runs on SQLite and, when
//! configured, PostgreSQL.

use std::sync::Arc;

use crate::common::{Ctx, audit_len};
use crate::fixtures::NOW;
use keygate_core::clients::{
    CaName, CertSource, ClientCas, ClientFilter, ClientPatch, ClientRefusal, ClientService,
    ClientStore, Matcher, NameKind, NamePattern, NewClient, PeerCertificate, Thumbprint,
};
use keygate_core::feed::{Change, FeedStore};
use keygate_core::keys::cache::CacheConfig;
use keygate_core::keys::pepper::Pepper;
use keygate_core::model::{PageRequest, RateLimitSpec, Scope, Tenant};
use keygate_core::ratelimit::GcraLimiter;
use keygate_core::store::Store;
use keygate_core::{Admin, Error, KeyService, ManualClock};
use keygate_test_support::certs::{LeafSpec, TestCa, self_signed};

on_both_backends!(
    clients_round_trip_through_create_list_update_revoke,
    a_live_matcher_is_unique_and_a_refusal_writes_nothing,
    identification_reads_pinned_and_pattern_clients,
    every_change_appends_a_client_changed_entry,
);

struct Setup {
    service: ClientService,
    admin: Admin,
    mesh: TestCa,
}

async fn setup(ctx: &Ctx) -> Setup {
    let store: Arc<dyn Store> = Arc::new(ctx.store.clone());
    let clock = Arc::new(ManualClock::new(NOW * 1000));
    let keys = KeyService::new(
        store,
        Arc::new(Pepper::new(1, b"0123456789abcdef0123456789abcdef").unwrap()),
        clock.clone(),
        Arc::new(GcraLimiter::new()),
        CacheConfig::default(),
    );
    let root = keys.bootstrap_root_key().await.unwrap();
    let admin = keys.authorize_admin(root.key.expose(), None).await.unwrap();
    let mesh = TestCa::new("mesh");
    let cas = ClientCas::new([("mesh", mesh.pem.as_bytes())], []).unwrap();
    let service = ClientService::new(Arc::new(ctx.store.clone()), cas, clock);
    Setup {
        service,
        admin,
        mesh,
    }
}

fn spiffe(p: &str) -> Matcher {
    Matcher::Pattern {
        ca: CaName::parse("mesh").unwrap(),
        pattern: NamePattern::parse(NameKind::SpiffeId, p).unwrap(),
    }
}

fn new_client(name: &str, tenant: Option<&str>, matcher: Matcher) -> NewClient {
    NewClient {
        name: name.into(),
        owner: "team".into(),
        tenant: tenant.map(|t| Tenant::parse(t).unwrap()),
        scopes: vec![Scope::parse("orders:read").unwrap()],
        rate_limit: Some(RateLimitSpec {
            limit: 10,
            period_seconds: 60,
        }),
        matcher,
    }
}

fn page(limit: u32, after: Option<i64>) -> PageRequest {
    PageRequest { after, limit }
}

async fn clients_round_trip_through_create_list_update_revoke(ctx: Ctx) {
    let Setup { service, admin, .. } = setup(&ctx).await;
    let a = service
        .create(
            &admin,
            new_client("a", Some("acme"), spiffe("spiffe://a/x")),
        )
        .await
        .unwrap();
    let b = service
        .create(&admin, new_client("b", None, spiffe("spiffe://a/ns/*")))
        .await
        .unwrap();
    let pinned = Matcher::Pinned(Thumbprint([7; 32]));
    let c = service
        .create(&admin, new_client("c", None, pinned))
        .await
        .unwrap();
    assert_eq!(service.get(&admin, &a.id).await.unwrap(), a);
    assert_eq!(service.get(&admin, &c.id).await.unwrap(), c);

    let (all, next) = service
        .list(&admin, ClientFilter::default(), page(2, None))
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let (rest, last) = service
        .list(&admin, ClientFilter::default(), page(2, next))
        .await
        .unwrap();
    assert_eq!((rest, last), (vec![c.clone()], None));
    let acme = ClientFilter {
        tenant: Some(Tenant::parse("acme").unwrap()),
        ..ClientFilter::default()
    };
    assert_eq!(
        service.list(&admin, acme, page(10, None)).await.unwrap().0,
        vec![a.clone()]
    );

    let patch = ClientPatch {
        name: Some("b2".into()),
        rate_limit: Some(None),
        matcher: Some(spiffe("spiffe://a/other/*")),
        ..ClientPatch::default()
    };
    let b2 = service.update(&admin, &b.id, patch).await.unwrap();
    assert_eq!(service.get(&admin, &b.id).await.unwrap(), b2);
    assert_eq!((b2.rate_limit, b2.version), (None, 2));
    assert_eq!(b2.matcher, spiffe("spiffe://a/other/*"));

    let revoked = service.revoke(&admin, &a.id).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(NOW));
    // Again: the first time stays.
    assert_eq!(
        service.revoke(&admin, &a.id).await.unwrap().revoked_at,
        Some(NOW)
    );
    let (live, _) = service
        .list(&admin, ClientFilter::default(), page(10, None))
        .await
        .unwrap();
    assert!(live.iter().all(|c| c.id != a.id));
    let with = ClientFilter {
        include_revoked: true,
        ..ClientFilter::default()
    };
    assert_eq!(
        service
            .list(&admin, with, page(10, None))
            .await
            .unwrap()
            .0
            .len(),
        3
    );
    let err = service
        .update(&admin, &a.id, ClientPatch::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Revoked), "{err:?}");
}

async fn a_live_matcher_is_unique_and_a_refusal_writes_nothing(ctx: Ctx) {
    let Setup { service, admin, .. } = setup(&ctx).await;
    let first = service
        .create(&admin, new_client("a", None, spiffe("spiffe://a/x")))
        .await
        .unwrap();
    let audits = audit_len(&ctx.store).await;
    let head = ctx.store.feed_head().await.unwrap();
    let err = service
        .create(&admin, new_client("b", None, spiffe("spiffe://a/x")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err:?}");
    let other = service
        .create(&admin, new_client("c", None, spiffe("spiffe://a/y")))
        .await
        .unwrap();
    let audits = audits + 1;
    let head = head + 1;
    let moved = ClientPatch {
        matcher: Some(spiffe("spiffe://a/x")),
        ..ClientPatch::default()
    };
    let err = service.update(&admin, &other.id, moved).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err:?}");
    assert_eq!(audit_len(&ctx.store).await, audits);
    assert_eq!(ctx.store.feed_head().await.unwrap(), head);
    // Revoked, its matcher is free again.
    service.revoke(&admin, &first.id).await.unwrap();
    service
        .create(&admin, new_client("d", None, spiffe("spiffe://a/x")))
        .await
        .unwrap();
    // A stale version writes nothing.
    let mut stale = other.clone();
    stale.name = "stale".into();
    stale.version = 7;
    let audit = keygate_core::model::AuditEntry {
        id: "evt_stale".into(),
        at: NOW,
        action: "client.updated".into(),
        actor: "t".into(),
        target: None,
        tenant: None,
        request_id: None,
        detail: serde_json::json!({}),
        seq: 0,
    };
    assert!(
        !ClientStore::update_client(&ctx.store, &stale, &audit)
            .await
            .unwrap()
    );
}

async fn identification_reads_pinned_and_pattern_clients(ctx: Ctx) {
    let Setup {
        service,
        admin,
        mesh,
    } = setup(&ctx).await;
    let own = self_signed(&LeafSpec::default());
    let own_peer = PeerCertificate::new(vec![own.der.clone()], CertSource::Tls).unwrap();
    let pinned = Matcher::Pinned(Thumbprint(*own_peer.thumbprint()));
    let p = service
        .create(&admin, new_client("p", None, pinned))
        .await
        .unwrap();
    let w = service
        .create(&admin, new_client("w", None, spiffe("spiffe://a/ns/*")))
        .await
        .unwrap();
    let e = service
        .create(&admin, new_client("e", None, spiffe("spiffe://a/ns/api")))
        .await
        .unwrap();
    assert_eq!(service.identify(&own_peer).await.unwrap().client.id, p.id);
    let leaf = |id: &str| {
        PeerCertificate::new(
            vec![mesh.leaf(&LeafSpec::spiffe(id)).der],
            CertSource::Proxy,
        )
        .unwrap()
    };
    assert_eq!(
        service
            .identify(&leaf("spiffe://a/ns/api"))
            .await
            .unwrap()
            .client
            .id,
        e.id
    );
    assert_eq!(
        service
            .identify(&leaf("spiffe://a/ns/web"))
            .await
            .unwrap()
            .client
            .id,
        w.id
    );
    assert_eq!(
        service
            .identify(&leaf("spiffe://a/nsx/web"))
            .await
            .unwrap_err(),
        ClientRefusal::UnknownClient
    );
    service.revoke(&admin, &e.id).await.unwrap();
    assert_eq!(
        service
            .identify(&leaf("spiffe://a/ns/api"))
            .await
            .unwrap_err(),
        ClientRefusal::ClientRevoked
    );
    service.revoke(&admin, &p.id).await.unwrap();
    assert_eq!(
        service.identify(&own_peer).await.unwrap_err(),
        ClientRefusal::ClientRevoked
    );
}

async fn every_change_appends_a_client_changed_entry(ctx: Ctx) {
    let Setup { service, admin, .. } = setup(&ctx).await;
    let head = ctx.store.feed_head().await.unwrap();
    let c = service
        .create(&admin, new_client("a", None, spiffe("spiffe://a/x")))
        .await
        .unwrap();
    service
        .update(
            &admin,
            &c.id,
            ClientPatch {
                name: Some("b".into()),
                ..ClientPatch::default()
            },
        )
        .await
        .unwrap();
    service.revoke(&admin, &c.id).await.unwrap();
    let entries = ctx.store.feed_entries(head, 100).await.unwrap();
    let want = Change::ClientChanged {
        client_id: c.id.clone(),
    };
    assert_eq!(
        entries.iter().map(|e| e.change.clone()).collect::<Vec<_>>(),
        vec![want.clone(), want.clone(), want]
    );
}
