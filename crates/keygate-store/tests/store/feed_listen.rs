//! The feed's NOTIFYs on PostgreSQL, each case in its own database: what a
//! `FeedListener` hears, how it reports a killed session, and the ordering
//! claim: with writers racing (and some rolling back after taking a seq),
//! the table holds seqs 1..=head with no hole and the listener hears them
//! in exactly that order. (Checked the other way too: with the seq taken
//! from a plain PostgreSQL sequence instead of the `cluster_head` row, the
//! ordering case fails on every run, about one notification in six arriving
//! below a seq already heard.) On SQLite there is no listener.

use std::time::Duration;

use crate::common::{Ctx, exec, run_postgres, run_sqlite};
use crate::fixtures::{NOW, audit, hmac_secret, insert};
use keygate_core::feed::{Change, FeedEntry, FeedStore};
use keygate_core::store::{HmacSecretStore, KeyStore};
use keygate_store::{FeedListener, LISTENER_APPLICATION_NAME, Notice};
use sqlx::{AnyConnection, Connection};

/// The next notice, or a failure after 10 s: no unbounded waits.
async fn next(l: &mut FeedListener) -> Option<Notice> {
    tokio::time::timeout(Duration::from_secs(10), l.next())
        .await
        .expect("no notification within 10 s")
        .unwrap()
}

async fn next_invalidation(l: &mut FeedListener) -> (i64, Option<FeedEntry>) {
    match next(l).await {
        Some(Notice::Invalidation { seq, entry }) => (seq, entry),
        other => panic!("expected an invalidation, got {other:?}"),
    }
}

