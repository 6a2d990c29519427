//! Cost: verifies per second of one cached key on the first node (the
//! script runs it with the cluster layer on and off), and the extra latency
//! of a verify whose key has a rate limit (decided in Redis when it is
//! configured) against one without.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::{Ctx, Error, loadavg, percentile};

pub async fn throughput(ctx: &Ctx, seconds: u64, concurrency: usize) -> Result<(), Error> {
    let keys = ctx.create_keys(64, "t").await?;
    let secrets: Vec<String> = keys.into_iter().map(|(k, _)| k).collect();
    ctx.warm(&secrets).await?;
    let ok = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let (ctx, secrets, ok, bad) = (ctx.clone(), secrets.clone(), ok.clone(), bad.clone());
        set.spawn(async move {
            let mut i = w;
            while Instant::now() < until {
                if ctx.verify(0, &secrets[i % secrets.len()]).await == "VALID" {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    bad.fetch_add(1, Ordering::Relaxed);
                }
                i += concurrency;
            }
        });
    }
    while set.join_next().await.is_some() {}
    let secs = started.elapsed().as_secs_f64();
    println!(
        "throughput: {:.0} verifies/s ({} VALID, {} other) at concurrency {concurrency}, load {}",
        ok.load(Ordering::Relaxed) as f64 / secs,
        ok.load(Ordering::Relaxed),
        bad.load(Ordering::Relaxed),
        loadavg()
    );
    Ok(())
}

pub async fn latency(ctx: &Ctx, samples: usize) -> Result<(), Error> {
    let (plain, _) = ctx
        .create_key(json!({ "name": "plain", "owner": "bench" }))
        .await?;
    let (limited, _) = ctx
        .create_key(json!({
            "name": "limited", "owner": "bench",
            "rate_limit": { "limit": 1_000_000, "period_seconds": 1 },
        }))
        .await?;
    ctx.warm(&[plain.clone(), limited.clone()]).await?;
    let (mut a, mut b) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    // Alternated, so drift in the machine's load hits both alike.
    for _ in 0..samples {
        for (key, out) in [(&plain, &mut a), (&limited, &mut b)] {
            let t = Instant::now();
            let code = ctx.verify(0, key).await;
            if code == "VALID" {
                out.push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    println!(
        "latency: plain p50 {:.0} us p99 {:.0} us; rate-limited p50 {:.0} us p99 {:.0} us; extra p50 {:.0} us ({} / {} samples)",
        percentile(&a, 50.0),
        percentile(&a, 99.0),
        percentile(&b, 50.0),
        percentile(&b, 99.0),
        percentile(&b, 50.0) - percentile(&a, 50.0),
        a.len(),
        b.len()
    );
    Ok(())
}
