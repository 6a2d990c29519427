//! `GET /v1/audit`: the audit trail.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditView {
    pub id: String,
    /// When it happened; for a tally, the first time.
    pub at: String,
    /// How many times: 1 for an event, more for a tally of like failures
    /// or gateway refusals (same source or principal, reason and route
    /// within one minute).
    pub count: i64,
    pub first_seen: String,
    pub last_seen: String,
    pub action: String,
    pub actor: String,
    pub target: Option<String>,
    pub tenant: Option<String>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Value,
}

/// The query of `GET /v1/audit`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// e.g. `key.created`, `auth.failed`, `gateway.refused`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}
