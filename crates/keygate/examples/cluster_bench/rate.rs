//! Rate accuracy across nodes: one key limited to `limit` per `period`,
//! first drained (its whole burst sent as fast as 16 clients go), then sent
//! 3x its rate round-robin over the nodes for `seconds`. Admitted is
//! compared with what one node's GCRA admits for the same send times
//! (keygate_core's own limiter, fed the client's clock), over the paced
//! window and over the whole run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keygate_core::ratelimit::GcraLimiter;
use parking_lot::Mutex;
use serde_json::json;

use crate::{Ctx, Error};

pub async fn run(ctx: &Ctx, seconds: u64, limit: u32, period: u64) -> Result<(), Error> {
    let (key, _) = ctx
        .create_key(json!({
            "name": "rate", "owner": "bench",
            "rate_limit": { "limit": limit, "period_seconds": period },
        }))
        .await?;
    let start = Instant::now();
    // (ms since start, admitted)
    let seen: Arc<Mutex<Vec<(i64, bool)>>> = Arc::new(Mutex::new(Vec::new()));
    drain(ctx, &key, limit as usize, start, &seen).await;
    let paced_from = start.elapsed().as_millis() as i64;
    let per_sec = 3.0 * f64::from(limit) / period as f64;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sec));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    let mut i = 0usize;
    while Instant::now() < until {
        tick.tick().await;
        let (ctx, key, seen) = (ctx.clone(), key.clone(), seen.clone());
        let node = i % ctx.nodes.len();
        tasks.spawn(async move { record(&ctx, node, &key, start, &seen).await });
        i += 1;
    }
    while tasks.join_next().await.is_some() {}
    let mut seen = seen.lock().clone();
    seen.sort_by_key(|(t, _)| *t);
    report(&seen, limit, period, paced_from, seconds);
    Ok(())
}

async fn record(ctx: &Ctx, node: usize, key: &str, start: Instant, seen: &Mutex<Vec<(i64, bool)>>) {
    let at = start.elapsed().as_millis() as i64;
    let code = ctx.verify(node, key).await;
    seen.lock().push((at, code == "VALID"));
}

async fn drain(
    ctx: &Ctx,
    key: &str,
    n: usize,
    start: Instant,
    seen: &Arc<Mutex<Vec<(i64, bool)>>>,
) {
    let mut set = tokio::task::JoinSet::new();
    for w in 0..16 {
        let (ctx, key, seen) = (ctx.clone(), key.to_owned(), seen.clone());
        set.spawn(async move {
            let mut i = w;
            while i < n {
                record(&ctx, i % ctx.nodes.len(), &key, start, &seen).await;
                i += 16;
            }
        });
    }
    while set.join_next().await.is_some() {}
}

fn report(seen: &[(i64, bool)], limit: u32, period: u64, paced_from: i64, seconds: u64) {
    let reference = GcraLimiter::new();
    let spec = keygate_core::model::RateLimitSpec {
        limit,
        period_seconds: u32::try_from(period).unwrap_or(u32::MAX),
    };
    // An offset keeps the limiter's clock far from zero, as a real one is.
    let one_node: Vec<bool> = seen
        .iter()
        .map(|(t, _)| reference.decide("k", spec, 1_000_000_000 + t).allowed)
        .collect();
    let count = |from: i64, which: &dyn Fn(usize) -> bool| {
        seen.iter()
            .enumerate()
            .filter(|(i, (t, _))| *t >= from && which(*i))
            .count()
    };
    let got_all = count(0, &|i| seen[i].1);
    let ref_all = count(0, &|i| one_node[i]);
    let got_paced = count(paced_from, &|i| seen[i].1);
    let ref_paced = count(paced_from, &|i| one_node[i]);
    let sent_paced = count(paced_from, &|_| true);
    let interval_ms = period as f64 * 1000.0 / f64::from(limit);
    println!(
        "rate: key {limit}/{period} s; {} requests ({} in the paced {seconds} s at 3x, round-robin)",
        seen.len(),
        sent_paced
    );
    println!(
        "rate: paced window admitted {got_paced}, one node's GCRA {ref_paced} (floor({seconds} s / {interval_ms:.0} ms) = {}), \
         {:+.2} %; whole run {got_all} vs {ref_all}, {:+.2} % (target within +-2 %)",
        (seconds as f64 * 1000.0 / interval_ms).floor(),
        pct(got_paced, ref_paced),
        pct(got_all, ref_all)
    );
}

fn pct(got: usize, want: usize) -> f64 {
    if want == 0 {
        return f64::NAN;
    }
    (got as f64 - want as f64) * 100.0 / want as f64
}
