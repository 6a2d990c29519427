//! Signed-request nonces in the database: recorded once, refused while
//! live, taken over once expired, counted against the key's quota, pruned;
//! two stores (two nodes) racing on one nonce let exactly one through.
//! Both backends.

use crate::common::Ctx;
use keygate_core::httpsig::replay::QUOTA_BUCKET_MS;
use keygate_core::httpsig::{NonceStore, NonceUse, NonceVerdict};
use keygate_store::{ConnectOptions, connect};

const NOW: i64 = 1_700_000_000_000;
const LIFE: i64 = 301_000;

on_both_backends!(
    a_nonce_is_fresh_once_and_taken_over_after_expiry,
    a_key_at_its_quota_is_refused_and_others_are_not,
    two_nodes_racing_on_one_nonce_let_one_through,
);

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
    // Pruning forgets what expired, and only that.
    assert_eq!(s.prune(NOW + LIFE).await.unwrap(), 1);
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

async fn two_nodes_racing_on_one_nonce_let_one_through(ctx: Ctx) {
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
