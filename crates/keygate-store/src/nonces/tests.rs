#![allow(clippy::unwrap_used)]

use super::batch::{BATCH, Job, serve};
use super::*;
use crate::{ConnectOptions, connect};

fn use_of<'a>(key_id: &'a str, nonce: &'a str, limit: u32) -> NonceUse<'a> {
    NonceUse {
        key_id,
        nonce,
        expires_at_ms: 2_000,
        created_ms: 1_000,
        now_ms: 1_000,
        per_key_limit: limit,
    }
}

async fn sqlite() -> (SqlStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (reopen(&dir).await, dir)
}

async fn reopen(dir: &tempfile::TempDir) -> SqlStore {
    let url = format!("sqlite:{}", dir.path().join("n.db").display());
    connect(&url, ConnectOptions::default()).await.unwrap()
}

async fn count(store: &SqlStore, sql: &'static str) -> i64 {
    let row = sqlx::query(sql).fetch_one(&store.pool).await.unwrap();
    col::<i64>(&row, "n").unwrap()
}

/// Runs `nonces` (of key `k`, quota `limit`) as ONE batch; their answers.
async fn one_batch(
    store: &SqlStore,
    nonces: &[&str],
    limit: u32,
) -> Vec<Result<NonceVerdict, Error>> {
    let (jobs, answers): (Vec<_>, Vec<_>) = nonces
        .iter()
        .map(|n| Job::new(&use_of("k", n, limit)))
        .unzip();
    serve(&store.pool, &store.nonces.log, jobs).await;
    let mut out = Vec::new();
    for a in answers {
        out.push(a.await.unwrap());
    }
    out
}

async fn assert_every_connection_durable(store: &SqlStore) {
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(store.pool.acquire().await.unwrap());
    }
    for conn in &mut held {
        let row = sqlx::query("PRAGMA synchronous")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!(col::<i64>(&row, "synchronous").unwrap(), 2, "FULL");
    }
}

#[tokio::test]
async fn nonce_writes_leave_every_connection_durable() {
    let (store, _dir) = sqlite().await;
    // Fresh, replayed (rolled back) and over quota (rolled back).
    let mut seen = Vec::new();
    for i in 0..8 {
        let nonce = format!("n{}", i % 6);
        seen.push(store.record(&use_of("key_a", &nonce, 5)).await.unwrap());
    }
    assert_eq!(seen[..5], [NonceVerdict::Fresh; 5]);
    assert!(matches!(seen[5], NonceVerdict::OverQuota { .. }));
    assert_eq!(seen[6..], [NonceVerdict::Replayed; 2]);
    one_batch(&store, &["b0", "b1", "b0"], 10).await;
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM hmac_nonces").await,
        7
    );
    assert_every_connection_durable(&store).await;
    store.close().await;
}

#[tokio::test]
async fn one_batch_replays_duplicates_and_counts_the_quota_in_order() {
    let (store, _dir) = sqlite().await;
    let got = one_batch(&store, &["n0", "n0", "n1", "n2", "n3", "n3", "n1"], 3).await;
    let got: Vec<_> = got.into_iter().map(Result::unwrap).collect();
    use NonceVerdict::{Fresh, Replayed};
    assert_eq!(got[..4], [Fresh, Replayed, Fresh, Fresh]);
    // n3 over quota was rolled back alone: again it is over quota, not a
    // replay, and n1 after it is still the replay it was.
    assert!(matches!(got[4], NonceVerdict::OverQuota { .. }), "{got:?}");
    assert!(matches!(got[5], NonceVerdict::OverQuota { .. }), "{got:?}");
    assert_eq!(got[6], Replayed);
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM hmac_nonces").await,
        3
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_records_of_one_key_never_pass_its_quota() {
    let (store, _dir) = sqlite().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..(2 * BATCH) {
        let store = store.clone();
        tasks.spawn(async move {
            let nonce = format!("q{i}");
            store.record(&use_of("k", &nonce, 40)).await.unwrap()
        });
    }
    let verdicts = tasks.join_all().await;
    let fresh = verdicts
        .iter()
        .filter(|v| **v == NonceVerdict::Fresh)
        .count();
    assert_eq!(fresh, 40, "exact, not a bound on growth");
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM hmac_nonces").await,
        40
    );
    store.close().await;
}

#[tokio::test]
async fn a_failed_commit_answers_the_error_to_every_caller() {
    let (store, _dir) = sqlite().await;
    // A deferred foreign key fails only at COMMIT: the nonce "poison"
    // leaves a dangling reference behind it.
    sqlx::raw_sql(
        "CREATE TABLE target (id INTEGER PRIMARY KEY); \
         CREATE TABLE dangling (id INTEGER REFERENCES target (id) DEFERRABLE INITIALLY DEFERRED); \
         CREATE TRIGGER poison AFTER INSERT ON hmac_nonces WHEN NEW.nonce = 'poison' \
         BEGIN INSERT INTO dangling VALUES (1); END;",
    )
    .execute(&store.pool)
    .await
    .unwrap();
    let got = one_batch(&store, &["a", "poison", "b"], 10).await;
    assert_eq!(got.len(), 3);
    for answer in got {
        assert!(matches!(answer, Err(Error::Storage(_))), "{answer:?}");
    }
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM hmac_nonces").await,
        0
    );
    assert_every_connection_durable(&store).await;
    // Nothing was kept: the next batch finds both nonces new.
    let again = one_batch(&store, &["a", "b"], 10).await;
    assert!(again.iter().all(|v| matches!(v, Ok(NonceVerdict::Fresh))));
    store.close().await;
}

