//! The admin API's JSON shapes (written once, in `keygate-api`) built from
//! the domain, and the parsing of what clients send (times, cursors, page
//! sizes). Times are RFC 3339 strings on the wire and Unix seconds inside.

use keygate_api::audit::AuditView;
use keygate_api::common::{PropagationView, RateLimitState, RateLimitView};
use keygate_api::keys::KeyView;
use keygate_cluster::Propagation;
use keygate_core::model::{AuditRow, KeyRecord, RateLimitSpec};
use keygate_core::ratelimit::RateDecision;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use keygate_http::ApiError;

pub fn rfc3339(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

pub fn parse_time(field: &'static str, text: &str) -> Result<i64, ApiError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_request",
                format!("{field}: {text:?} is not an RFC 3339 time such as 2030-01-31T12:00:00Z"),
            )
        })
}

/// A key as the API shows it, its status as of `now`.
pub fn key_view(k: &KeyRecord, now: i64) -> KeyView {
    let status = if k.revoked_at.is_some() {
        "revoked"
    } else if k.expires_at.is_some_and(|at| at <= now) {
        "expired"
    } else {
        "active"
    };
    KeyView {
        id: k.id.to_string(),
        name: k.name.clone(),
        owner: k.owner.clone(),
        tenant: k.tenant.as_ref().map(|t| t.as_str().to_owned()),
        scopes: k.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        metadata: k.metadata.clone(),
        env: k.env.as_str().into(),
        prefix: k.prefix.clone(),
        status: status.into(),
        created_at: rfc3339(k.created_at),
        updated_at: rfc3339(k.updated_at),
        expires_at: k.expires_at.map(rfc3339),
        revoked_at: k.revoked_at.map(rfc3339),
        last_used_at: k.last_used_at.map(rfc3339),
        rate_limit: k.rate_limit.map(rate_limit_view),
        remaining: k.remaining,
        propagation: None,
    }
}

pub fn rate_limit_view(spec: RateLimitSpec) -> RateLimitView {
    RateLimitView {
        limit: spec.limit,
        period_seconds: spec.period_seconds,
    }
}

pub fn rate_limit_spec(view: RateLimitView) -> RateLimitSpec {
    RateLimitSpec {
        limit: view.limit,
        period_seconds: view.period_seconds,
    }
}

/// A rate-limit decision as the API shows it, `reset` in Unix milliseconds.
pub fn rate_limit_state(d: &RateDecision, now_ms: i64) -> RateLimitState {
    RateLimitState {
        limit: d.limit,
        remaining: d.remaining,
        reset: now_ms + d.reset_ms,
    }
}

pub fn audit_view(row: AuditRow) -> AuditView {
    let e = row.entry;
    AuditView {
        id: e.id,
        at: rfc3339(e.at),
        count: row.count,
        first_seen: rfc3339(e.at),
        last_seen: rfc3339(row.last_at),
        action: e.action,
        actor: e.actor,
        target: e.target,
        tenant: e.tenant,
        request_id: e.request_id,
        detail: e.detail,
    }
}

/// Cursors are opaque to clients; inside they are a storage sequence number.
pub fn encode_cursor(seq: i64) -> String {
    format!("c{seq}")
}

pub fn decode_cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    cursor
        .map(|c| {
            c.strip_prefix('c')
                .and_then(|n| n.parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_cursor",
                        "cursor: not a cursor this server issued",
                    )
                })
        })
        .transpose()
}

pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=keygate_core::model::MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::bad_request(
            "invalid_request",
            format!("limit: between 1 and {}", keygate_core::model::MAX_PAGE),
        )),
    }
}

pub fn propagation_view(p: Propagation) -> PropagationView {
    PropagationView {
        seq: p.seq,
        live_nodes: p.live_nodes,
        acked: p.acked,
        unconfirmed: p.unconfirmed,
        bound_ms: p.bound_ms,
    }
}
