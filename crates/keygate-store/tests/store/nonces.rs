//! Signed-request nonces in the database: recorded once, refused while
//! live, taken over once expired, counted against the key's quota, pruned.
//! Both backends; and on PostgreSQL, two stores (two nodes) racing on one
//! nonce let exactly one through (SQLite is one node: its server holds
//! `<db>.lock`, and its live nonces are in that node's memory).

use crate::common::{Ctx, exec, run_postgres, run_sqlite};
use keygate_core::httpsig::replay::QUOTA_BUCKET_MS;
use keygate_core::httpsig::{NonceStore, NonceUse, NonceVerdict};
use keygate_store::{ConnectOptions, SqlStore, connect};

const NOW: i64 = 1_700_000_000_000;
const LIFE: i64 = 301_000;

on_both_backends!(
    a_nonce_is_fresh_once_and_taken_over_after_expiry,
    a_key_at_its_quota_is_refused_and_others_are_not,
    many_concurrent_nonces_are_all_fresh_and_committed,
    one_nonce_recorded_concurrently_is_fresh_once,
    a_closed_store_answers_every_record_with_an_error,
);

/// Records `nonces` of `key_id` all at once, each from a task of its own.
async fn concurrently(store: &SqlStore, key_id: &str, nonces: Vec<String>) -> Vec<NonceVerdict> {
    let mut tasks = tokio::task::JoinSet::new();
    for n in nonces {
        let (store, key_id) = (store.clone(), key_id.to_owned());
        tasks.spawn(async move { store.record(&nonce(&key_id, &n, NOW, 100_000)).await });
    }
    let answers = tasks.join_all().await;
    answers.into_iter().map(Result::unwrap).collect()
}

fn nonce<'a>(key_id: &'a str, nonce: &'a str, now_ms: i64, limit: u32) -> NonceUse<'a> {
    NonceUse {
        key_id,
        nonce,
        expires_at_ms: now_ms + LIFE,
        created_ms: now_ms,
        now_ms,
        per_key_limit: limit,
    }
}

async fn a_nonce_is_fresh_once_and_taken_over_after_expiry(ctx: Ctx) {
    let s = &ctx.store;
    let fresh = NonceVerdict::Fresh;
    assert_eq!(
        s.record(&nonce("key_a", "n1", NOW, 10)).await.unwrap(),
        fresh
    );
    let again = nonce("key_a", "n1", NOW + LIFE - 1, 10);
    assert_eq!(s.record(&again).await.unwrap(), NonceVerdict::Replayed);
    // The same nonce under another key is another nonce.
    assert_eq!(
        s.record(&nonce("key_b", "n1", NOW, 10)).await.unwrap(),
        fresh
    );
    // Expired but not yet pruned: the row is taken over.
    let later = nonce("key_a", "n1", NOW + LIFE, 10);
    assert_eq!(s.record(&later).await.unwrap(), fresh);
    assert_eq!(
        s.record(&nonce("key_a", "n1", NOW + LIFE + 1, 10))
            .await
            .unwrap(),
        NonceVerdict::Replayed
    );
    // Pruning forgets what expired, and only that: key_b's nonce (and on
    // SQLite's log, key_a's first record), not key_a's live one.
    assert!(s.prune(NOW + LIFE).await.unwrap() >= 1);
    let still = nonce("key_a", "n1", NOW + LIFE + 2, 10);
    assert_eq!(s.record(&still).await.unwrap(), NonceVerdict::Replayed);
    assert_eq!(s.prune(NOW + 2 * LIFE).await.unwrap(), 1);
    assert_eq!(s.prune(NOW + 2 * LIFE).await.unwrap(), 0);
}

async fn a_key_at_its_quota_is_refused_and_others_are_not(ctx: Ctx) {
    let s = &ctx.store;
    for i in 0..3 {
        let n = format!("n{i}");
        let v = s.record(&nonce("greedy", &n, NOW, 3)).await.unwrap();
        assert_eq!(v, NonceVerdict::Fresh);
    }
    let wait = match s.record(&nonce("greedy", "n3", NOW, 3)).await.unwrap() {
        NonceVerdict::OverQuota { retry_after_ms } => retry_after_ms,
        other => panic!("{other:?}"),
    };
    assert!((LIFE..=LIFE + QUOTA_BUCKET_MS).contains(&wait), "{wait}");
    // The refused nonce was not recorded; a replay is still a replay.
    assert_eq!(
        s.record(&nonce("greedy", "n0", NOW, 3)).await.unwrap(),
        NonceVerdict::Replayed
    );
    assert_eq!(
        s.record(&nonce("other", "n3", NOW, 3)).await.unwrap(),
        NonceVerdict::Fresh
    );
    // Once the key's buckets have passed it has room again, pruned or not.
    let later = nonce("greedy", "n3", NOW + wait, 3);
    assert_eq!(s.record(&later).await.unwrap(), NonceVerdict::Fresh);
    s.prune(NOW + wait).await.unwrap();
    let v = s
        .record(&nonce("greedy", "n4", NOW + wait, 3))
        .await
        .unwrap();
    assert_eq!(v, NonceVerdict::Fresh);
}

