//! The gateway's routes, read-only, with each one's last minute: request
//! rate, share of 5xx answers and p99 latency, from the gateway's own
//! counters (through [`RoutesView`](crate::RoutesView)).

use askama::Template;
use axum::extract::State;
use axum::response::Html;

use crate::Deps;
use crate::error::PageError;
use crate::render::{Layout, page};
use crate::session::Session;

pub struct RouteView {
    pub name: String,
    pub path: String,
    pub upstream: String,
    pub rate: String,
    pub errors: String,
    pub p99: String,
}

impl RouteView {
    fn of(r: &crate::RouteRow) -> Self {
        Self {
            name: r.name.clone(),
            path: r.path.clone(),
            upstream: r.upstream.clone(),
            rate: format!("{:.2}", r.rate),
            errors: format!("{:.1} %", r.error_share * 100.0),
            p99: r
                .p99_ms
                .map_or_else(|| "—".into(), |ms| format!("{ms:.1} ms")),
        }
    }
}

#[derive(Template)]
#[template(path = "routes.html")]
struct RoutesPage {
    layout: Layout,
    /// None: no `[gateway]` section on this server.
    routes: Option<Vec<RouteView>>,
}

pub async fn show(State(deps): State<Deps>, session: Session) -> Result<Html<String>, PageError> {
    let routes = deps
        .routes
        .as_ref()
        .map(|v| v.routes().iter().map(RouteView::of).collect());
    page(&RoutesPage {
        layout: session.layout("Routes", "/routes"),
        routes,
    })
}
