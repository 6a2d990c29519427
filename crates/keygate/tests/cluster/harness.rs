//! The harness itself: a private PostgreSQL and Redis can be stopped, paused
//! and restarted, and three nodes on one database share their keys.

use std::time::{Duration, Instant};

use serde_json::json;

use super::support::{BOUND, Cluster, ClusterSpec, SERIAL};
use keygate_test_support::redis::PrivateRedis;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_private_postgres_share_keys_and_survive_its_restart() {
    let _serial = SERIAL.lock().await;
    let Some(mut c) = Cluster::start(ClusterSpec::default()).await else {
        return;
    };
    let ids: Vec<&str> = c.nodes.iter().map(|n| n.spec.id.as_str()).collect();
    assert_eq!(ids, ["node-0", "node-1", "node-2"]);
    let (key, _) = c
        .create_key(1, json!({ "name": "shared", "owner": "o" }))
        .await;
    for node in 0..3 {
        assert!(c.verify(node, &key).await.is_valid(), "node {node}");
    }
    c.pg.restart("fast");
    // Every node reaches the restarted database again by itself: a key
    // created after the restart verifies everywhere.
    let until = Instant::now() + BOUND;
    let mut fresh = None;
    while fresh.is_none() && Instant::now() < until {
        let res = c
            .call(
                0,
                reqwest::Method::POST,
                "/v1/keys",
                Some(json!({ "name": "after", "owner": "o" })),
            )
            .await;
        if let Ok((s, v)) = res
            && s.is_success()
        {
            fresh = v["key"].as_str().map(str::to_owned);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fresh = fresh.unwrap_or_else(|| panic!("no key after the restart\n{}", c.logs()));
    for node in 0..3 {
        let mut ok = false;
        while !ok && Instant::now() < until {
            ok = c.verify(node, &fresh).await.is_valid();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(ok, "node {node} after the restart\n{}", c.logs());
    }
    // A node killed and started again comes back on a new port.
    c.nodes[2].kill();
    c.nodes[2].start_again().expect("restart node-2");
    assert!(c.verify(2, &key).await.is_valid());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_redis_stops_pauses_and_restarts_empty() {
    let Some(mut r) = PrivateRedis::start() else {
        return;
    };
    let short = Duration::from_millis(300);
    assert!(r.wait_ready(short));
    r.pause();
    assert!(!r.wait_ready(short), "a stopped process answered");
    r.resume();
    assert!(r.wait_ready(short));
    r.stop();
    assert!(!r.wait_ready(short));
    r.start_again();
    assert!(r.wait_ready(short));
    r.restart_empty();
    assert!(r.wait_ready(short));
}
