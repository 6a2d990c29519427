//! The invalidation feed: every mutating store method that can make a cached
//! answer wrong appends its entry in its own transaction (and nothing when
//! it writes nothing); the reads, prune and membership calls. Both backends;
//! the listener cases are in `feed_listen.rs`.

use crate::common::{self, Ctx, exec};
use crate::fixtures::{
    self, NOW, audit, fake_hash, hmac_secret, insert, secret_for, signing_key, user, user_audit,
};
use keygate_core::feed::{Change, FeedEntry, FeedStore, NodeBeat};
use keygate_core::httpsig::replay::{NonceStore, NonceUse};
use keygate_core::model::KeyRecord;
use keygate_core::sessions::model::{BlockedJti, FamilyId, RefreshFamily, RefreshTokenRecord};
use keygate_core::store::{
    AuditStore, HmacSecretStore, KeyCap, KeyStore, SessionCap, SessionStore, SigningKeyStore,
    Store, UpdateOutcome, UserStore,
};
use keygate_core::users::{UserId, UserRecord};
use keygate_core::{Error, KeyId};
use keygate_store::SqlStore;

on_both_backends!(
    key_writes_append_their_entries,
    refused_key_writes_append_nothing,
    hmac_user_jti_and_signing_key_writes_append_their_entries,
    hot_path_and_bookkeeping_writes_append_nothing,
    entries_read_back_in_order_and_prune_keeps_the_newest,
    heartbeats_upsert_and_nodes_can_be_removed,
    concurrent_writers_get_gapless_seqs,
);

/// The entries after `after`, checking they run `after+1..=head` gapless.
async fn since(s: &SqlStore, after: i64) -> Vec<FeedEntry> {
    let head = s.feed_head().await.unwrap();
    let found = s.feed_entries(after, 10_000).await.unwrap();
    let seqs: Vec<i64> = found.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (after + 1..=head).collect::<Vec<_>>());
    found
}

fn changes(entries: Vec<FeedEntry>) -> Vec<Change> {
    entries.into_iter().map(|e| e.change).collect()
}

fn key_changed(k: &KeyRecord, hashes: Vec<[u8; 32]>) -> Change {
    Change::KeyChanged {
        key_id: k.id.clone(),
        hashes,
    }
}

