//! The audit log, migrations, and rows that no longer parse.
//! Each case runs on SQLite and, when configured, PostgreSQL.

use crate::common::{Ctx, exec};
use crate::fixtures::{self, NOW, audit, insert};
use keygate_core::Error;
use keygate_core::model::{AuditFilter, AuditRow, AuditTally, KeyFilter, PageRequest, Tenant};
use keygate_core::store::{AuditStore, KeyStore, Store};
use keygate_store::{ConnectOptions, connect};

on_both_backends!(
    audit_is_newest_first_and_filtered,
    audit_tallies_add_up_and_old_rows_are_pruned,
    migrations_are_idempotent_and_refuse_newer_schemas,
    unreadable_rows_are_storage_errors,
    concurrent_first_starts_migrate_once,
    settings_keep_the_first_value,
);

async fn audit_is_newest_first_and_filtered(ctx: Ctx) {
    let s = &ctx.store;
    let k1 = fixtures::key(Some("acme"), "alice", NOW);
    let k2 = fixtures::key(Some("globex"), "bob", NOW);
    let mut batch = Vec::new();
    for i in 0..10_i64 {
        let (k, action) = if i % 2 == 0 {
            (&k1, "key.updated")
        } else {
            (&k2, "key.rotated")
        };
        let mut e = audit(action, k, NOW + i);
        if i == 9 {
            e.actor = "system".into();
            e.target = None;
            e.tenant = None;
            e.request_id = None;
        }
        batch.push(e);
    }
    s.append_audit(&batch).await.unwrap();
    s.append_audit(&[]).await.unwrap();
    let page = |after, limit| PageRequest { after, limit };

    let all = s
        .list_audit(&AuditFilter::default(), page(None, 100))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entry)
        .collect::<Vec<_>>();
    assert_eq!(all.len(), 10);
    assert!(all.windows(2).all(|w| w[0].seq > w[1].seq), "newest first");
    let mut expected: Vec<_> = batch.iter().rev().cloned().collect();
    for (e, got) in expected.iter_mut().zip(&all) {
        e.seq = got.seq;
    }
    assert_eq!(all, expected);

    let first = s
        .list_audit(&AuditFilter::default(), page(None, 4))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entry)
        .collect::<Vec<_>>();
    let second = s
        .list_audit(
            &AuditFilter::default(),
            page(first.last().map(|e| e.seq), 4),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entry)
        .collect::<Vec<_>>();
    assert_eq!(first, all[..4]);
    assert_eq!(second, all[4..8]);

    let count = |f: AuditFilter| async move {
        s.list_audit(&f, page(None, 100))
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.entry)
            .collect::<Vec<_>>()
            .len()
    };
    let acme = Some(Tenant::parse("acme").unwrap());
    assert_eq!(
        count(AuditFilter {
            tenant: acme.clone(),
            ..Default::default()
        })
        .await,
        5
    );
    assert_eq!(
        count(AuditFilter {
            action: Some("key.rotated".into()),
            ..Default::default()
        })
        .await,
        5
    );
    assert_eq!(
        count(AuditFilter {
            actor: Some("system".into()),
            ..Default::default()
        })
        .await,
        1
    );
    assert_eq!(
        count(AuditFilter {
            target: Some(k2.id.to_string()),
            ..Default::default()
        })
        .await,
        4
    );
    assert_eq!(
        count(AuditFilter {
            since: Some(NOW + 3),
            until: Some(NOW + 6),
            ..Default::default()
        })
        .await,
        4
    );
    assert_eq!(
        count(AuditFilter {
            tenant: acme,
            since: Some(NOW + 3),
            ..Default::default()
        })
        .await,
        3
    );
}

fn tally(key: &str, id: &str, at: i64, count: i64, last_at: i64) -> AuditTally {
    let k = fixtures::key(None, "nobody", NOW);
    let mut entry = audit("auth.failed", &k, at);
    entry.id = id.into();
    entry.target = None;
    AuditTally {
        key: key.into(),
        row: AuditRow {
            entry,
            count,
            last_at,
        },
    }
}

