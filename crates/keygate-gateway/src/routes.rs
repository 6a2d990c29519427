//! The route table: host, longest path prefix on segment boundaries, method.

use std::sync::Arc;

use axum::http::Method;

use super::config::Route;
use super::path::{NormalPath, drop_segments};

/// What a lookup found.
pub enum Lookup<'a> {
    Found(&'a Arc<Route>),
    /// A route serves the path, but not with this method.
    MethodNotAllowed,
    NotFound,
}

/// Routes ordered so that the first match is the most specific: longer
/// prefixes first, and at equal length a route naming the host before one
/// that takes any host.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Arc<Route>>,
}

impl RouteTable {
    pub fn new(routes: Vec<Route>) -> Self {
        let mut routes: Vec<Arc<Route>> = routes.into_iter().map(Arc::new).collect();
        routes.sort_by(|a, b| {
            b.path_prefix
                .len()
                .cmp(&a.path_prefix.len())
                .then_with(|| b.host.is_some().cmp(&a.host.is_some()))
        });
        Self { routes }
    }

    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// `host` may carry a port; it is compared without it, case-insensitively.
    /// `path` is a normalized path's matched form (`NormalPath::matched`).
    pub fn find(&self, host: Option<&str>, path: &str, method: &Method) -> Lookup<'_> {
        let host = host.map(strip_port);
        let mut path_matched = false;
        for route in &self.routes {
            if let Some(want) = &route.host
                && !host.is_some_and(|h| h.eq_ignore_ascii_case(want))
            {
                continue;
            }
            if !prefix_matches(&route.path_prefix, path, route.case_insensitive) {
                continue;
            }
            if route.methods.as_ref().is_some_and(|m| !m.contains(method)) {
                path_matched = true;
                continue;
            }
            return Lookup::Found(route);
        }
        if path_matched {
            Lookup::MethodNotAllowed
        } else {
            Lookup::NotFound
        }
    }
}

/// `/orders` matches `/orders` and `/orders/1`, never `/ordersx`; with
/// `any_case`, `/ORDERS/1` too (ASCII letters only: an escaped byte is
/// compared as its escape).
pub fn prefix_matches(prefix: &str, path: &str, any_case: bool) -> bool {
    if prefix == "/" {
        return path.starts_with('/');
    }
    let Some(head) = path.get(..prefix.len()) else {
        return false;
    };
    let same = if any_case {
        head.eq_ignore_ascii_case(prefix)
    } else {
        head == prefix
    };
    same && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'))
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // An IPv6 literal keeps its brackets; only a port after them goes.
        return host
            .rsplit_once("]:")
            .map_or(host, |(h, _)| h)
            .trim_end_matches(']');
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// The path sent upstream: the upstream's base path, then the request's
/// normalized path with the route prefix removed when the route says so
/// (counted in segments of the matched form, so `;params` inside the
/// prefix go with it), then `?query` when there is one.
pub fn upstream_path(route: &Route, path: &NormalPath<'_>, query: Option<&str>) -> String {
    let full = path.full();
    let rest = if route.strip_prefix && route.path_prefix != "/" {
        let segments = route
            .path_prefix
            .split('/')
            .filter(|s| !s.is_empty())
            .count();
        drop_segments(full, segments)
    } else {
        full
    };
    let rest = if rest.is_empty() { "/" } else { rest };
    let base = &route.upstream.base_path;
    // Sized once: this runs on every request.
    let mut out = String::with_capacity(base.len() + rest.len() + query.map_or(0, |q| q.len() + 1));
    out.push_str(base);
    out.push_str(rest);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::config::parse_text;
    use crate::path::normalize;

    fn table() -> RouteTable {
        let cfg = parse_text(
            r#"
            [gateway]
            [[gateway.routes]]
            name = "root"
            match = { path_prefix = "/" }
            upstream = "http://127.0.0.1:1"
            auth = "none"
            [[gateway.routes]]
            name = "orders"
            match = { path_prefix = "/orders", methods = ["GET"] }
            upstream = "http://127.0.0.1:1/v2"
            auth = "none"
            strip_prefix = true
            [[gateway.routes]]
            name = "orders-api"
            match = { path_prefix = "/orders", host = "api.example" }
            upstream = "http://127.0.0.1:1"
            auth = "none"
            [[gateway.routes]]
            name = "admin"
            match = { path_prefix = "/admin", methods = ["POST"] }
            upstream = "http://127.0.0.1:1"
            auth = "none"
            "#,
        )
        .unwrap()
        .unwrap();
        RouteTable::new(cfg.routes)
    }

    fn name(t: &RouteTable, host: Option<&str>, path: &str, m: Method) -> String {
        match t.find(host, path, &m) {
            Lookup::Found(r) => r.name.clone(),
            Lookup::MethodNotAllowed => "405".into(),
            Lookup::NotFound => "404".into(),
        }
    }

    #[test]
    fn most_specific_route_wins() {
        let t = table();
        assert_eq!(name(&t, None, "/orders/1", Method::GET), "orders");
        assert_eq!(name(&t, None, "/ordersx", Method::GET), "root");
        assert_eq!(
            name(&t, Some("API.example:8000"), "/orders", Method::GET),
            "orders-api"
        );
        assert_eq!(name(&t, None, "/orders", Method::POST), "root");
        assert_eq!(name(&t, None, "/admin", Method::GET), "root");
        let only = RouteTable::new(
            t.routes()
                .iter()
                .filter(|r| r.name == "admin")
                .map(|r| (**r).clone())
                .collect(),
        );
        assert_eq!(name(&only, None, "/admin/x", Method::GET), "405");
        assert_eq!(name(&only, None, "/adminx", Method::POST), "404");
    }

    #[test]
    fn strip_prefix_keeps_a_rooted_path() {
        let t = table();
        let orders = t.by_name("orders").unwrap();
        let up = |r, p| upstream_path(r, &normalize(p).unwrap(), None);
        assert_eq!(up(orders, "/orders"), "/v2/");
        assert_eq!(up(orders, "/orders/7"), "/v2/7");
        assert_eq!(up(orders, "/orders;v=1/7;x"), "/v2/7;x");
        assert_eq!(up(orders, "/;a/orders//7"), "/v2/7");
        let api = t.by_name("orders-api").unwrap();
        assert_eq!(up(api, "/orders/7"), "/orders/7");
        let q = upstream_path(orders, &normalize("/orders/7").unwrap(), Some("a=1&b"));
        assert_eq!(q, "/v2/7?a=1&b");
    }
}
