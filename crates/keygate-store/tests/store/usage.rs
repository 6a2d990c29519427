//! Credits, last-use times and listing.
//! Each case runs on SQLite and, when configured, PostgreSQL.

use std::collections::BTreeSet;

use crate::common::Ctx;
use crate::fixtures::{self, NOW, audit, insert, secret_for};
use keygate_core::model::{KeyFilter, KeyRecord, PageRequest, Tenant};
use keygate_core::store::KeyStore;

on_both_backends!(
    take_credit_is_atomic_under_concurrency,
    touch_last_used_never_goes_backwards,
    list_keys_filters_and_pages,
);

async fn take_credit_is_atomic_under_concurrency(ctx: Ctx) {
    let s = &ctx.store;
    let mut k = fixtures::key(None, "alice", NOW);
    k.remaining = Some(10);
    s.insert_key(
        &k,
        &secret_for(&k.id, NOW),
        &audit("key.created", &k, NOW),
        None,
    )
    .await
    .unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = s.clone();
            let id = k.id.clone();
            tokio::spawn(async move { store.take_credit(&id).await.unwrap() })
        })
        .collect();
    let mut left = Vec::new();
    for t in tasks {
        if let Some(n) = t.await.unwrap() {
            left.push(n);
        }
    }
    left.sort_unstable();
    assert_eq!(left, (0..10).collect::<Vec<i64>>());
    assert_eq!(s.get_key(&k.id).await.unwrap().unwrap().remaining, Some(0));
    assert_eq!(s.take_credit(&k.id).await.unwrap(), None);

    let (unlimited, _) = insert(s, None, "bob", NOW).await;
    assert_eq!(s.take_credit(&unlimited.id).await.unwrap(), None);
}

async fn touch_last_used_never_goes_backwards(ctx: Ctx) {
    let s = &ctx.store;
    let (a, _) = insert(s, None, "alice", NOW).await;
    let (b, _) = insert(s, None, "bob", NOW).await;
    let missing = keygate_core::KeyId::generate().unwrap();
    s.touch_last_used(&[]).await.unwrap();
    s.touch_last_used(&[
        (a.id.clone(), NOW + 100),
        (a.id.clone(), NOW + 50),
        (b.id.clone(), NOW + 7),
        (missing, NOW),
    ])
    .await
    .unwrap();
    let last = |id| async move { s.get_key(id).await.unwrap().unwrap().last_used_at };
    assert_eq!(last(&a.id).await, Some(NOW + 100));
    assert_eq!(last(&b.id).await, Some(NOW + 7));
    s.touch_last_used(&[(a.id.clone(), NOW + 80)])
        .await
        .unwrap();
    assert_eq!(last(&a.id).await, Some(NOW + 100));
    s.touch_last_used(&[(a.id.clone(), NOW + 200)])
        .await
        .unwrap();
    assert_eq!(last(&a.id).await, Some(NOW + 200));
}

async fn list_keys_filters_and_pages(ctx: Ctx) {
    let s = &ctx.store;
    let mut acme = Vec::new();
    for owner in ["alice", "bob", "alice", "carol"] {
        acme.push(insert(s, Some("acme"), owner, NOW).await.0);
    }
    let (globex, _) = insert(s, Some("globex"), "alice", NOW).await;
    let (_none, _) = insert(s, None, "dave", NOW).await;
    s.revoke_key(&acme[1].id, NOW, &audit("key.revoked", &acme[1], NOW))
        .await
        .unwrap();

    let page = |after, limit| PageRequest { after, limit };
    let ids =
        |rows: &[(i64, KeyRecord)]| rows.iter().map(|(_, k)| k.id.clone()).collect::<Vec<_>>();

    let all = s
        .list_keys(&KeyFilter::default(), page(None, 100))
        .await
        .unwrap();
    assert_eq!(all.len(), 5, "the revoked key is hidden by default");
    assert!(
        all.windows(2).all(|w| w[0].0 < w[1].0),
        "ascending sequence"
    );
    let with_revoked = KeyFilter {
        include_revoked: true,
        ..Default::default()
    };
    assert_eq!(
        s.list_keys(&with_revoked, page(None, 100))
            .await
            .unwrap()
            .len(),
        6
    );

    let acme_filter = KeyFilter {
        tenant: Some(Tenant::parse("acme").unwrap()),
        ..Default::default()
    };
    let rows = s.list_keys(&acme_filter, page(None, 100)).await.unwrap();
    assert_eq!(
        ids(&rows),
        vec![acme[0].id.clone(), acme[2].id.clone(), acme[3].id.clone()]
    );

    let alice = KeyFilter {
        owner: Some("alice".into()),
        include_revoked: true,
        ..Default::default()
    };
    let rows = s.list_keys(&alice, page(None, 100)).await.unwrap();
    assert_eq!(
        ids(&rows),
        vec![acme[0].id.clone(), acme[2].id.clone(), globex.id.clone()]
    );
    let both = KeyFilter {
        owner: Some("alice".into()),
        ..acme_filter.clone()
    };
    assert_eq!(s.list_keys(&both, page(None, 100)).await.unwrap().len(), 2);

    // Pages of two follow the cursor without gaps or repeats.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let rows = s.list_keys(&with_revoked, page(after, 2)).await.unwrap();
        assert!(rows.len() <= 2);
        if rows.is_empty() {
            break;
        }
        after = rows.last().map(|(seq, _)| *seq);
        seen.extend(ids(&rows));
    }
    assert_eq!(
        seen,
        ids(&s.list_keys(&with_revoked, page(None, 100)).await.unwrap())
    );
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 6);
}
