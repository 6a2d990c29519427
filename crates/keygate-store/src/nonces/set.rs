//! A batch of SQLite nonces recorded as sets: two reads (which of its
//! nonces are live, and its keys' live counts), the verdicts worked out
//! in batch order here, then two writes (the fresh nonces, the counts).
//!
//! One by one, each nonce took a savepoint and three statements, and each
//! statement is a round trip to sqlx's SQLite worker thread: two thread
//! wake-ups. At the bench's 64 signed requests in flight that was ~170 µs
//! of CPU per request, most of it the kernel's. A set costs the same four
//! round trips for 2 nonces or 256.
//!
//! The verdicts are those of the one-by-one way: the batch runs inside
//! `BEGIN IMMEDIATE`, so nothing else writes between the reads and the
//! writes; a duplicate of a nonce kept earlier in the batch is its replay;
//! the quota counts what the batch kept before each nonce; a replayed or
//! over-quota nonce leaves nothing behind.
//!
//! The statements' text depends on the batch's size, so they are not kept
//! prepared: a statement cache full of them would push out the rest.

use std::collections::{BTreeMap, HashMap, HashSet};

use keygate_core::Error;
use keygate_core::httpsig::replay::{NonceUse, NonceVerdict, quota_bucket, quota_retry_after_ms};
// Safe: only `$n` placeholders are spliced in; every value is bound.
use sqlx::{AnyConnection, AssertSqlSafe};

use super::slot_of;
use crate::db;
use crate::rows::col;

type Pair<'a> = (&'a str, &'a str);

/// Records `ns` in order in the transaction open on `conn`.
pub(super) async fn record_set(
    conn: &mut AnyConnection,
    ns: &[NonceUse<'_>],
) -> Result<Vec<NonceVerdict>, Error> {
    let live = live_nonces(conn, ns).await?;
    let mut counts = live_counts(conn, ns).await?;
    let mut kept: HashSet<Pair<'_>> = HashSet::with_capacity(ns.len());
    let mut fresh = Vec::with_capacity(ns.len());
    let mut bumps: HashMap<(&str, i64, i64), i64> = HashMap::new();
    let mut verdicts = Vec::with_capacity(ns.len());
    for n in ns {
        let pair = (n.key_id, n.nonce);
        let replay = kept.contains(&pair) || live.get(&pair).is_some_and(|exp| *exp > n.now_ms);
        if replay {
            verdicts.push(NonceVerdict::Replayed);
            continue;
        }
        let buckets = counts.entry(n.key_id).or_default();
        let live_from = quota_bucket(n.now_ms);
        let used: i64 = buckets.range(live_from..).map(|(_, used)| used).sum();
        if used >= i64::from(n.per_key_limit) {
            let first = buckets
                .range(live_from..)
                .next()
                .map_or(live_from, |(b, _)| *b);
            verdicts.push(NonceVerdict::OverQuota {
                retry_after_ms: quota_retry_after_ms(first, n.now_ms),
            });
            continue;
        }
        let bucket = quota_bucket(n.expires_at_ms);
        *buckets.entry(bucket).or_default() += 1;
        *bumps
            .entry((n.key_id, bucket, slot_of(n.nonce)))
            .or_default() += 1;
        kept.insert(pair);
        fresh.push(n);
        verdicts.push(NonceVerdict::Fresh);
    }
    write_nonces(conn, &fresh).await?;
    write_counts(conn, &bumps).await?;
    Ok(verdicts)
}

/// `$first, $first+1, ...` for `n` values, as `(…)` rows of `width`.
fn rows(n: usize, width: usize, first: usize) -> String {
    let mut out = String::with_capacity(n * width * 6);
    for row in 0..n {
        out.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..width {
            if col > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(first + row * width + col).to_string());
        }
        out.push(')');
    }
    out
}