async fn key_writes_append_their_entries(ctx: Ctx) {
    let s = &ctx.store;
    assert_eq!(s.feed_head().await.unwrap(), 0);
    assert_eq!(s.feed_oldest().await.unwrap(), None);
    let (k, first) = insert(s, Some("acme"), "alice", NOW).await;
    let created = Change::KeyCreated {
        hashes: vec![first.hash],
    };
    assert_eq!(changes(since(s, 0).await), vec![created]);

    let mut next = k.clone();
    next.name = "renamed".into();
    next.version += 1;
    let outcome = s
        .update_key(&next, false, &audit("key.updated", &k, NOW))
        .await
        .unwrap();
    assert_eq!(outcome, UpdateOutcome::Updated(vec![first.hash]));
    assert_eq!(
        changes(since(s, 1).await),
        vec![key_changed(&k, vec![first.hash])]
    );

    let second = secret_for(&k.id, NOW + 1);
    s.rotate_secret(
        &k.id,
        &second,
        "kg_test_Zz",
        Some(NOW + 60),
        &audit("key.rotated", &k, NOW + 1),
    )
    .await
    .unwrap();
    let rotated = vec![
        key_changed(&k, vec![first.hash]),
        Change::KeyCreated {
            hashes: vec![second.hash],
        },
    ];
    assert_eq!(changes(since(s, 2).await), rotated);

    let mut both = vec![first.hash, second.hash];
    let (_, hashes) = s
        .revoke_key(&k.id, NOW + 2, &audit("key.revoked", &k, NOW + 2))
        .await
        .unwrap();
    assert_eq!(hashes.len(), 2);
    let revoked = changes(since(s, 4).await);
    let [Change::KeyChanged { key_id, hashes }] = revoked.as_slice() else {
        panic!("{revoked:?}");
    };
    assert_eq!(key_id, &k.id);
    let mut hashes = hashes.clone();
    hashes.sort_unstable();
    both.sort_unstable();
    assert_eq!(hashes, both);

    // Bulk inserts append in chunks that fit a NOTIFY payload.
    let bulk: Vec<_> = (0..70)
        .map(|i| {
            let key = fixtures::key(None, &format!("bulk{i}"), NOW);
            let secret = secret_for(&key.id, NOW);
            (key, secret)
        })
        .collect();
    s.bulk_insert_keys(&bulk).await.unwrap();
    let chunks = since(s, 5).await;
    let sizes: Vec<usize> = chunks
        .iter()
        .map(|e| match &e.change {
            Change::KeyCreated { hashes } => hashes.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sizes, vec![64, 6]);
    assert!(chunks.iter().all(|e| e.payload().contains("key.created")));
}

async fn refused_key_writes_append_nothing(ctx: Ctx) {
    let s = &ctx.store;
    let (k, _) = insert(s, Some("capped"), "alice", NOW).await;
    let head = s.feed_head().await.unwrap();

    let over = fixtures::key(Some("capped"), "bob", NOW);
    let cap = KeyCap {
        max_live: 1,
        now: NOW,
    };
    let secret = secret_for(&over.id, NOW);
    let err = s
        .insert_key(&over, &secret, &audit("key.created", &over, NOW), Some(cap))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::QuotaExceeded(_)), "{err:?}");

    // A duplicate id fails inside the transaction, before the append.
    let mut dup = fixtures::key(None, "carol", NOW);
    dup.id = k.id.clone();
    let secret = secret_for(&dup.id, NOW);
    assert!(
        s.insert_key(&dup, &secret, &audit("key.created", &dup, NOW), None)
            .await
            .is_err()
    );

    let mut stale = k.clone();
    stale.version += 5;
    let outcome = s
        .update_key(&stale, false, &audit("key.updated", &k, NOW))
        .await
        .unwrap();
    assert_eq!(outcome, UpdateOutcome::Stale);

    let ghost = KeyId::generate().unwrap();
    let err = s
        .revoke_key(&ghost, NOW, &audit("key.revoked", &k, NOW))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    let secret = secret_for(&ghost, NOW);
    let err = s
        .rotate_secret(&ghost, &secret, "p", None, &audit("key.rotated", &k, NOW))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert_eq!(s.feed_head().await.unwrap(), head);

    // A revoked key is neither rotated nor given an HMAC secret.
    s.revoke_key(&k.id, NOW, &audit("key.revoked", &k, NOW))
        .await
        .unwrap();
    let head = s.feed_head().await.unwrap();
    let secret = secret_for(&k.id, NOW);
    let err = s
        .rotate_secret(&k.id, &secret, "p", None, &audit("key.rotated", &k, NOW))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Revoked), "{err:?}");
    let hmac = hmac_secret(&k.id, NOW);
    let err = s
        .put_hmac_secret(&hmac, &audit("key.signing_secret_created", &k, NOW))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Revoked), "{err:?}");
    assert_eq!(s.feed_head().await.unwrap(), head);
}

async fn hmac_user_jti_and_signing_key_writes_append_their_entries(ctx: Ctx) {
    let s = &ctx.store;
    let (k, _) = insert(s, None, "alice", NOW).await;
    let mut after = s.feed_head().await.unwrap();
    let hmac = hmac_secret(&k.id, NOW);
    s.put_hmac_secret(&hmac, &audit("key.signing_secret_created", &k, NOW))
        .await
        .unwrap();
    let mut expected = vec![Change::HmacChanged {
        key_id: k.id.clone(),
    }];

    let hash = fake_hash("x");
    let mut u = user(NOW);
    s.insert_user(&u, &hash, &user_audit("user.updated", &u, NOW))
        .await
        .unwrap();
    let taken = UserRecord {
        id: UserId::generate().unwrap(),
        ..u.clone()
    };
    assert!(matches!(
        s.insert_user(&taken, &hash, &user_audit("user.updated", &taken, NOW))
            .await,
        Err(Error::AlreadyExists(_))
    ));
    u.sessions_cutoff_ms = NOW * 1000;
    u.version += 1;
    assert!(
        s.update_user(&u, None, &user_audit("user.updated", &u, NOW))
            .await
            .unwrap()
    );
    assert!(
        !s.update_user(&u, None, &user_audit("user.updated", &u, NOW))
            .await
            .unwrap(),
        "stale"
    );
    let cut = Change::UserCutoff {
        user_id: u.id.clone(),
    };
    expected.extend([cut.clone(), cut]);

    let jti = BlockedJti {
        seq: 0,
        jti: "tok|with|bars".into(),
        expires_at: NOW + 900,
        added_at_ms: NOW * 1000,
    };
    assert!(
        s.block_jti(&jti, &user_audit("user.updated", &u, NOW))
            .await
            .unwrap()
    );
    assert!(
        !s.block_jti(&jti, &user_audit("user.updated", &u, NOW))
            .await
            .unwrap(),
        "repeat"
    );
    expected.push(Change::JtiBlocked {
        jti: jti.jti.clone(),
        exp: NOW + 900,
    });

    assert!(
        s.insert_signing_key(
            &signing_key("k1", 1, NOW),
            &user_audit("user.updated", &u, NOW)
        )
        .await
        .unwrap()
    );
    assert!(
        !s.insert_signing_key(
            &signing_key("k1b", 1, NOW),
            &user_audit("user.updated", &u, NOW)
        )
        .await
        .unwrap(),
        "generation taken"
    );
    s.delete_signing_keys(&["nope".into()]).await.unwrap();
    s.delete_signing_keys(&["k1".into()]).await.unwrap();
    expected.extend([Change::SigningKeysChanged, Change::SigningKeysChanged]);

    let got = since(s, after).await;
    after += i64::try_from(expected.len()).unwrap();
    assert_eq!(changes(got.clone()), expected);
    assert_eq!(s.feed_head().await.unwrap(), after);
    // The jti holds '|': its payload carries only the seq.
    let jti_entry = got
        .iter()
        .find(|e| e.change.kind() == "jti.blocked")
        .unwrap();
    assert_eq!(jti_entry.payload(), jti_entry.seq.to_string());
}

