//! Verification counts on the keys pages: the 24-hour sparkline of every
//! row of the keys table (one `usage_many` call for the whole page, never
//! one per key), and the stacked chart with its table on a key's page.

use keygate_core::keys::usage_counts::COUNTED;
use keygate_core::model::KeyRecord;
use keygate_core::{Admin, Granularity, KeyId, KeyUsage, UsageBucket, UsageQuery};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::Deps;
use crate::charts::{Interval, Labels, sparkline, stacked_bars};
use crate::error::PageError;
use crate::pages::keys::KeyView;

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// The last 24 whole-or-current hours: from the start of the hour 23 hours
/// before the current one, to now (inclusive).
pub fn last_day(now: i64) -> (i64, i64) {
    ((now.div_euclid(HOUR) - 23) * HOUR, now + 1)
}

/// Each outcome's name, in the chart's stacking order.
pub fn outcomes() -> Vec<&'static str> {
    COUNTED.iter().map(|c| c.as_str()).collect()
}

/// Fills `rows[i].usage` with the sparkline of `keys[i]` (same order).
/// Counting may be off (no usage store): the cells then stay empty ("—"),
/// and the page still renders, with the reason logged.
pub async fn fill_sparklines(
    deps: &Deps,
    admin: &Admin,
    keys: &[KeyRecord],
    rows: &mut [KeyView],
    now: i64,
) {
    if keys.is_empty() {
        return;
    }
    let ids: Vec<KeyId> = keys.iter().map(|k| k.id.clone()).collect();
    let (since, until) = last_day(now);
    let usage = match deps.keys.usage_many(admin, &ids, since, until).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: key usage unavailable for the keys table");
            return;
        }
    };
    for (row, u) in rows.iter_mut().zip(&usage) {
        let counts: Vec<u64> = u.buckets.iter().map(UsageBucket::total).collect();
        row.usage = sparkline(&counts, "verifications", "in the last 24 hours");
    }
}

/// The windows a key's page offers, as (query value, label, granularity,
/// length in seconds).
pub const WINDOWS: [(&str, &str, Granularity, i64); 3] = [
    ("24h", "24 hours", Granularity::Hour, DAY),
    ("7d", "7 days", Granularity::Day, 7 * DAY),
    ("30d", "30 days", Granularity::Day, 30 * DAY),
];

/// The window a `?usage=` value names (24 hours when empty); 400 otherwise.
pub fn window(value: &str) -> Result<(&'static str, &'static str, Granularity, i64), PageError> {
    let value = if value.is_empty() { "24h" } else { value };
    WINDOWS
        .iter()
        .find(|w| w.0 == value)
        .copied()
        .ok_or_else(|| PageError::BadRequest("usage: 24h, 7d or 30d".into()))
}

/// The query for a window ending now: whole hours (or days) back from the
/// current one, which is included.
pub fn query(granularity: Granularity, length: i64, now: i64) -> UsageQuery {
    let step = granularity.secs();
    let buckets = length / step;
    UsageQuery {
        since: (now.div_euclid(step) - (buckets - 1)) * step,
        until: now + 1,
        granularity,
    }
}

/// The usage section of a key's page: links to the other windows, then the
/// chart and its numbers.
pub async fn key_section(
    deps: &Deps,
    admin: &Admin,
    key: &KeyId,
    usage: &str,
    now: i64,
) -> Result<String, PageError> {
    let (name, label, granularity, length) = window(usage)?;
    let usage = match deps
        .keys
        .usage(admin, key, query(granularity, length, now))
        .await
    {
        Ok(u) => u,
        Err(keygate_core::Error::Internal(cause)) => {
            tracing::warn!(%cause, "dashboard: key usage unavailable");
            return Ok("<p>Usage counting is not available on this server.</p>".into());
        }
        Err(e) => return Err(e.into()),
    };
    let mut html = String::from("<p class=\"row\">Window:");
    for (value, text, _, _) in WINDOWS {
        if value == name {
            html.push_str(&format!(" <strong aria-current=\"true\">{text}</strong>"));
        } else {
            html.push_str(&format!(
                " <a href=\"{}/keys/{}?usage={value}#usage\">{text}</a>",
                crate::BASE,
                crate::charts::escape(key.as_str())
            ));
        }
    }
    html.push_str("</p>");
    html.push_str(&chart(&usage, label, granularity));
    Ok(html)
}

/// Stacked bars of one key's buckets, labelled in UTC.
pub fn chart(usage: &KeyUsage, window_label: &str, granularity: Granularity) -> String {
    let (short, long, heading) = match granularity {
        Granularity::Hour => (
            format_description!("[hour]:00"),
            format_description!("[year]-[month]-[day] [hour]:00 UTC"),
            "Hour (UTC)",
        ),
        Granularity::Day => (
            format_description!("[month]-[day]"),
            format_description!("[year]-[month]-[day]"),
            "Day (UTC)",
        ),
    };
    let fmt = |at: i64, f: &[time::format_description::BorrowedFormatItem<'_>]| {
        OffsetDateTime::from_unix_timestamp(at)
            .ok()
            .and_then(|t| t.format(f).ok())
            .unwrap_or_default()
    };
    let labels: Vec<(String, String, Vec<(&str, u64)>)> = usage
        .buckets
        .iter()
        .map(|b| {
            let counts = b.counts.iter().map(|(k, v)| (*k, *v)).collect();
            (fmt(b.start, short), fmt(b.start, long), counts)
        })
        .collect();
    let intervals: Vec<Interval<'_>> = labels
        .iter()
        .map(|(label, long_label, counts)| Interval {
            label,
            long_label,
            counts,
        })
        .collect();
    let caption = format!("Verifications by outcome, last {window_label}");
    let labels = Labels {
        caption: &caption,
        interval_heading: heading,
    };
    stacked_bars(&labels, &intervals, &outcomes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn windows_end_now_and_hold_whole_buckets() {
        let now = 1_700_000_000; // 22:13:20 UTC
        let (since, until) = last_day(now);
        assert_eq!(since % HOUR, 0);
        assert_eq!((until - 1 - since) / HOUR, 23);
        let q = query(Granularity::Day, 7 * DAY, now);
        assert_eq!(q.since % DAY, 0);
        assert_eq!((now - q.since) / DAY, 6);
        assert!(window("1y").is_err());
        assert_eq!(window("").unwrap().0, "24h");
    }

    #[test]
    fn the_chart_counts_what_the_buckets_hold() {
        let key_id = KeyId::generate().unwrap();
        let mut counts = std::collections::BTreeMap::new();
        counts.insert("VALID", 4);
        counts.insert("RATE_LIMITED", 1);
        let usage = KeyUsage {
            key_id,
            buckets: vec![UsageBucket { start: 0, counts }],
        };
        let html = chart(&usage, "24 hours", Granularity::Hour);
        assert!(
            html.contains("Verifications by outcome, last 24 hours: 5 (VALID 4, RATE_LIMITED 1)"),
            "{html}"
        );
        assert!(html.contains("<title>1970-01-01 00:00 UTC: VALID 4</title>"));
    }
}
