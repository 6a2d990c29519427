//! `/v1/keys/{id}/usage` and `/v1/keys/usage`: verification counts per key,
//! by hour or day and outcome, every bucket of the window present.

use axum::Json;
use axum::extract::{RawQuery, State};
use keygate_api::keys::{
    KeyUsageList, KeyUsageManyQuery, KeyUsageQuery, KeyUsageView, UsageBucketView,
};
use keygate_core::keys::usage_counts::HOUR_SECS;
use keygate_core::{Granularity, KeyId, KeyUsage, UsageQuery};
use keygate_http::ApiError;

use super::AppState;
use super::extract::{AdminAuth, KeyIdPath};
use super::keys::parse_query;
use super::views::{parse_time, rfc3339};

/// The window the query names: `until` defaults to the end of the current
/// hour, `since` to 24 hours (by hour) or 30 days (by day) before it.
fn window(
    state: &AppState,
    since: Option<&str>,
    until: Option<&str>,
    granularity: Granularity,
) -> Result<(i64, i64), ApiError> {
    let until = match until {
        Some(t) => parse_time("until", t)?,
        None => {
            let now = state.keys.clock().now_secs();
            now.div_euclid(HOUR_SECS) * HOUR_SECS + HOUR_SECS
        }
    };
    let since = match since {
        Some(t) => parse_time("since", t)?,
        None => match granularity {
            Granularity::Hour => until - 24 * HOUR_SECS,
            Granularity::Day => until - 30 * 24 * HOUR_SECS,
        },
    };
    Ok((since, until))
}

fn granularity_name(g: Granularity) -> &'static str {
    match g {
        Granularity::Hour => "hour",
        Granularity::Day => "day",
    }
}

fn usage_view(u: KeyUsage, g: Granularity) -> KeyUsageView {
    KeyUsageView {
        key_id: u.key_id.to_string(),
        granularity: granularity_name(g).to_owned(),
        buckets: u
            .buckets
            .into_iter()
            .map(|b| UsageBucketView {
                start: rfc3339(b.start),
                total: b.total(),
                counts: b
                    .counts
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
            })
            .collect(),
    }
}

#[utoipa::path(get, path = "/v1/keys/{id}/usage", operation_id = "key_usage", tag = "keys",
    params(("id" = String, Path, pattern = "^key_[0-9A-Za-z]{16}$"),
        ("since" = Option<String>, Query, description = "RFC 3339; default: 24 hours (hour) or 30 days (day) before until"),
        ("until" = Option<String>, Query, description = "RFC 3339, exclusive; default: the end of the current hour"),
        ("granularity" = Option<String>, Query, description = "`hour` (default) or `day`; at most 744 buckets")),
    responses((status = 200, body = KeyUsageView),
        (status = 400, description = "invalid_request or invalid_query: a bad time, granularity or a window of more than 744 buckets"),
        (status = 404)),
    security(("api_key" = [])))]
pub async fn show(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    KeyIdPath(id): KeyIdPath,
    RawQuery(raw): RawQuery,
) -> Result<Json<KeyUsageView>, ApiError> {
    let q: KeyUsageQuery = parse_query(raw.as_deref())?;
    let granularity = match q.granularity.as_deref() {
        None => Granularity::Hour,
        Some(g) => Granularity::parse(g).ok_or_else(|| {
            ApiError::bad_request("invalid_request", "granularity: `hour` or `day`")
        })?,
    };
    let (since, until) = window(&state, q.since.as_deref(), q.until.as_deref(), granularity)?;
    let query = UsageQuery {
        since,
        until,
        granularity,
    };
    let usage = state.keys.usage(&admin, &id, query).await?;
    Ok(Json(usage_view(usage, granularity)))
}

fn parse_ids(ids: &str) -> Result<Vec<KeyId>, ApiError> {
    let ids: Vec<KeyId> = ids
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            KeyId::parse(s).map_err(|_| {
                ApiError::bad_request("invalid_request", "ids: comma-separated key ids (key_...)")
            })
        })
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "ids: at least one key id",
        ));
    }
    Ok(ids)
}

#[utoipa::path(get, path = "/v1/keys/usage", operation_id = "keys_usage", tag = "keys",
    params(("ids" = String, Query, description = "key ids, comma-separated, at most 100"),
        ("since" = Option<String>, Query, description = "RFC 3339; default: 24 hours before until"),
        ("until" = Option<String>, Query, description = "RFC 3339, exclusive; default: the end of the current hour; at most 744 hours")),
    responses((status = 200, body = KeyUsageList),
        (status = 400, description = "invalid_request or invalid_query: bad ids, more than 100, a bad time or a window of more than 744 hours"),
        (status = 404, description = "a tenant admin named a key not in its tenant")),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    RawQuery(raw): RawQuery,
) -> Result<Json<KeyUsageList>, ApiError> {
    let q: KeyUsageManyQuery = parse_query(raw.as_deref())?;
    let ids = parse_ids(&q.ids)?;
    let (since, until) = window(
        &state,
        q.since.as_deref(),
        q.until.as_deref(),
        Granularity::Hour,
    )?;
    let usage = state.keys.usage_many(&admin, &ids, since, until).await?;
    Ok(Json(KeyUsageList {
        data: usage
            .into_iter()
            .map(|u| usage_view(u, Granularity::Hour))
            .collect(),
    }))
}
