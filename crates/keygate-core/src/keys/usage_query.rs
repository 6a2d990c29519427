//! Flushing verification counts to the store and reading them back for
//! admins: every bucket of the window present, counts not yet flushed
//! included.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::Error;
use crate::keys::apikey::KeyId;
use crate::keys::code::VerifyCode;
use crate::keys::service::{Admin, KeyService};
use crate::keys::usage_counts::{
    COUNTED, HOUR_SECS, UsageCount, UsageCounter, UsageParts, hour_of, merge,
};
use crate::store::UsageStore;

/// The most keys one `usage_many` call may ask for.
pub const MAX_USAGE_KEYS: usize = 100;
/// The most buckets one answer may hold (31 days of hours).
pub const MAX_USAGE_BUCKETS: i64 = 744;
/// How long counts are kept unless configured otherwise.
pub const DEFAULT_USAGE_RETENTION_DAYS: u32 = 30;
const DAY_SECS: i64 = 24 * HOUR_SECS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Granularity {
    #[default]
    Hour,
    Day,
}

impl Granularity {
    pub fn secs(self) -> i64 {
        match self {
            Granularity::Hour => HOUR_SECS,
            Granularity::Day => DAY_SECS,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hour" => Some(Granularity::Hour),
            "day" => Some(Granularity::Day),
            _ => None,
        }
    }
}

/// A window of Unix seconds: buckets start at `since` rounded down to the
/// granularity and cover up to `until` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageQuery {
    pub since: i64,
    pub until: i64,
    pub granularity: Granularity,
}

/// One bucket: counts per outcome (every countable outcome, zeros included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageBucket {
    pub start: i64,
    pub counts: BTreeMap<&'static str, u64>,
}

impl UsageBucket {
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUsage {
    pub key_id: KeyId,
    pub buckets: Vec<UsageBucket>,
}

impl UsageQuery {
    /// The bucket starts, or `Error::Invalid` for a bad or too long window.
    fn starts(&self) -> Result<Vec<i64>, Error> {
        if self.since < 0 || self.until <= self.since {
            return Err(Error::invalid(
                "since",
                "must be before until, both Unix times",
            ));
        }
        let step = self.granularity.secs();
        let first = self.since.div_euclid(step) * step;
        let n = (self.until - first + step - 1).div_euclid(step);
        if n > MAX_USAGE_BUCKETS {
            return Err(Error::invalid(
                "until",
                format!("the window holds {n} buckets; at most {MAX_USAGE_BUCKETS}"),
            ));
        }
        Ok((0..n).map(|i| first + i * step).collect())
    }
}

/// Buckets `rows` (of one key) into `starts`, every bucket present.
fn bucketize(rows: &[&UsageCount], starts: &[i64], step: i64) -> Vec<UsageBucket> {
    bucket_counts(rows.iter().map(|r| (r.hour, r.code, r.count)), starts, step)
}

/// Sums `(hour, code, count)` rows into the buckets starting at `starts`
/// (`step` seconds each), every bucket present with every counted code.
fn bucket_counts(
    rows: impl IntoIterator<Item = (i64, VerifyCode, u64)>,
    starts: &[i64],
    step: i64,
) -> Vec<UsageBucket> {
    let zero: BTreeMap<&'static str, u64> = COUNTED.iter().map(|c| (c.as_str(), 0)).collect();
    let mut buckets: Vec<UsageBucket> = starts
        .iter()
        .map(|&start| UsageBucket {
            start,
            counts: zero.clone(),
        })
        .collect();
    let Some(&first) = starts.first() else {
        return buckets;
    };
    for (hour, code, count) in rows {
        let i = (hour - first).div_euclid(step);
        if let Some(b) = usize::try_from(i).ok().and_then(|i| buckets.get_mut(i)) {
            *b.counts.entry(code.as_str()).or_default() += count;
        }
    }
    buckets
}

impl KeyService {
    /// Turns on verification counting, flushed to and read from `store`.
    pub fn with_usage_store(mut self, store: Arc<dyn UsageStore>) -> Self {
        self.counts = Some(UsageParts {
            store,
            counter: UsageCounter::default(),
            flushing: tokio::sync::Mutex::new(()),
        });
        self
    }

    fn usage_parts(&self) -> Result<&UsageParts, Error> {
        self.counts
            .as_ref()
            .ok_or_else(|| Error::Internal("usage counting is not configured".into()))
    }

