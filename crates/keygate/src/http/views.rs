//! The JSON shapes of the admin API and their conversions from the domain.
//! Times are RFC 3339 strings on the wire and Unix seconds inside.

use keygate_cluster::Propagation;
use keygate_core::model::{AuditRow, KeyRecord, RateLimitSpec};
use keygate_core::ratelimit::RateDecision;
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use super::error::ApiError;

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

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    /// Public id, `key_` + 16 characters.
    pub id: String,
    pub name: String,
    pub owner: String,
    pub tenant: Option<String>,
    pub scopes: Vec<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// `live` or `test`.
    pub env: &'static str,
    /// The start of the key, safe to display (`kg_live_AbCd`).
    pub prefix: String,
    /// `active`, `expired` or `revoked`.
    pub status: &'static str,
    pub created_at: String,
    pub updated_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
    #[schema(value_type = Option<RateLimitView>)]
    pub rate_limit: Option<RateLimitSpec>,
    /// Usage credits left; absent means unlimited.
    pub remaining: Option<i64>,
    /// With `?wait=all` only: how far the change has spread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation: Option<PropagationView>,
}

/// `limit` requests per `period_seconds`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RateLimitView {
    pub limit: u32,
    pub period_seconds: u32,
}

impl KeyView {
    pub fn new(k: &KeyRecord, now: i64) -> Self {
        let status = if k.revoked_at.is_some() {
            "revoked"
        } else if k.expires_at.is_some_and(|at| at <= now) {
            "expired"
        } else {
            "active"
        };
        Self {
            id: k.id.to_string(),
            name: k.name.clone(),
            owner: k.owner.clone(),
            tenant: k.tenant.as_ref().map(|t| t.as_str().to_owned()),
            scopes: k.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            metadata: k.metadata.clone(),
            env: k.env.as_str(),
            prefix: k.prefix.clone(),
            status,
            created_at: rfc3339(k.created_at),
            updated_at: rfc3339(k.updated_at),
            expires_at: k.expires_at.map(rfc3339),
            revoked_at: k.revoked_at.map(rfc3339),
            last_used_at: k.last_used_at.map(rfc3339),
            rate_limit: k.rate_limit,
            remaining: k.remaining,
            propagation: None,
        }
    }
}

/// A key with its secret: returned only by create and rotate.
#[derive(Serialize, ToSchema)]
pub struct IssuedKeyView {
    #[serde(flatten)]
    pub record: KeyView,
    /// The secret. Shown this once; keygate keeps only a keyed hash of it.
    pub key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub data: Vec<KeyView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RateLimitState {
    pub limit: u32,
    pub remaining: u32,
    /// Unix time in milliseconds when the quota is fully restored.
    pub reset: i64,
}

impl RateLimitState {
    pub fn new(d: &RateDecision, now_ms: i64) -> Self {
        Self {
            limit: d.limit,
            remaining: d.remaining,
            reset: now_ms + d.reset_ms,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub id: String,
    /// When it happened; for a tally, the first time.
    pub at: String,
    /// How many times: 1 for an event, more for a tally of like failures
    /// (same source, reason and route within one minute).
    pub count: i64,
    pub first_seen: String,
    pub last_seen: String,
    pub action: String,
    pub actor: String,
    pub target: Option<String>,
    pub tenant: Option<String>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl From<AuditRow> for AuditView {
    fn from(row: AuditRow) -> Self {
        let e = row.entry;
        Self {
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
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    pub data: Vec<AuditView>,
    pub next_cursor: Option<String>,
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

/// How far a change has spread: every live node applied `seq`, or the
/// `unconfirmed` ones, which stop answering from their caches by `bound_ms`
/// after the write.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PropagationView {
    /// The feed position the change is at or below.
    pub seq: i64,
    pub live_nodes: usize,
    pub acked: usize,
    /// Live nodes that had not applied it when the answer was sent.
    pub unconfirmed: Vec<String>,
    /// S, in milliseconds (0 on a single node).
    pub bound_ms: i64,
}

impl From<Propagation> for PropagationView {
    fn from(p: Propagation) -> Self {
        Self {
            seq: p.seq,
            live_nodes: p.live_nodes,
            acked: p.acked,
            unconfirmed: p.unconfirmed,
            bound_ms: p.bound_ms,
        }
    }
}
