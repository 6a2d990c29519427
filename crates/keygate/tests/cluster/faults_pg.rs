//! PostgreSQL faults under load: restarted fast and immediate, stopped for
//! longer than S, and one node's feed connection killed. Each time: every
//! acknowledged revoke is in the database, no node answers VALID for a
//! revoked key past its commit + S, nodes that cannot confirm answer 503,
//! and every node recovers by itself.

use std::time::{Duration, Instant};

use tokio::task::block_in_place;

use super::support::cluster::Verdict;
use super::support::scenario::{check_recovered, under_load};
use super::support::{Cluster, ClusterSpec, S, SERIAL};

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
    // Never verified anywhere: a lookup must go to the database.
    let (cold, _) = c
        .create_key(0, serde_json::json!({"name": "cold", "owner": "o"}))
        .await;
    let mut window = (Instant::now(), Instant::now());
    let mut probed = Vec::new();
    let mut cold_answer = None;
    let run = under_load(&mut c, async |c: &mut Cluster| {
        let began = Instant::now();
        block_in_place(|| c.pg.stop("fast"));
        // The database answers until pg_ctl's shutdown takes hold, which on
        // a loaded machine can be a while after it is started: a node may
        // confirm up to this instant and rightly serve for S after it.
        let stopped = Instant::now();
        tokio::time::sleep_until((began + S + Duration::from_millis(300)).into()).await;
        for node in 0..c.nodes.len() {
            let answer = tokio::time::timeout(Duration::from_secs(2), c.verify(node, &probe)).await;
            probed.push((node, answer));
        }
        let sent = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(3), c.verify(1, &cold)).await;
        cold_answer = Some((answer, sent.elapsed()));
        tokio::time::sleep_until((began + S + Duration::from_millis(2000)).into()).await;
        let ended = Instant::now();
        block_in_place(|| c.pg.start_again());
        window = (stopped, ended);
    })
    .await;
    for (node, answer) in &probed {
        assert!(
            matches!(answer, Ok(Verdict::Unavailable)),
            "node {node}, database down past S, answered {answer:?} (503 wanted)\n{}",
            c.logs()
        );
    }
    // A cache miss has nothing to serve: 503 as well, not a wait for the
    // whole outage.
    let (answer, took) = cold_answer.expect("cold probe");
    assert!(
        matches!(answer, Ok(Verdict::Unavailable)),
        "a cache miss with the database down: {answer:?} after {took:?}"
    );
    run.check_fail_closed(window.0, window.1);
    run.check_revocations(&c).await;
    check_recovered(&c).await;
}

/// The listener sessions, oldest first, known by the application_name
/// the listener gives its session (another session's channels are not
/// visible in `pg_stat_activity`).
async fn listeners(conn: &mut sqlx::PgConnection) -> Vec<i32> {
    let rows: Vec<(i32,)> = sqlx::query_as(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 \
         AND pid <> pg_backend_pid() ORDER BY backend_start",
    )
    .bind(keygate_store::LISTENER_APPLICATION_NAME)
    .fetch_all(conn)
    .await
    .expect("pg_stat_activity");
    rows.into_iter().map(|(pid,)| pid).collect()
}

/// One node's listener session is killed on the server side: the node must
/// notice (or catch up on its 250 ms poll), lose no invalidation, and
/// listen again by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_feed_connection_loses_no_invalidation() {
    let _serial = SERIAL.lock().await;
    let Some(mut c) = Cluster::start(ClusterSpec::default()).await else {
        return;
    };
    let mut before = Vec::new();
    let mut after = Vec::new();
    let run = under_load(&mut c, async |c: &mut Cluster| {
        let mut conn = c.pg.connect().await;
        before = listeners(&mut conn).await;
        if let Some(pid) = before.first() {
            let (done,): (bool,) = sqlx::query_as("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .fetch_one(&mut conn)
                .await
                .expect("pg_terminate_backend");
            assert!(done, "pg_terminate_backend({pid}) refused");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        after = listeners(&mut conn).await;
    })
    .await;
    // One listener per node before, and again after (a new session in
    // place of the killed one).
    assert_eq!(
        before.len(),
        3,
        "listener sessions: {before:?}\n{}",
        c.logs()
    );
    assert_eq!(
        after.len(),
        3,
        "listener sessions after: {after:?}\n{}",
        c.logs()
    );
    assert!(!after.contains(&before[0]), "{before:?} -> {after:?}");
    run.check_revocations(&c).await;
    check_recovered(&c).await;
}