    /// Writes the counts gathered since the last flush in one batch; a
    /// batch the store refused is put back for the next one.
    pub async fn flush_usage_counts(&self) -> Result<usize, Error> {
        let Some(parts) = &self.counts else {
            return Ok(0);
        };
        let _flushing = parts.flushing.lock().await;
        let rows = parts.counter.drain();
        if rows.is_empty() {
            return Ok(0);
        }
        if let Err(e) = parts.store.add_usage(&rows).await {
            parts.counter.requeue(rows);
            return Err(e);
        }
        Ok(rows.len())
    }

    /// Deletes counts of hours that ended more than `retention_days` ago.
    pub async fn purge_usage(&self, retention_days: u32) -> Result<u64, Error> {
        let before = hour_of(self.clock.now_secs()) - i64::from(retention_days) * DAY_SECS;
        self.usage_parts()?.store.purge_usage(before).await
    }

    /// One key's usage in `q`'s window; a key this admin may not see is
    /// `NotFound`.
    pub async fn usage(&self, admin: &Admin, id: &KeyId, q: UsageQuery) -> Result<KeyUsage, Error> {
        let starts = q.starts()?;
        self.get(admin, id).await?;
        let mut all = self
            .usage_rows(std::slice::from_ref(id), &starts, q)
            .await?;
        all.pop().ok_or(Error::NotFound("key"))
    }

    /// Hourly usage of many keys (at most 100) in one store query. A tenant
    /// admin naming a key of another tenant (or none) gets `NotFound`; a
    /// root admin gets zeros for unknown ids.
    pub async fn usage_many(
        &self,
        admin: &Admin,
        ids: &[KeyId],
        since: i64,
        until: i64,
    ) -> Result<Vec<KeyUsage>, Error> {
        if ids.len() > MAX_USAGE_KEYS {
            return Err(Error::invalid(
                "ids",
                format!("at most {MAX_USAGE_KEYS} keys per request"),
            ));
        }
        let q = UsageQuery {
            since,
            until,
            granularity: Granularity::Hour,
        };
        let starts = q.starts()?;
        if admin.tenant().is_some() {
            self.confine_ids(admin, ids).await?;
        }
        self.usage_rows(ids, &starts, q).await
    }

    /// Hourly counts summed over every key this admin may see (a tenant
    /// admin: its tenant's), every bucket present, in one store query.
    /// Counts not yet flushed are flushed first, so the sum includes them.
    pub async fn usage_totals(
        &self,
        admin: &Admin,
        since: i64,
        until: i64,
    ) -> Result<Vec<UsageBucket>, Error> {
        let q = UsageQuery {
            since,
            until,
            granularity: Granularity::Hour,
        };
        let starts = q.starts()?;
        self.flush_usage_counts().await?;
        let parts = self.usage_parts()?;
        let (first, end) = match (starts.first(), starts.last()) {
            (Some(&a), Some(&b)) => (a, b + HOUR_SECS),
            _ => (since, until),
        };
        let rows = {
            let _flushing = parts.flushing.lock().await;
            parts.store.usage_totals(admin.tenant(), first, end).await?
        };
        Ok(bucket_counts(rows, &starts, HOUR_SECS))
    }

    /// Reads each key (a primary-key lookup each) to check its tenant.
    async fn confine_ids(&self, admin: &Admin, ids: &[KeyId]) -> Result<(), Error> {
        for id in ids {
            self.get(admin, id).await?;
        }
        Ok(())
    }

    async fn usage_rows(
        &self,
        ids: &[KeyId],
        starts: &[i64],
        q: UsageQuery,
    ) -> Result<Vec<KeyUsage>, Error> {
        let parts = self.usage_parts()?;
        let step = q.granularity.secs();
        let (since, until) = match (starts.first(), starts.last()) {
            (Some(&a), Some(&b)) => (a, b + step),
            _ => (q.since, q.until),
        };
        let rows = {
            let _flushing = parts.flushing.lock().await;
            let mut rows = parts.store.usage(ids, since, until).await?;
            rows.extend(parts.counter.pending(ids));
            rows
        };
        let rows = merge(rows);
        Ok(ids
            .iter()
            .map(|id| {
                let mine: Vec<&UsageCount> = rows
                    .iter()
                    .filter(|r| &r.key_id == id && r.hour >= since && r.hour < until)
                    .collect();
                KeyUsage {
                    key_id: id.clone(),
                    buckets: bucketize(&mine, starts, step),
                }
            })
            .collect())
    }
}