#[tokio::test]
async fn two_nodes_racing_on_one_nonce_let_one_through() {
    run_postgres(two_nodes_racing).await;
}

async fn two_nodes_racing(ctx: Ctx) {
    let other = connect(&ctx.url, ConnectOptions::default()).await.unwrap();
    for round in 0..20 {
        let n = format!("race{round}");
        let a = nonce("key_a", &n, NOW, 1000);
        let b = nonce("key_a", &n, NOW, 1000);
        let (x, y) = tokio::join!(ctx.store.record(&a), other.record(&b));
        let mut got = [x.unwrap(), y.unwrap()];
        got.sort_by_key(|v| *v == NonceVerdict::Fresh);
        assert_eq!(got, [NonceVerdict::Replayed, NonceVerdict::Fresh]);
    }
    other.close().await;
}

async fn many_concurrent_nonces_are_all_fresh_and_committed(ctx: Ctx) {
    let nonces: Vec<String> = (0..600).map(|i| format!("many{i}")).collect();
    let got = concurrently(&ctx.store, "key_a", nonces.clone()).await;
    assert!(got.iter().all(|v| *v == NonceVerdict::Fresh), "{got:?}");
    // Committed: another node, on a pool of its own, sees every one.
    let other = connect(&ctx.url, ConnectOptions::default()).await.unwrap();
    let again = concurrently(&other, "key_a", nonces).await;
    assert!(
        again.iter().all(|v| *v == NonceVerdict::Replayed),
        "{again:?}"
    );
    other.close().await;
}

async fn one_nonce_recorded_concurrently_is_fresh_once(ctx: Ctx) {
    // 8 at once fit one batch; 600 need several.
    for (round, copies) in [8, 600, 3].into_iter().enumerate() {
        let same = vec![format!("same{round}"); copies];
        let got = concurrently(&ctx.store, "key_a", same).await;
        let fresh = got.iter().filter(|v| **v == NonceVerdict::Fresh).count();
        let replayed = got.iter().filter(|v| **v == NonceVerdict::Replayed).count();
        assert_eq!((fresh, replayed), (1, copies - 1), "round {round}");
    }
}

async fn a_closed_store_answers_every_record_with_an_error(ctx: Ctx) {
    ctx.store.close().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let store = ctx.store.clone();
        tasks.spawn(async move {
            let n = format!("closed{i}");
            store.record(&nonce("key_a", &n, NOW, 1000)).await
        });
    }
    for answer in tasks.join_all().await {
        assert!(answer.is_err(), "{answer:?}");
    }
}

#[tokio::test]
async fn sqlite_nonces_of_the_keyed_table_survive_its_move_to_the_log() {
    run_sqlite(keyed_table_moves_to_the_log).await;
}

/// A database as version 14 left it, nonces in the keyed table: after the
/// upgrade the live one is a replay and the expired one is not.
async fn keyed_table_moves_to_the_log(ctx: Ctx) {
    ctx.store.close().await;
    exec(&ctx.url, "DROP TABLE hmac_nonces").await;
    exec(
        &ctx.url,
        "CREATE TABLE hmac_nonces (key_id TEXT NOT NULL, nonce TEXT NOT NULL, \
         expires_at_ms INTEGER NOT NULL, PRIMARY KEY (key_id, nonce)) STRICT, WITHOUT ROWID",
    )
    .await;
    let rows = format!(
        "INSERT INTO hmac_nonces VALUES ('key_a', 'live', {}), ('key_a', 'dead', {})",
        NOW + LIFE,
        NOW - 1
    );
    exec(&ctx.url, &rows).await;
    exec(
        &ctx.url,
        "DELETE FROM keygate_migrations WHERE version = 15",
    )
    .await;
    let store = connect(&ctx.url, ConnectOptions::default()).await.unwrap();
    let live = store.record(&nonce("key_a", "live", NOW, 10)).await;
    assert_eq!(live.unwrap(), NonceVerdict::Replayed);
    let dead = store.record(&nonce("key_a", "dead", NOW, 10)).await;
    assert_eq!(dead.unwrap(), NonceVerdict::Fresh);
    store.close().await;
}