async fn hot_path_and_bookkeeping_writes_append_nothing(ctx: Ctx) {
    let s = &ctx.store;
    let (mut k, _) = insert(s, None, "alice", NOW).await;
    k.remaining = Some(5);
    k.version += 1;
    s.update_key(&k, true, &audit("key.updated", &k, NOW))
        .await
        .unwrap();
    let head = s.feed_head().await.unwrap();

    assert_eq!(s.take_credit(&k.id).await.unwrap(), Some(4));
    s.touch_last_used(&[(k.id.clone(), NOW + 5)]).await.unwrap();
    s.append_audit(&[audit("key.verified", &k, NOW)])
        .await
        .unwrap();
    s.setting_or_insert("feed-test", "v").await.unwrap();
    let nonce = NonceUse {
        key_id: k.id.as_str(),
        nonce: "n-1",
        expires_at_ms: NOW * 1000 + 60_000,
        now_ms: NOW * 1000,
        created_ms: NOW * 1000,
        per_key_limit: 10,
    };
    s.record(&nonce).await.unwrap();

    let family = RefreshFamily {
        id: FamilyId::generate().unwrap(),
        user_id: "usr_AAAAAAAAAAAAAAAA".into(),
        tenant: None,
        created_at_ms: NOW * 1000,
        absolute_expires_at_ms: NOW * 1000 + 86_400_000,
        last_used_at_ms: NOW * 1000,
        revoked_at_ms: None,
        revoked_reason: None,
    };
    let token = RefreshTokenRecord {
        hash: fixtures::random_hash(),
        pepper_version: 1,
        family_id: family.id.clone(),
        generation: 0,
        issued_at_ms: NOW * 1000,
        used_at_ms: None,
    };
    let cap = SessionCap {
        max_live: 5,
        now_ms: NOW * 1000,
        idle_since_ms: 0,
    };
    let entry = audit("session.started", &k, NOW);
    s.insert_family(&family, &token, cap, &|_| Ok(entry.clone()))
        .await
        .unwrap();
    let entry = audit("session.revoked", &k, NOW);
    s.revoke_family(&family.id, NOW * 1000, "logout", &entry)
        .await
        .unwrap();
    assert_eq!(s.feed_head().await.unwrap(), head);
    assert_eq!(s.feed_entries(head, 10).await.unwrap(), vec![]);
}

