//! PostgreSQL faults under load: restarted fast and immediate, stopped for
//! longer than S, and one node's feed connection killed. Each time: every
//! acknowledged revoke is in the database, no node answers VALID for a
//! revoked key past its commit + S, nodes that cannot confirm answer 503,
//! and every node recovers by itself.

use std::time::{Duration, Instant};

use tokio::task::block_in_place;

use crate::support::cluster::Verdict;
use crate::support::scenario::{check_recovered, under_load};
use crate::support::{Cluster, ClusterSpec, S, SERIAL};

async fn restart(mode: &'static str) {
    let _serial = SERIAL.lock().await;
    let Some(mut c) = Cluster::start(ClusterSpec::default()).await else {
        return;
    };
    let run = under_load(&mut c, async |c: &mut Cluster| {
        block_in_place(|| c.pg.restart(mode));
    })
    .await;
    run.check_revocations(&c).await;
    check_recovered(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_fast_under_load() {
    restart("fast").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_immediate_under_load() {
    restart("immediate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_past_s_answers_503_never_valid_then_recovers() {
    let _serial = SERIAL.lock().await;
    let Some(mut c) = Cluster::start(ClusterSpec::default()).await else {
        return;
    };
    // Warm on every node and never revoked: VALID from any cache that
    // (wrongly) kept serving.
    let (probe, _) = c.warm_keys(1).await.remove(0);
    let mut window = (Instant::now(), Instant::now());
    let mut probed = Vec::new();
    let run = under_load(&mut c, async |c: &mut Cluster| {
        let began = Instant::now();
        block_in_place(|| c.pg.stop("fast"));
        tokio::time::sleep_until((began + S + Duration::from_millis(300)).into()).await;
        for node in 0..c.nodes.len() {
            let answer = tokio::time::timeout(Duration::from_secs(2), c.verify(node, &probe)).await;
            probed.push((node, answer));
        }
        tokio::time::sleep_until((began + S + Duration::from_millis(2000)).into()).await;
        let ended = Instant::now();
        block_in_place(|| c.pg.start_again());
        window = (began, ended);
    })
    .await;
    for (node, answer) in &probed {
        assert!(
            matches!(answer, Ok(Verdict::Unavailable)),
            "node {node}, database down past S, answered {answer:?} (503 wanted)\n{}",
            c.logs()
        );
    }
    run.check_fail_closed(window.0, window.1);
    run.check_revocations(&c).await;
    check_recovered(&c).await;
}

/// The listener's backend is killed on the server side: the node must
/// notice (or catch up on its 250 ms poll) and lose no invalidation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_feed_connection_loses_no_invalidation() {
    let _serial = SERIAL.lock().await;
    let Some(mut c) = Cluster::start(ClusterSpec::default()).await else {
        return;
    };
    let mut killed = 0;
    let run = under_load(&mut c, async |c: &mut Cluster| {
        let mut conn = c.pg.connect().await;
        // One listener session per node; kill the first one found.
        let pid: Option<(i32,)> = sqlx::query_as(
            "SELECT pid FROM pg_stat_activity WHERE query ILIKE '%LISTEN%' \
             AND pid <> pg_backend_pid() ORDER BY backend_start LIMIT 1",
        )
        .fetch_optional(&mut conn)
        .await
        .expect("pg_stat_activity");
        if let Some((pid,)) = pid {
            let (done,): (bool,) = sqlx::query_as("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .fetch_one(&mut conn)
                .await
                .expect("pg_terminate_backend");
            killed += i32::from(done);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    })
    .await;
    assert_eq!(killed, 1, "no listener session to kill\n{}", c.logs());
    run.check_revocations(&c).await;
    check_recovered(&c).await;
}
