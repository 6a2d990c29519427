//! The dashboard's routes page reads the gateway through `RoutesView`: the
//! dashboard crate does not depend on the gateway, the binary joins them.

use std::sync::Arc;

use keygate_dashboard::{RouteRow, RoutesView};

use crate::gateway::Gateway;
use crate::gateway::config::Route;
use crate::gateway::stats::RouteWindow;

pub(super) struct GatewayRoutes(pub(super) Arc<Gateway>);

/// `host/prefix [METHODS]`, as the routes page shows what a route matches.
fn matches(route: &Route) -> String {
    let mut text = format!(
        "{}{}",
        route.host.as_deref().unwrap_or(""),
        route.path_prefix
    );
    if let Some(methods) = &route.methods {
        let names: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
        text.push_str(&format!(" [{}]", names.join(" ")));
    }
    text
}

fn row(route: &Route, window: Option<RouteWindow>) -> RouteRow {
    RouteRow {
        name: route.name.clone(),
        path: matches(route),
        upstream: format!(
            "{}://{}{}",
            route.upstream.scheme, route.upstream.authority, route.upstream.base_path
        ),
        rate: window.map_or(0.0, |w| w.per_second()),
        error_share: window.and_then(|w| w.error_share()).unwrap_or(0.0),
        p99_ms: window.and_then(|w| w.p99).map(|d| d.as_secs_f64() * 1000.0),
    }
}

impl RoutesView for GatewayRoutes {
    fn routes(&self) -> Vec<RouteRow> {
        self.0
            .route_stats()
            .iter()
            .map(|(route, window)| row(route, *window))
            .collect()
    }
}