async fn entries_read_back_in_order_and_prune_keeps_the_newest(ctx: Ctx) {
    let s = &ctx.store;
    let batch: Vec<Change> = (0..5)
        .map(|i| Change::JtiBlocked {
            jti: format!("j{i}"),
            exp: NOW + i,
        })
        .collect();
    let written = s.feed_append(batch.clone()).await.unwrap();
    assert_eq!(
        written.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(s.feed_entries(0, 100).await.unwrap(), written);
    assert_eq!(s.feed_entries(1, 2).await.unwrap(), written[1..3].to_vec());
    assert_eq!(s.feed_entries(5, 2).await.unwrap(), vec![]);
    assert_eq!(s.feed_oldest().await.unwrap(), Some(1));
    assert!(written.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));

    // Entries 1..=2 are made old; the prune leaves 3..=5.
    exec(
        &ctx.url,
        "UPDATE invalidations SET at_ms = 10 WHERE seq <= 2",
    )
    .await;
    assert_eq!(s.feed_prune(1_000).await.unwrap(), 2);
    assert_eq!(s.feed_oldest().await.unwrap(), Some(3));
    // Everything old: the newest row stays, so `oldest` stays defined.
    assert_eq!(s.feed_prune(i64::MAX).await.unwrap(), 2);
    assert_eq!(s.feed_oldest().await.unwrap(), Some(5));
    assert_eq!(s.feed_head().await.unwrap(), 5);
    assert_eq!(s.feed_prune(i64::MAX).await.unwrap(), 0);
    // A row this version cannot read (a newer node's kind) is read as
    // Unreadable, which a node answers by dropping every cache: it must
    // not stop the node from ever confirming again.
    exec(
        &ctx.url,
        "UPDATE invalidations SET kind = 'key.renamed' WHERE seq = 5",
    )
    .await;
    let read = s.feed_entries(0, 10).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(
        read[0].change,
        Change::Unreadable {
            kind: "key.renamed".into()
        }
    );
}

async fn heartbeats_upsert_and_nodes_can_be_removed(ctx: Ctx) {
    let s = &ctx.store;
    let beat = |id: &str, now: i64, applied: i64| NodeBeat {
        node_id: id.to_owned(),
        started_ms: 1_000,
        now_ms: now,
        applied_seq: applied,
        info: serde_json::json!({ "limiter": "redis", "confirmed_age_ms": now % 7 }),
    };
    s.heartbeat(&beat("b", 2_000, 0)).await.unwrap();
    s.heartbeat(&beat("a", 2_000, 3)).await.unwrap();
    s.heartbeat(&beat("a", 3_000, 4)).await.unwrap();
    let nodes = s.nodes().await.unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0].node_id, "a");
    assert_eq!(
        (
            nodes[0].started_ms,
            nodes[0].last_seen_ms,
            nodes[0].applied_seq
        ),
        (1_000, 3_000, 4)
    );
    assert_eq!(nodes[0].info, beat("a", 3_000, 4).info);
    assert!(s.remove_node("a").await.unwrap());
    assert!(!s.remove_node("a").await.unwrap());
    assert_eq!(s.nodes().await.unwrap().len(), 1);
    // SQLite: a no-op; PostgreSQL: a NOTIFY nobody hears here.
    s.notify_ack("b", 4).await.unwrap();
}

/// Writers racing on both backends still produce seqs 1..=n with no hole,
/// each entry matching a write that committed.
async fn concurrent_writers_get_gapless_seqs(ctx: Ctx) {
    let s = ctx.store.clone();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..10 {
                let (k, _) = insert(&s, None, &format!("w{w}-{i}"), NOW).await;
                s.revoke_key(&k.id, NOW, &audit("key.revoked", &k, NOW))
                    .await
                    .unwrap();
                ids.push(k.id);
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    let entries = since(&s, 0).await;
    assert_eq!(entries.len(), 80);
    let revoked: Vec<&KeyId> = entries
        .iter()
        .filter_map(|e| match &e.change {
            Change::KeyChanged { key_id, .. } => Some(key_id),
            _ => None,
        })
        .collect();
    assert_eq!(revoked.len(), 40);
    assert!(ids.iter().all(|id| revoked.contains(&id)));
}

/// SQLite runs no cluster loop, so its appends prune what is past 24 h.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_appends_prune_entries_past_a_day() {
    common::run_sqlite(|ctx: Ctx| async move {
        let s = &ctx.store;
        let first = Change::SigningKeysChanged;
        s.feed_append(vec![first.clone(), first.clone(), first.clone()])
            .await
            .unwrap();
        exec(
            &ctx.url,
            "UPDATE invalidations SET at_ms = 5 WHERE seq <= 2",
        )
        .await;
        let written = s.feed_append(vec![first]).await.unwrap();
        assert_eq!(written[0].seq, 4);
        let left: Vec<i64> = s
            .feed_entries(0, 10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(left, vec![3, 4]);
    })
    .await;
}
