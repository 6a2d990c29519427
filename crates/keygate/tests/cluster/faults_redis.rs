//! Redis faults under load: stopped (connections refused), black-holed
//! (SIGSTOP: connections accepted, nothing answered) and restarted empty.
//! Revocation never depends on Redis, so the revocation invariants hold as
//! ever; every request is answered (no hang on a silent Redis); and one key
//! limited to LIMIT per PERIOD, driven round-robin over the three nodes at
//! several times its rate, is never admitted beyond the declared bound.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::support::cluster::Verdict;
use super::support::load::Load;
use super::support::scenario::{check_recovered, under_load};
use super::support::{Cluster, ClusterSpec, SERIAL};

const LIMIT: u64 = 20;
const PERIOD_SECS: u64 = 20;

#[derive(Clone, Copy)]
enum Fault {
    Stopped,
    BlackHoled,
    RestartedEmpty,
}

impl Fault {
    /// Bursts the declared bound allows over the run: the first, one for
    /// the nodes' fresh local shares (limit / 3 each) while Redis cannot
    /// answer, and one when Redis comes back without its data (this one
    /// keeps nothing on disk, so a stop loses it too).
    fn bursts(self) -> u64 {
        match self {
            Fault::BlackHoled => 2,
            Fault::Stopped | Fault::RestartedEmpty => 3,
        }
    }
}

async fn redis_fault(fault: Fault) {
    let _serial = SERIAL.lock().await;
    let spec = ClusterSpec {
        redis: true,
        ..ClusterSpec::default()
    };
    let Some(mut c) = Cluster::start(spec).await else {
        return;
    };
    let body = json!({
        "name": "limited", "owner": "o",
        "rate_limit": { "limit": LIMIT, "period_seconds": PERIOD_SECS },
    });
    let (limited, _) = c.create_key(0, body).await;
    let bases = c.nodes.iter().map(|n| n.base.clone()).collect();
    // About 20 requests a second over the three nodes: 40x the key's rate.
    let driver = Load::start(
        &c.http,
        bases,
        &c.root_key,
        Arc::new(vec![limited]),
        1,
        Duration::from_millis(40),
    );
    let run = under_load(&mut c, async |c: &mut Cluster| {
        let redis = c.redis.as_mut().expect("private redis");
        match fault {
            Fault::Stopped => {
                redis.stop();
                tokio::time::sleep(Duration::from_secs(3)).await;
                redis.start_again();
            }
            Fault::BlackHoled => {
                redis.pause();
                tokio::time::sleep(Duration::from_secs(3)).await;
                redis.resume();
            }
            Fault::RestartedEmpty => redis.restart_empty(),
        }
    })
    .await;
    let limited = driver.finish().await;

    let unanswered = limited
        .iter()
        .filter(|o| o.verdict == Verdict::NoAnswer)
        .count();
    assert_eq!(unanswered, 0, "requests left unanswered during the fault");
    let admitted = limited.iter().filter(|o| o.verdict.is_valid()).count() as u64;
    let (first, last) = (limited[0].sent, limited[limited.len() - 1].sent);
    let window_ms = (last - first).as_millis() as u64;
    let interval_ms = PERIOD_SECS * 1000 / LIMIT;
    // Each regime (Redis, the local shares, Redis again) admits at most
    // one burst, plus one request per node for rounding the share, and
    // one request per interval it lasts. Per-node limiters (no Redis)
    // would admit 3 bursts and 3 requests per interval.
    let nodes = c.nodes.len() as u64;
    let bound = fault.bursts() * (LIMIT + nodes) + window_ms / interval_ms + 1;
    println!(
        "limited key: admitted {admitted} of {} over {window_ms} ms, bound {bound}",
        limited.len()
    );
    assert!(
        admitted <= bound,
        "admitted {admitted} of {} over {window_ms} ms; the bound is {bound}\n{}",
        limited.len(),
        c.logs()
    );
    assert!(admitted >= 1, "the limited key was never admitted");
    run.check_revocations(&c).await;
    check_recovered(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_under_load() {
    redis_fault(Fault::Stopped).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_black_holed_under_load() {
    redis_fault(Fault::BlackHoled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_under_load() {
    redis_fault(Fault::RestartedEmpty).await;
}
