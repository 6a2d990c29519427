//! Propagation, black box: for each key (warm on every node), revoke it on
//! node i mod N, then poll every other node every millisecond until it
//! refuses; the lag is the send time of the first refused poll minus the
//! revoke's answer (resolution: one poll, about 1 ms plus a round trip).
//! Background verifies on other keys run meanwhile. Then the nodes' own
//! histogram, keygate_invalidation_lag_seconds, from /metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{Ctx, Error, loadavg, percentile};

/// A node still VALID this long after the revoke is recorded as this long.
const GIVE_UP: Duration = Duration::from_secs(3);

pub async fn run(ctx: &Ctx, revokes: usize, background: u32) -> Result<(), Error> {
    println!("propagation: creating and warming {revokes} keys (+ 60 for background load)");
    let keys = ctx.create_keys(revokes, "p").await?;
    let other = ctx.create_keys(60, "bg").await?;
    let secrets: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
    let bg: Vec<String> = other.iter().map(|(k, _)| k.clone()).collect();
    ctx.warm(&secrets).await?;
    ctx.warm(&bg).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let load = tokio::spawn(background_load(
        ctx.clone(),
        bg,
        background,
        stop.clone(),
        sent.clone(),
    ));
    let load_before = loadavg();
    let started = Instant::now();
    let mut lags = Vec::with_capacity(revokes);
    let mut gave_up = 0;
    for (i, (key, id)) in keys.iter().enumerate() {
        let origin = i % ctx.nodes.len();
        let res = ctx
            .http
            .post(format!("{}/v1/keys/{id}/revoke", ctx.nodes[origin]))
            .bearer_auth(&ctx.admin)
            .json(&serde_json::json!({}))
            .send()
            .await?;
        let answered = Instant::now();
        if !res.status().is_success() {
            return Err(format!("revoke answered {}", res.status()).into());
        }
        let mut set = tokio::task::JoinSet::new();
        for node in (0..ctx.nodes.len()).filter(|n| *n != origin) {
            let (ctx, key) = (ctx.clone(), key.clone());
            set.spawn(async move { refused_after(&ctx, node, &key, answered).await });
        }
        let mut worst = Duration::ZERO;
        while let Some(lag) = set.join_next().await {
            let lag = lag?;
            worst = worst.max(lag);
        }
        if worst >= GIVE_UP {
            gave_up += 1;
        }
        lags.push(worst.as_secs_f64() * 1000.0);
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    load.await?;
    let load_after = loadavg();
    lags.sort_by(f64::total_cmp);
    let bg_rate = sent.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64();
    println!(
        "propagation: {} revokes in {:.1} s, background {bg_rate:.0} verifies/s",
        lags.len(),
        elapsed.as_secs_f64()
    );
    println!(
        "propagation (revoke answered -> last other node refuses): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         still VALID after {GIVE_UP:?}: {gave_up} (target p99 <= 50 ms)",
        percentile(&lags, 50.0),
        percentile(&lags, 99.0),
        percentile(&lags, 100.0)
    );
    println!("load average (1 5 15 min): before {load_before}, after {load_after}");
    node_histogram(ctx).await
}

/// Polls `node` every millisecond until it stops answering VALID for
/// `key`; the send time of that poll, counted from `answered`.
async fn refused_after(ctx: &Ctx, node: usize, key: &str, answered: Instant) -> Duration {
    loop {
        let sent = Instant::now();
        if sent - answered >= GIVE_UP {
            return GIVE_UP;
        }
        if ctx.verify(node, key).await != "VALID" {
            return sent - answered;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn background_load(
    ctx: Ctx,
    keys: Vec<String>,
    per_sec: u32,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) {
    if per_sec == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1) / per_sec);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let (ctx, key, sent) = (ctx.clone(), keys[i % keys.len()].clone(), sent.clone());
        let node = i % ctx.nodes.len();
        tokio::spawn(async move {
            ctx.verify(node, &key).await;
            sent.fetch_add(1, Ordering::Relaxed);
        });
        i += 1;
    }
}

/// keygate_invalidation_lag_seconds summed over the nodes: the buckets,
/// and p50/p99 read off them (the upper bound of the bucket holding the rank).
async fn node_histogram(ctx: &Ctx) -> Result<(), Error> {
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    let (mut sum, mut count) = (0.0, 0.0);
    for node in &ctx.nodes {
        let text = ctx
            .http
            .get(format!("{node}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        for line in text
            .lines()
            .filter(|l| l.starts_with("keygate_invalidation_lag_seconds"))
        {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let value: f64 = value.parse().unwrap_or(0.0);
            if let Some(le) = name.split("le=\"").nth(1).and_then(|s| s.split('"').next()) {
                let le: f64 = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::NAN)
                };
                match buckets.iter_mut().find(|(b, _)| *b == le) {
                    Some((_, c)) => *c += value,
                    None => buckets.push((le, value)),
                }
            } else if name.ends_with("_sum") {
                sum += value;
            } else if name.ends_with("_count") {
                count += value;
            }
        }
    }
    if count == 0.0 {
        println!("in-node histogram: keygate_invalidation_lag_seconds not exported (or empty)");
        return Ok(());
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let rank = |p: f64| {
        buckets
            .iter()
            .find(|(_, c)| *c >= p * count)
            .map_or(f64::INFINITY, |(le, _)| *le * 1000.0)
    };
    println!(
        "in-node histogram (applied - committed, all nodes): {count:.0} entries, mean {:.2} ms, \
         p50 <= {} ms, p99 <= {} ms",
        sum / count * 1000.0,
        rank(0.5),
        rank(0.99)
    );
    let shown: Vec<String> = buckets
        .iter()
        .map(|(le, c)| {
            format!(
                "le {}: {c:.0}",
                if le.is_finite() {
                    format!("{:.4}", le)
                } else {
                    "+Inf".into()
                }
            )
        })
        .collect();
    println!("  buckets (cumulative): {}", shown.join(", "));
    Ok(())
}