#[tokio::test]
async fn a_caller_gone_from_the_queue_does_not_break_its_batch() {
    let (store, _dir) = sqlite().await;
    let (a, a_answer) = Job::new(&use_of("k", "a", 10));
    let (gone, gone_answer) = Job::new(&use_of("k", "gone", 10));
    let (b, b_answer) = Job::new(&use_of("k", "b", 10));
    drop(gone_answer);
    serve(&store.pool, &store.nonces.log, vec![a, gone, b]).await;
    assert_eq!(a_answer.await.unwrap().unwrap(), NonceVerdict::Fresh);
    assert_eq!(b_answer.await.unwrap().unwrap(), NonceVerdict::Fresh);
    // Its request was never served, so its nonce was not spent.
    let later = store.record(&use_of("k", "gone", 10)).await.unwrap();
    assert_eq!(later, NonceVerdict::Fresh);
    store.close().await;
}

/// Runs `uses` as ONE batch; their verdicts.
async fn batch_of(store: &SqlStore, uses: &[NonceUse<'_>]) -> Vec<NonceVerdict> {
    let (jobs, answers): (Vec<_>, Vec<_>) = uses.iter().map(Job::new).unzip();
    serve(&store.pool, &store.nonces.log, jobs).await;
    let mut out = Vec::new();
    for a in answers {
        out.push(a.await.unwrap().unwrap());
    }
    out
}

#[tokio::test]
async fn a_batch_sees_earlier_batches_keys_apart_and_expired_nonces_taken_over() {
    use NonceVerdict::{Fresh, Replayed};
    let (store, _dir) = sqlite().await;
    let first = [
        use_of("k", "a", 2),
        use_of("k", "b", 2),
        use_of("j", "a", 2),
    ];
    assert_eq!(batch_of(&store, &first).await, [Fresh, Fresh, Fresh]);
    // A nonce kept by an earlier batch is a replay; the same nonce of
    // another key is not; each key's quota is its own.
    let second = [
        use_of("k", "a", 2),
        use_of("j", "b", 2),
        use_of("k", "c", 2),
    ];
    let got = batch_of(&store, &second).await;
    assert_eq!(got[..2], [Replayed, Fresh]);
    assert!(matches!(got[2], NonceVerdict::OverQuota { .. }), "{got:?}");
    // Past their expiry, nonces are taken over and counted anew; the
    // quota no longer counts what expired.
    let later = |nonce| NonceUse {
        expires_at_ms: 30_000,
        now_ms: 25_000,
        ..use_of("k", nonce, 2)
    };
    assert_eq!(
        batch_of(&store, &[later("a"), later("b")]).await,
        [Fresh, Fresh]
    );
    let stored = "SELECT COUNT(*) AS n FROM hmac_nonces WHERE expires_at_ms = 30000";
    assert_eq!(count(&store, stored).await, 2);
    assert!(matches!(
        batch_of(&store, &[later("c"), later("a")]).await[..],
        [NonceVerdict::OverQuota { .. }, Replayed]
    ));
    store.close().await;
}

#[tokio::test]
async fn a_restarted_store_knows_every_live_nonce_and_counts_them() {
    use NonceVerdict::{Fresh, Replayed};
    let (store, dir) = sqlite().await;
    let kept = [use_of("k", "a", 3), use_of("k", "b", 3)];
    assert_eq!(batch_of(&store, &kept).await, [Fresh, Fresh]);
    let expired = NonceUse {
        expires_at_ms: 1_500,
        now_ms: 1_000,
        ..use_of("k", "old", 3)
    };
    assert_eq!(store.record(&expired).await.unwrap(), Fresh);
    store.close().await;

    // A new process on the same file, later: the live nonces are replays
    // and still count against the quota; the expired one is neither.
    let store = reopen(&dir).await;
    let at = |nonce| NonceUse {
        now_ms: 1_600,
        ..use_of("k", nonce, 3)
    };
    assert_eq!(
        batch_of(&store, &[at("a"), at("old"), at("c")]).await[..2],
        [Replayed, Fresh]
    );
    assert!(matches!(
        store.record(&at("d")).await.unwrap(),
        NonceVerdict::OverQuota { .. }
    ));
    store.close().await;
}

#[tokio::test]
async fn pruning_forgets_expired_nonces_in_memory_and_in_the_table() {
    let (store, _dir) = sqlite().await;
    for nonce in ["a", "b"] {
        let v = store.record(&use_of("k", nonce, 2)).await.unwrap();
        assert_eq!(v, NonceVerdict::Fresh);
    }
    assert_eq!(store.prune(2_000).await.unwrap(), 2);
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM hmac_nonces").await,
        0
    );
    // The quota has room again once they are gone.
    let later = NonceUse {
        expires_at_ms: 3_000,
        now_ms: 2_000,
        ..use_of("k", "c", 2)
    };
    assert_eq!(store.record(&later).await.unwrap(), NonceVerdict::Fresh);
    store.close().await;
}
