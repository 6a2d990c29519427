//! Background verify load that records every answer with its send time, so
//! a test can check afterwards that no node said VALID for a key later than
//! the key's revoke + S.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::BOUND;
use super::cluster::{Verdict, verify_at};

#[derive(Debug, Clone)]
pub struct Observation {
    /// When the request was sent: the node answered at or after it.
    pub sent: Instant,
    /// When its answer arrived: it was decided at or before this.
    pub answered: Instant,
    pub node: usize,
    pub key: usize,
    pub verdict: Verdict,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<Vec<Observation>>>,
}

impl Load {
    /// `workers` loops, each verifying keys round-robin over `bases`, with
    /// `pause` between requests. Each stops by itself after 3 x BOUND.
    pub fn start(
        http: &reqwest::Client,
        bases: Vec<String>,
        bearer: &str,
        keys: Arc<Vec<String>>,
        workers: usize,
        pause: Duration,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let bases = Arc::new(bases);
        let bearer: Arc<str> = Arc::from(bearer);
        let workers = (0..workers)
            .map(|w| {
                let (http, bases, keys, stop, bearer) = (
                    http.clone(),
                    bases.clone(),
                    keys.clone(),
                    stop.clone(),
                    bearer.clone(),
                );
                tokio::spawn(async move {
                    let until = Instant::now() + 3 * BOUND;
                    let mut seen = Vec::new();
                    let mut i = w;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                        let node = i % bases.len();
                        let key = (i / bases.len()) % keys.len();
                        let sent = Instant::now();
                        let verdict = verify_at(&http, &bases[node], &bearer, &keys[key]).await;
                        seen.push(Observation {
                            sent,
                            answered: Instant::now(),
                            node,
                            key,
                            verdict,
                        });
                        i += workers;
                        tokio::time::sleep(pause).await;
                    }
                    seen
                })
            })
            .collect();
        Self { stop, workers }
    }

    pub async fn finish(self) -> Vec<Observation> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for w in self.workers {
            all.extend(w.await.expect("load worker"));
        }
        all
    }
}
