//! `/v1/forward-auth` on the admin listener: the HTTP adapter of the
//! gateway's forward-auth decision. Allowed is exactly 200 with an empty
//! body; a refusal is 401, 403 or 429, never a 5xx (a storage failure is
//! 503, which is no decision).

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::gateway::forward_auth::{self, Decided};
use crate::gateway::outcome::Outcome;
use keygate_http::ApiError;

pub use crate::gateway::forward_auth::PATH;

pub async fn handle(State(app): State<AppState>, req: Request) -> Response {
    let started = Instant::now();
    let request_id = keygate_http::request_id_of(req.headers());
    let Some(gateway) = app.gateway.clone() else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "gateway_not_configured",
            "forward-auth needs a [gateway] section with routes",
        )
        .into_response();
    };
    let (req, _) = req.into_parts();
    let peer = req.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let Decided {
        route,
        method,
        verdict,
        // For the route modes that take a client certificate (to come).
        certificate: _,
    } = forward_auth::decide(&gateway, &req, peer).await;
    let mut outcome = Outcome::new(route);
    let res = verdict.answer(&mut outcome);
    gateway.record(&outcome, &method, res.status(), started, &request_id);
    res
}