/// The batch's nonces already stored, with their expiry (an expired one
/// not yet pruned is taken over, as one live is a replay).
async fn live_nonces<'a>(
    conn: &mut AnyConnection,
    ns: &[NonceUse<'a>],
) -> Result<HashMap<Pair<'a>, i64>, Error> {
    let sql = format!(
        "SELECT key_id, nonce, expires_at_ms FROM hmac_nonces \
         WHERE (key_id, nonce) IN (VALUES {})",
        rows(ns.len(), 2, 1)
    );
    let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(false);
    for n in ns {
        q = q.bind(n.key_id).bind(n.nonce);
    }
    let found = q.fetch_all(&mut *conn).await.map_err(db)?;
    let mut live = HashMap::with_capacity(found.len());
    for row in &found {
        let (key, nonce): (String, String) = (col(row, "key_id")?, col(row, "nonce")?);
        // Back to the batch's own strs, so the map borrows nothing of the rows.
        if let Some(n) = ns.iter().find(|n| n.key_id == key && n.nonce == nonce) {
            live.insert((n.key_id, n.nonce), col(row, "expires_at_ms")?);
        }
    }
    Ok(live)
}

/// Each key's stored counts by bucket, from the earliest bucket any nonce
/// of the batch still counts.
async fn live_counts<'a>(
    conn: &mut AnyConnection,
    ns: &[NonceUse<'a>],
) -> Result<HashMap<&'a str, BTreeMap<i64, i64>>, Error> {
    let keys: Vec<&str> = {
        let mut keys: Vec<&str> = ns.iter().map(|n| n.key_id).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    };
    let from = ns.iter().map(|n| quota_bucket(n.now_ms)).min().unwrap_or(0);
    let sql = format!(
        "SELECT key_id, bucket, CAST(SUM(used) AS BIGINT) AS used FROM hmac_nonce_counts \
         WHERE bucket >= $1 AND key_id IN ({}) GROUP BY key_id, bucket",
        rows(keys.len(), 1, 2)
    );
    let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(false).bind(from);
    for key in &keys {
        q = q.bind(*key);
    }
    let mut counts: HashMap<&str, BTreeMap<i64, i64>> = HashMap::with_capacity(keys.len());
    for row in q.fetch_all(&mut *conn).await.map_err(db)? {
        let key: String = col(&row, "key_id")?;
        // Back to the batch's own str (`keys` is sorted), as for the nonces.
        if let Ok(i) = keys.binary_search(&key.as_str()) {
            counts
                .entry(keys[i])
                .or_default()
                .insert(col(&row, "bucket")?, col(&row, "used")?);
        }
    }
    Ok(counts)
}

async fn write_nonces(conn: &mut AnyConnection, fresh: &[&NonceUse<'_>]) -> Result<(), Error> {
    if fresh.is_empty() {
        return Ok(());
    }
    // Only expired rows conflict: live ones were replays, not kept.
    let sql = format!(
        "INSERT INTO hmac_nonces (key_id, nonce, expires_at_ms) VALUES {} \
         ON CONFLICT (key_id, nonce) DO UPDATE SET expires_at_ms = excluded.expires_at_ms",
        rows(fresh.len(), 3, 1)
    );
    let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(false);
    for n in fresh {
        q = q.bind(n.key_id).bind(n.nonce).bind(n.expires_at_ms);
    }
    q.execute(&mut *conn).await.map_err(db)?;
    Ok(())
}

async fn write_counts(
    conn: &mut AnyConnection,
    bumps: &HashMap<(&str, i64, i64), i64>,
) -> Result<(), Error> {
    if bumps.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO hmac_nonce_counts (key_id, bucket, slot, used) VALUES {} \
         ON CONFLICT (key_id, bucket, slot) DO UPDATE SET used = hmac_nonce_counts.used + excluded.used",
        rows(bumps.len(), 4, 1)
    );
    let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(false);
    for ((key, bucket, slot), used) in bumps {
        q = q.bind(*key).bind(*bucket).bind(*slot).bind(*used);
    }
    q.execute(&mut *conn).await.map_err(db)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::rows;

    #[test]
    fn placeholders_are_numbered_row_by_row() {
        assert_eq!(rows(2, 2, 1), "($1, $2), ($3, $4)");
        assert_eq!(rows(1, 3, 4), "($4, $5, $6)");
    }
}
