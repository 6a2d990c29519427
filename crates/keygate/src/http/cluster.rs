//! Many nodes over HTTP: `GET /v1/cluster` (root admin), and `?wait=all`
//! on the writes that revoke (key revoke, revoke-sessions, logout,
//! signing-secret replacement): the answer waits until every live node has
//! applied the change, or S, and says which nodes did not confirm.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use keygate_api::cluster::{ClusterNodeView, ClusterView};
use keygate_api::common::PropagationView;
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::extract::AdminAuth;
use super::views::{propagation_view, rfc3339};
use keygate_http::ApiError;

/// `?wait=all`: present means wait for every live node.
#[derive(Debug, Clone, Copy)]
pub struct WaitAll(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for WaitAll {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(query) = parts.uri.query() else {
            return Ok(Self(false));
        };
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|_| {
            ApiError::bad_request("invalid_request", "the query string is malformed")
        })?;
        let mut wait = false;
        for (name, value) in pairs {
            match (name.as_str(), value.as_str()) {
                ("wait", "all") => wait = true,
                ("wait", _) => {
                    return Err(ApiError::bad_request(
                        "invalid_request",
                        "wait: the only value is `all`",
                    ));
                }
                _ => {}
            }
        }
        Ok(Self(wait))
    }
}

/// The value of `wait`.
#[derive(Debug, Clone, Copy, serde::Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WaitValue {
    All,
}

/// The `wait` query parameter, for the OpenAPI document.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitParam {
    /// `all`: answer once every live node has applied the change (its
    /// caches refuse what was revoked), or after S at the latest; the
    /// answer then carries `propagation`.
    pub wait: Option<WaitValue>,
}

/// Waits for the change just written, when asked to. A single node
/// (SQLite) has applied it already.
pub async fn propagate(
    state: &AppState,
    wait: WaitAll,
) -> Result<Option<PropagationView>, ApiError> {
    if !wait.0 {
        return Ok(None);
    }
    let view = match &state.cluster {
        Some(cluster) => propagation_view(cluster.wait_all().await?),
        None => PropagationView {
            seq: 0,
            live_nodes: 1,
            acked: 1,
            unconfirmed: Vec::new(),
            bound_ms: 0,
        },
    };
    Ok(Some(view))
}

/// The nodes sharing this database: liveness, feed position, limiter state.
#[utoipa::path(get, path = "/v1/cluster", operation_id = "show_cluster", tag = "ops",
    responses((status = 200, body = ClusterView), (status = 401), (status = 403)),
    security(("api_key" = [])))]
pub async fn show(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
) -> Result<Json<ClusterView>, ApiError> {
    if admin.tenant().is_some() {
        return Err(ApiError::forbidden(
            "the cluster is server-wide: only a root admin key may see it",
        ));
    }
    let Some(cluster) = &state.cluster else {
        return Ok(Json(ClusterView {
            mode: "single_node".into(),
            node_id: None,
            head: 0,
            bound_ms: None,
            live_timeout_ms: None,
            nodes: Vec::new(),
        }));
    };
    let store = &cluster.feed;
    let head = store.feed_head().await?;
    let now_ms = keygate_core::MillisClock::now_millis(&keygate_core::SystemClock);
    let live_timeout = cluster.config.live_timeout_ms();
    let nodes = store
        .nodes()
        .await?
        .into_iter()
        .map(|row| ClusterNodeView {
            live: now_ms - row.last_seen_ms <= live_timeout,
            started_at: rfc3339(row.started_ms.div_euclid(1000)),
            last_seen_ms_ago: now_ms - row.last_seen_ms,
            lag: (head - row.applied_seq).max(0),
            confirmed_age_ms: row.info.get("confirmed_age_ms").and_then(Value::as_i64),
            limiter: row.info.get("limiter").cloned().unwrap_or(Value::Null),
            applied_seq: row.applied_seq,
            node_id: row.node_id,
        })
        .collect();
    Ok(Json(ClusterView {
        mode: "cluster".into(),
        node_id: Some(cluster.config.node_id.clone()),
        head,
        bound_ms: Some(cluster.config.confirm_within_ms),
        live_timeout_ms: Some(live_timeout),
        nodes,
    }))
}
