//! Liveness, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use keygate_http::ApiError;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Storage answers, and (many nodes) this node has confirmed within S that
/// it applied every committed change: otherwise it would answer 503 to
/// credentials, and a load balancer should send traffic elsewhere.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200), (status = 503)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.storage.ping().await?;
    let freshness = state.keys.freshness();
    freshness.ensure().await?;
    // `serve_cached` lets `ensure` pass while stale; readiness does not.
    if !freshness.is_fresh() {
        return Err(keygate_core::Error::Storage(
            "this node could not confirm its caches within S".into(),
        )
        .into());
    }
    Ok(Json(json!({
        "status": "ready",
        "storage": state.storage.backend(),
        "confirmed_age_ms": freshness.bound_ms().and(freshness.confirmed_age_ms()),
    })))
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, content_type = "application/openmetrics-text")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    state
        .metrics
        .cached_keys
        .set(i64::try_from(state.keys.cache_len()).unwrap_or(i64::MAX));
    let (stale, refused) = state.keys.freshness().counts();
    let cluster = &state.metrics.cluster;
    cluster.set_counts(stale, refused);
    if let Some(c) = &state.cluster {
        cluster.applied_seq.set(c.node.applied());
        cluster
            .confirmed_age_ms
            .set(state.keys.freshness().confirmed_age_ms().unwrap_or(-1));
        cluster.live_nodes.set(i64::from(
            c.membership
                .live_count()
                .load(std::sync::atomic::Ordering::Acquire),
        ));
    }
    let mut res = state.metrics.render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    res
}
