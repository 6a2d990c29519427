//! One fault under load: verifies on every node and a revoke every
//! `REVOKE_EVERY` round-robin over the nodes, the fault injected in the
//! middle, then the assertions on what was recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use super::cluster::Cluster;
use super::load::{Load, Observation};
use super::{BOUND, S};

const KEYS: usize = 40;
const REVOKE_EVERY: Duration = Duration::from_millis(120);

/// One revoke and how it was answered.
#[derive(Debug)]
pub struct Revoke {
    pub key: usize,
    pub id: String,
    pub node: usize,
    /// When the answer arrived; the commit happened before.
    pub answered: Instant,
    pub status: Option<StatusCode>,
}

impl Revoke {
    pub fn acknowledged(&self) -> bool {
        self.status.is_some_and(|s| s.is_success())
    }
}

pub struct Run {
    pub keys: Vec<(String, String)>,
    pub seen: Vec<Observation>,
    pub revokes: Vec<Revoke>,
    pub fault_began: Instant,
    pub fault_ended: Instant,
}

/// Warms `KEYS` keys, starts the load and the revoker, waits a second,
/// runs `fault`, lets the revoker finish and S pass, stops the load.
pub async fn under_load<F>(c: &mut Cluster, fault: F) -> Run
where
    F: AsyncFnOnce(&mut Cluster),
{
    let keys = c.warm_keys(KEYS).await;
    let bases: Vec<String> = c.nodes.iter().map(|n| n.base.clone()).collect();
    let secrets = Arc::new(keys.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());
    let load = Load::start(
        &c.http,
        bases.clone(),
        &c.root_key,
        secrets,
        3,
        Duration::from_millis(4),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let ids: Vec<String> = keys.iter().map(|(_, id)| id.clone()).collect();
    let revoker = tokio::spawn(revoke_all(
        c.http.clone(),
        bases,
        c.root_key.clone(),
        ids,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let fault_began = Instant::now();
    fault(c).await;
    let fault_ended = Instant::now();
    let until = Instant::now() + BOUND;
    while !revoker.is_finished() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let revokes = revoker.await.expect("revoker");
    tokio::time::sleep(S + Duration::from_millis(300)).await;
    let seen = load.finish().await;
    Run {
        keys,
        seen,
        revokes,
        fault_began,
        fault_ended,
    }
}

async fn revoke_all(
    http: reqwest::Client,
    bases: Vec<String>,
    root: String,
    ids: Vec<String>,
    stop: Arc<AtomicBool>,
) -> Vec<Revoke> {
    let mut out = Vec::with_capacity(ids.len());
    for (key, id) in ids.into_iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let node = key % bases.len();
        let res = http
            .post(format!("{}/v1/keys/{id}/revoke", bases[node]))
            .bearer_auth(&root)
            .json(&json!({}))
            .send()
            .await;
        out.push(Revoke {
            key,
            id,
            node,
            answered: Instant::now(),
            status: res.ok().map(|r| r.status()),
        });
        tokio::time::sleep(REVOKE_EVERY).await;
    }
    out
}

impl Run {
    /// The invariants: every acknowledged revoke is in the database,
    /// and no node said VALID for a key in a request sent later than the
    /// revoke's answer + S (the node answered after commit + S).
    pub async fn check_revocations(&self, c: &Cluster) {
        let in_db = c.revoked_in_db().await;
        let acked: Vec<&Revoke> = self.revokes.iter().filter(|r| r.acknowledged()).collect();
        assert!(!acked.is_empty(), "no revoke was acknowledged at all");
        for r in &acked {
            assert!(
                in_db.contains(&r.id),
                "revoke of {} answered 2xx but is not in the database",
                r.id
            );
        }
        let mut late = Vec::new();
        for r in &acked {
            let deadline = r.answered + S;
            late.extend(
                self.seen
                    .iter()
                    .filter(|o| o.key == r.key && o.verdict.is_valid() && o.sent > deadline)
                    .map(|o| {
                        format!(
                            "node {} VALID for key {} {:?} after its revoke's answer",
                            o.node,
                            r.key,
                            o.sent - r.answered
                        )
                    }),
            );
        }
        assert!(
            late.is_empty(),
            "{} stale VALID answers, the first: \n{}\n{}",
            late.len(),
            late[..late.len().min(10)].join("\n"),
            c.logs()
        );
    }

    /// While nothing could confirm (the database down from `began` to
    /// `ended`), no request sent later than `began + S` and answered before
    /// `ended` was answered VALID. (A request in flight when the database
    /// comes back may rightly be VALID: the node can confirm again.)
    /// (The load may send few: each cache miss waits out the database's
    /// deadline first; the caller also probes a cached key on every node.)
    pub fn check_fail_closed(&self, began: Instant, ended: Instant) {
        let open: Vec<String> = self
            .seen
            .iter()
            .filter(|o| o.sent > began + S && o.answered < ended && o.verdict.is_valid())
            .map(|o| {
                format!(
                    "node {} {} ms after the stop",
                    o.node,
                    (o.sent - began).as_millis()
                )
            })
            .collect();
        assert!(
            open.is_empty(),
            "VALID with the database down past S:\n{}",
            open.join("\n")
        );
    }

    pub fn count(&self, pred: impl Fn(&Observation) -> bool) -> usize {
        self.seen.iter().filter(|o| pred(o)).count()
    }
}

/// Every node recovers by itself: a key created after the fault verifies
/// VALID everywhere, and `/readyz` answers 200, within BOUND.
pub async fn check_recovered(c: &Cluster) {
    let until = Instant::now() + BOUND;
    let mut fresh = None;
    while fresh.is_none() && Instant::now() < until {
        let res = c
            .call(
                0,
                reqwest::Method::POST,
                "/v1/keys",
                Some(json!({"name": "after", "owner": "o"})),
            )
            .await;
        if let Ok((s, v)) = res
            && s.is_success()
        {
            fresh = v["key"].as_str().map(str::to_owned);
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let fresh =
        fresh.unwrap_or_else(|| panic!("no key could be created after the fault\n{}", c.logs()));
    for node in 0..c.nodes.len() {
        if !c.nodes[node].is_running() {
            continue;
        }
        let mut ok = false;
        while !ok && Instant::now() < until {
            let ready = c.http.get(c.url(node, "/readyz")).send().await;
            ok = ready.is_ok_and(|r| r.status().is_success())
                && c.verify(node, &fresh).await.is_valid();
            if !ok {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        assert!(
            ok,
            "node {node} did not recover within {BOUND:?}\n{}",
            c.logs()
        );
    }
}
