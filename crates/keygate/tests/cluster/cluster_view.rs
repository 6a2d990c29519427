//! `GET /v1/cluster` across processes: every node sees the same three
//! members, names itself, and each member reports the feed position it
//! applied and (with Redis) its limiter's state.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use super::support::{BOUND, Cluster, ClusterSpec, SERIAL};

/// The view from `node` once it lists three live members at lag 0.
async fn settled_view(c: &Cluster, node: usize) -> Value {
    let until = Instant::now() + BOUND;
    let mut last = Value::Null;
    while Instant::now() < until {
        let (status, body) = c
            .call(node, Method::GET, "/v1/cluster", None)
            .await
            .expect("cluster");
        assert!(status.is_success(), "{status} {body}");
        let settled = body["nodes"]
            .as_array()
            .is_some_and(|n| n.len() == 3 && n.iter().all(|m| m["live"] == true && m["lag"] == 0));
        if settled {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no settled view from node {node}: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_lists_the_same_three_members_with_their_limiter() {
    let _serial = SERIAL.lock().await;
    let spec = ClusterSpec {
        redis: true,
        ..ClusterSpec::default()
    };
    let Some(c) = Cluster::start(spec).await else {
        return;
    };
    // A change, so the head is past the start.
    let keys = c.warm_keys(1).await;
    let (status, _) = c.revoke(0, &keys[0].1, false).await.expect("revoke");
    assert!(status.is_success());
    for node in 0..3 {
        let view = settled_view(&c, node).await;
        assert_eq!(view["mode"], "cluster", "{view}");
        assert_eq!(view["node_id"], format!("node-{node}"), "{view}");
        assert_eq!(view["bound_ms"], 2000, "{view}");
        let head = view["head"].as_i64().expect("head");
        assert!(head > 0, "{view}");
        let mut ids: Vec<&str> = view["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["node_id"].as_str().expect("node_id"))
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, ["node-0", "node-1", "node-2"], "{view}");
        for member in view["nodes"].as_array().expect("nodes") {
            assert!(
                member["applied_seq"]
                    .as_i64()
                    .is_some_and(|s| s >= head - 1),
                "{view}"
            );
            assert!(!member["limiter"].is_null(), "no limiter state: {view}");
        }
    }
}