async fn audit_tallies_add_up_and_old_rows_are_pruned(ctx: Ctx) {
    let s = &ctx.store;
    let all = || async {
        s.list_audit(
            &AuditFilter::default(),
            PageRequest {
                after: None,
                limit: 100,
            },
        )
        .await
        .unwrap()
    };
    // Two nodes add to one tally, each with its own id; the first id stays,
    // counts sum, and the times widen either way.
    s.add_audit_tallies(&[tally("t1", "evt_a", NOW + 10, 5, NOW + 20)])
        .await
        .unwrap();
    s.add_audit_tallies(&[
        tally("t1", "evt_b", NOW + 5, 7, NOW + 15),
        tally("t2", "evt_c", NOW + 30, 1, NOW + 30),
    ])
    .await
    .unwrap();
    s.add_audit_tallies(&[tally("t1", "evt_d", NOW + 12, 1, NOW + 50)])
        .await
        .unwrap();
    s.add_audit_tallies(&[]).await.unwrap();
    let k = fixtures::key(None, "carol", NOW);
    s.append_audit(&[audit("key.created", &k, NOW + 40)])
        .await
        .unwrap();
    let rows = all().await;
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let t1 = rows.iter().find(|r| r.entry.id == "evt_a").unwrap();
    assert_eq!((t1.count, t1.entry.at, t1.last_at), (13, NOW + 5, NOW + 50));
    // An event counts once, last seen when it happened.
    let event = rows
        .iter()
        .find(|r| r.entry.action == "key.created")
        .unwrap();
    assert_eq!((event.count, event.last_at), (1, NOW + 40));

    // Pruning goes by `at`, in batches of at most `limit`.
    for i in 0..5 {
        s.append_audit(&[audit("key.updated", &k, NOW - 100 + i)])
            .await
            .unwrap();
    }
    assert_eq!(s.prune_audit(NOW, 3).await.unwrap(), 3);
    assert_eq!(s.prune_audit(NOW, 3).await.unwrap(), 2);
    assert_eq!(s.prune_audit(NOW, 3).await.unwrap(), 0);
    assert_eq!(all().await.len(), 3);
    assert_eq!(s.prune_audit(NOW + 31, 100).await.unwrap(), 2);
    let left = all().await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].entry.action, "key.created");
}

async fn migrations_are_idempotent_and_refuse_newer_schemas(ctx: Ctx) {
    let (k, _) = insert(&ctx.store, None, "alice", NOW).await;
    // Connecting again (as a restarted node would) applies nothing new.
    let again = connect(&ctx.url, ConnectOptions::default()).await.unwrap();
    assert_eq!(again.get_key(&k.id).await.unwrap(), Some(k));
    again.close().await;

    exec(
        &ctx.url,
        "INSERT INTO keygate_migrations (version, name, applied_at) VALUES (999, 'future', 0)",
    )
    .await;
    let err = connect(&ctx.url, ConnectOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, keygate_store::ConnectError::Migrate(Error::Storage(m)) if m.contains("newer")),
        "{err:?}"
    );
}

async fn unreadable_rows_are_storage_errors(ctx: Ctx) {
    let s = &ctx.store;
    let (k, secret) = insert(s, None, "alice", NOW).await;
    exec(
        &ctx.url,
        &format!(
            "UPDATE api_keys SET scopes = 'not json' WHERE id = '{}'",
            k.id
        ),
    )
    .await;
    let err = s.get_key(&k.id).await.unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
    assert!(matches!(
        s.find_by_hash(&secret.hash).await.unwrap_err(),
        Error::Storage(_)
    ));
    assert!(matches!(
        s.list_keys(
            &KeyFilter::default(),
            PageRequest {
                after: None,
                limit: 10
            }
        )
        .await
        .unwrap_err(),
        Error::Storage(_)
    ));

    let (k2, _) = insert(s, None, "bob", NOW).await;
    exec(
        &ctx.url,
        &format!("UPDATE api_keys SET env = 'prod' WHERE id = '{}'", k2.id),
    )
    .await;
    assert!(matches!(
        s.get_key(&k2.id).await.unwrap_err(),
        Error::Storage(_)
    ));
    exec(&ctx.url, "UPDATE audit_log SET detail = '{broken'").await;
    let err = s
        .list_audit(
            &AuditFilter::default(),
            PageRequest {
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
    assert_eq!(s.count_keys().await.unwrap(), 2);
}

async fn concurrent_first_starts_migrate_once(ctx: Ctx) {
    ctx.store.close().await;
    for table in [
        "clients",
        "key_usage",
        "cluster_nodes",
        "console_sessions",
        "invalidations",
        "cluster_head",
        "hmac_nonce_counts",
        "hmac_nonces",
        "signing_keys",
        "users",
        "refresh_tokens",
        "refresh_families",
        "revoked_jtis",
        "hmac_secrets",
        "audit_log",
        "key_secrets",
        "api_keys",
        "keygate_settings",
        "keygate_migrations",
    ] {
        exec(&ctx.url, &format!("DROP TABLE {table}")).await;
    }
    // Nodes starting together on an empty database: one applies each
    // migration, the others wait and find it applied.
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = ctx.url.clone();
            tokio::spawn(async move { connect(&url, ConnectOptions::default()).await })
        })
        .collect();
    for start in starts {
        let store = start.await.unwrap().unwrap();
        assert_eq!(store.count_keys().await.unwrap(), 0);
        store.close().await;
    }
    let store = connect(&ctx.url, ConnectOptions::default()).await.unwrap();
    insert(&store, None, "alice", NOW).await;
    store.close().await;
}

async fn settings_keep_the_first_value(ctx: Ctx) {
    let s = &ctx.store;
    assert_eq!(
        s.setting_or_insert("pepper_fingerprint_v1", "aaa")
            .await
            .unwrap(),
        "aaa"
    );
    assert_eq!(
        s.setting_or_insert("pepper_fingerprint_v1", "bbb")
            .await
            .unwrap(),
        "aaa"
    );
    assert_eq!(
        s.setting_or_insert("pepper_fingerprint_v2", "ccc")
            .await
            .unwrap(),
        "ccc"
    );
}