/// The application_name of backend `pid`, as `pg_stat_activity` shows it.
async fn application_name(url: &str, pid: i32) -> String {
    let mut conn = AnyConnection::connect(url).await.unwrap();
    let name: String =
        sqlx::query_scalar("SELECT application_name FROM pg_stat_activity WHERE pid = $1")
            .bind(pid)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_has_no_listener() {
    run_sqlite(|ctx: Ctx| async move {
        assert!(ctx.store.feed_listener().await.unwrap().is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_hears_entries_and_acks() {
    run_postgres(|ctx: Ctx| async move {
        let s = &ctx.store;
        let mut l = s.feed_listener().await.unwrap().unwrap();
        assert!(l.backend_pid().await.unwrap() > 0);
        let (k, secret) = insert(s, None, "alice", NOW).await;
        s.revoke_key(&k.id, NOW, &audit("key.revoked", &k, NOW))
            .await
            .unwrap();
        let (seq, entry) = next_invalidation(&mut l).await;
        assert_eq!(seq, 1);
        let entry = entry.unwrap();
        assert_eq!(
            entry.change,
            Change::KeyCreated {
                hashes: vec![secret.hash]
            }
        );
        assert_eq!(s.feed_entries(0, 1).await.unwrap(), vec![entry]);
        let (seq, entry) = next_invalidation(&mut l).await;
        assert_eq!(seq, 2);
        assert_eq!(
            entry.unwrap().change,
            Change::KeyChanged {
                key_id: k.id.clone(),
                hashes: vec![secret.hash]
            }
        );

        // Too large for a payload: the seq alone; the row has it all.
        let long = Change::JtiBlocked {
            jti: "j".repeat(8_000),
            exp: NOW,
        };
        s.feed_append(vec![long.clone()]).await.unwrap();
        assert_eq!(next_invalidation(&mut l).await, (3, None));
        assert_eq!(s.feed_entries(2, 1).await.unwrap()[0].change, long);

        s.notify_ack("node-a", 3).await.unwrap();
        assert_eq!(
            next(&mut l).await,
            Some(Notice::Ack {
                node_id: "node-a".into(),
                seq: 3
            })
        );
    })
    .await;
}

/// `pg_terminate_backend` on the listening session: `next` reports the
/// loss (`Ok(None)`), and the listener, reconnected, hears later entries.
/// Its session carries the listener's application_name, before and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_session_is_reported_and_listening_resumes() {
    run_postgres(|ctx: Ctx| async move {
        let s = &ctx.store;
        let mut l = s.feed_listener().await.unwrap().unwrap();
        let pid = l.backend_pid().await.unwrap();
        let named = application_name(&ctx.url, pid).await;
        assert_eq!(named, LISTENER_APPLICATION_NAME);
        exec(&ctx.url, &format!("SELECT pg_terminate_backend({pid})")).await;
        let lost = tokio::time::timeout(Duration::from_secs(10), l.next())
            .await
            .expect("the loss was not reported within 10 s");
        assert!(matches!(lost, Ok(None)), "{lost:?}");
        let again = l.backend_pid().await.unwrap();
        assert_ne!(again, pid);
        let named = application_name(&ctx.url, again).await;
        assert_eq!(named, LISTENER_APPLICATION_NAME);
        s.feed_append(vec![Change::SigningKeysChanged])
            .await
            .unwrap();
        let (seq, entry) = next_invalidation(&mut l).await;
        assert_eq!(seq, 1);
        assert_eq!(entry.unwrap().change, Change::SigningKeysChanged);
    })
    .await;
}

/// `next` is cancel-safe: a caller that polls it in a `select!` against a
/// timer (the node's watcher does, every 250 ms) still hears the loss of
/// the session, even when its timer fires while the listener reconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loss_is_reported_to_a_caller_that_keeps_cancelling_next() {
    run_postgres(|ctx: Ctx| async move {
        let s = &ctx.store;
        let mut l = s.feed_listener().await.unwrap().unwrap();
        let pid = l.backend_pid().await.unwrap();
        exec(&ctx.url, &format!("SELECT pg_terminate_backend({pid})")).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let first = loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the loss was never reported"
            );
            if let Ok(got) = tokio::time::timeout(Duration::from_millis(1), l.next()).await {
                break got;
            }
        };
        assert!(matches!(first, Ok(None)), "{first:?}");
        s.feed_append(vec![Change::SigningKeysChanged])
            .await
            .unwrap();
        assert_eq!(next_invalidation(&mut l).await.0, 1);
    })
    .await;
}

/// A writer that takes a seq, notifies, and rolls back: its seq goes to
/// the next writer and its NOTIFY is never sent.
async fn abort_after_append(url: &str, rounds: usize) {
    let mut conn = AnyConnection::connect(url).await.unwrap();
    for _ in 0..rounds {
        let mut tx = conn.begin().await.unwrap();
        sqlx::raw_sql(
            "UPDATE cluster_head SET seq = seq + 1 WHERE id = 1; \
             INSERT INTO invalidations (seq, at_ms, kind, subject, extra) \
             SELECT seq, 0, 'signing_keys.changed', '', '' FROM cluster_head WHERE id = 1; \
             SELECT pg_notify('keygate_inval', '0')",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        tokio::task::yield_now().await;
        tx.rollback().await.unwrap();
    }
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_are_heard_gapless_in_seq_order() {
    run_postgres(|ctx: Ctx| async move {
        const WRITERS: usize = 6;
        const ROUNDS: usize = 15;
        let s = ctx.store.clone();
        let mut l = s.feed_listener().await.unwrap().unwrap();
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..ROUNDS {
                    let (k, _) = insert(&s, None, &format!("w{w}-{i}"), NOW).await;
                    let hmac = hmac_secret(&k.id, NOW);
                    s.put_hmac_secret(&hmac, &audit("key.signing_secret_created", &k, NOW))
                        .await
                        .unwrap();
                    s.revoke_key(&k.id, NOW, &audit("key.revoked", &k, NOW))
                        .await
                        .unwrap();
                }
            }));
        }
        let url = ctx.url.clone();
        tasks.push(tokio::spawn(async move {
            abort_after_append(&url, 40).await;
        }));
        // Read while the writers run, so the order is the wire's.
        let expected = i64::try_from(WRITERS * ROUNDS * 3).unwrap();
        let mut heard = Vec::new();
        while heard.len() < usize::try_from(expected).unwrap() {
            let (seq, entry) = next_invalidation(&mut l).await;
            heard.push((seq, entry.expect("payloads here are small")));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(s.feed_head().await.unwrap(), expected);
        let seqs: Vec<i64> = heard.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(
            seqs,
            (1..=expected).collect::<Vec<_>>(),
            "heard in seq order"
        );
        let rows = s.feed_entries(0, 10_000).await.unwrap();
        let heard: Vec<FeedEntry> = heard.into_iter().map(|(_, e)| e).collect();
        assert_eq!(rows, heard, "the table holds exactly what was heard");
        assert!(rows.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        // Nothing else arrives: the rolled-back NOTIFYs were never sent.
        s.notify_ack("end", expected).await.unwrap();
        assert!(matches!(next(&mut l).await, Some(Notice::Ack { .. })));
    })
    .await;
}
