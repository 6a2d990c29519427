//! `GET /v1/cluster` and the answer of a write made with `?wait=all`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::common::PropagationView;

/// The body of `POST /v1/auth/logout?wait=all`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PropagationBody {
    pub propagation: PropagationView,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterNodeView {
    pub node_id: String,
    /// Whether its heartbeat is recent (younger than `live_timeout_ms`).
    pub live: bool,
    pub started_at: String,
    /// Milliseconds since its last heartbeat.
    pub last_seen_ms_ago: i64,
    pub applied_seq: i64,
    /// `head - applied_seq` at its last heartbeat's reading.
    pub lag: i64,
    /// Milliseconds between its last confirmation and its last heartbeat.
    pub confirmed_age_ms: Option<i64>,
    /// The rate limiter's state as the node reported it.
    #[schema(value_type = Object)]
    pub limiter: Value,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterView {
    /// `cluster` (PostgreSQL) or `single_node` (SQLite).
    #[schema(value_type = String)]
    pub mode: Cow<'static, str>,
    /// The node that answered.
    pub node_id: Option<String>,
    /// The feed's newest seq.
    pub head: i64,
    /// S, in milliseconds.
    pub bound_ms: Option<i64>,
    pub live_timeout_ms: Option<i64>,
    pub nodes: Vec<ClusterNodeView>,
}
