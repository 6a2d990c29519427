//! A revoke on one node reaches the others: each refuses the key within S
//! of the revoke's answer, and after `?wait=all` every node that acked
//! refuses it at once. (Before the feed, the others kept the key VALID for
//! up to cache_ttl_seconds, 30 s.)

use std::time::{Duration, Instant};

use super::support::{Cluster, ClusterSpec, S, SERIAL};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_on_one_node_is_refused_on_every_node_within_s() {
    let _serial = SERIAL.lock().await;
    let Some(c) = Cluster::start(ClusterSpec::default()).await else {
        return;
    };
    let keys = c.warm_keys(6).await;
    for (i, (key, id)) in keys.iter().enumerate() {
        let origin = i % 3;
        let (status, body) = c.revoke(origin, id, false).await.expect("revoke");
        assert!(status.is_success(), "{status} {body}");
        let acked = Instant::now();
        for node in (0..3).filter(|n| *n != origin) {
            // Polled every 5 ms until it refuses (bounded: S and a margin
            // for this loop); no VALID may be sent later than S after the
            // answer.
            let mut last_valid = None;
            let mut refused = false;
            while !refused && acked.elapsed() < S + Duration::from_millis(500) {
                let sent = acked.elapsed();
                refused = !c.verify(node, key).await.is_valid();
                if !refused {
                    last_valid = Some(sent);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            assert!(
                refused && last_valid.is_none_or(|t| t <= S),
                "node {node} answered VALID {last_valid:?} after the revoke on node {origin}"
            );
        }
    }
}
