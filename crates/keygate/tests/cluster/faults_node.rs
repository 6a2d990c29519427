//! `?wait=all` and one node killed with SIGKILL: the answer lists the dead
//! node as unconfirmed (it was still live by its heartbeat) and comes by S;
//! once its heartbeat is older than the live timeout it drops out, and the
//! next `?wait=all` is acknowledged by the two survivors alone. Started
//! again, it serves the revocations it missed and is counted once more.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde_json::Value;

use super::support::load::Load;
use super::support::scenario::check_recovered;
use super::support::{BOUND, Cluster, ClusterSpec, S, SERIAL, signal};

/// The `propagation` member of a `?wait=all` answer.
fn propagation(body: &Value) -> (u64, u64, Vec<String>) {
    let p = &body["propagation"];
    let unconfirmed = p["unconfirmed"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (
        p["live_nodes"].as_u64().unwrap_or(0),
        p["acked"].as_u64().unwrap_or(0),
        unconfirmed,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_all_answers_once_every_node_refuses_the_key() {
    let _serial = SERIAL.lock().await;
    let Some(c) = Cluster::start(ClusterSpec::default()).await else {
        return;
    };
    let keys = c.warm_keys(6).await;
    for (i, (key, id)) in keys.iter().enumerate() {
        let (status, body) = c.revoke(i % 3, id, true).await.expect("revoke");
        assert!(status.is_success(), "{status} {body}");
        assert_eq!(propagation(&body), (3, 3, vec![]), "{body}");
        assert!(
            body["propagation"]["seq"].as_i64().is_some_and(|s| s > 0),
            "{body}"
        );
        // Every node applied it before the answer: none says VALID now.
        for node in 0..3 {
            let v = c.verify(node, key).await;
            assert!(!v.is_valid(), "node {node} VALID after wait=all: {v:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_during_wait_all_is_listed_then_drops_out() {
    let _serial = SERIAL.lock().await;
    let Some(mut c) = Cluster::start(ClusterSpec::default()).await else {
        return;
    };
    let keys = c.warm_keys(3).await;
    // Verifies of the three keys on the two survivors all along.
    let secrets = Arc::new(keys.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());
    let survivors = vec![c.nodes[0].base.clone(), c.nodes[1].base.clone()];
    let load = Load::start(
        &c.http,
        survivors,
        &c.root_key,
        secrets,
        2,
        Duration::from_millis(3),
    );
    let mut answered = [Instant::now(); 3];
    // Killed (SIGKILL, reaped below) while the first revoke waits: it may
    // or may not have acked.
    let pid = c.nodes[2].pid().expect("node-2 runs");
    let (first, ()) = tokio::join!(c.revoke(0, &keys[0].1, true), async {
        tokio::time::sleep(Duration::from_millis(2)).await;
        signal(pid, Signal::KILL);
    });
    c.nodes[2].kill();
    let (status, body) = first.expect("first revoke");
    answered[0] = Instant::now();
    assert!(status.is_success(), "{status} {body}");
    let (live, acked, unconfirmed) = propagation(&body);
    assert!(
        (live, acked, unconfirmed.as_slice()) == (3, 3, &[])
            || (live, acked, unconfirmed.as_slice()) == (3, 2, &["node-2".to_owned()]),
        "{body}"
    );

    // Dead now; live by its heartbeat (then listed, the answer coming by
    // S) or already past the live timeout (then not counted).
    let sent = Instant::now();
    let (status, body) = c.revoke(1, &keys[1].1, true).await.expect("revoke");
    answered[1] = Instant::now();
    let took = sent.elapsed();
    assert!(status.is_success(), "{status} {body}");
    let p = propagation(&body);
    assert!(
        p == (3, 2, vec!["node-2".to_owned()]) || p == (2, 2, vec![]),
        "{body}"
    );
    assert!(took < S + Duration::from_secs(2), "wait=all took {took:?}");
    for node in 0..2 {
        assert!(!c.verify(node, &keys[1].0).await.is_valid(), "node {node}");
    }

    // Past the live timeout (3 s, heartbeats every second) it drops out.
    let until = Instant::now() + BOUND;
    let mut last = Value::Null;
    let mut dropped = false;
    let mut first_of_key2 = None;
    while !dropped && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (_, body) = c.revoke(0, &keys[2].1, true).await.expect("revoke");
        first_of_key2.get_or_insert_with(Instant::now);
        dropped = propagation(&body) == (2, 2, vec![]);
        last = body;
    }
    assert!(dropped, "the dead node was still counted: {last}");
    answered[2] = first_of_key2.unwrap_or_else(Instant::now);
    // The survivors acked every answer above: none said VALID for a key
    // in a request sent after its revoke was answered.
    let late: Vec<String> = load
        .finish()
        .await
        .iter()
        .filter(|o| o.verdict.is_valid() && o.sent > answered[o.key])
        .map(|o| {
            format!(
                "node {} key {} {:?} after",
                o.node,
                o.key,
                o.sent - answered[o.key]
            )
        })
        .collect();
    assert!(late.is_empty(), "VALID after wait=all: {late:?}");

    // Started again: it refuses what was revoked while it was down, and
    // counts once more.
    c.nodes[2].start_again().expect("restart node-2");
    for (key, _) in &keys {
        assert!(!c.verify(2, key).await.is_valid());
    }
    check_recovered(&c).await;
    let mut counted = false;
    let until = Instant::now() + BOUND;
    let mut n = 0;
    while !counted && Instant::now() < until {
        let extra = c.warm_keys(1).await;
        let (_, body) = c.revoke(0, &extra[0].1, true).await.expect("revoke");
        counted = propagation(&body) == (3, 3, vec![]);
        n += 1;
    }
    assert!(counted, "the restarted node never acked ({n} tries)");
}
