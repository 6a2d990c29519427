//! The route table: host, longest path prefix on segment boundaries, method.

use std::sync::Arc;

use axum::http::Method;

use super::config::Route;

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
    pub fn find(&self, host: Option<&str>, path: &str, method: &Method) -> Lookup<'_> {
        let host = host.map(strip_port);
        let mut path_matched = false;
        for route in &self.routes {
            if let Some(want) = &route.host
                && !host.is_some_and(|h| h.eq_ignore_ascii_case(want))
            {
                continue;
            }
            if !prefix_matches(&route.path_prefix, path) {
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

/// Whether a path can be matched by prefix and forwarded as it is. A dot
/// segment (`/open/../admin`), plain or percent-encoded, or an encoded slash
/// or backslash could match one route here and reach another upstream path
/// once the upstream normalizes it, so such paths are refused.
pub fn is_safe_path(path: &str) -> bool {
    if !path.starts_with('/') || path.contains('\\') {
        return false;
    }
    let encoded = |at: usize, hex: &[u8; 2]| {
        path.as_bytes()
            .get(at + 1..at + 3)
            .is_some_and(|h| h.eq_ignore_ascii_case(hex))
    };
    // Checked without allocating: this runs on every proxied request.
    let bytes = path.as_bytes();
    if (0..bytes.len()).any(|i| bytes[i] == b'%' && (encoded(i, b"2f") || encoded(i, b"5c"))) {
        return false;
    }
    path.split('/').all(|segment| {
        let mut dots = 0;
        let mut rest = segment.as_bytes();
        while !rest.is_empty() {
            if rest[0] == b'.' {
                rest = &rest[1..];
            } else if rest.len() >= 3 && rest[0] == b'%' && rest[1..3].eq_ignore_ascii_case(b"2e") {
                rest = &rest[3..];
            } else {
                return true;
            }
            dots += 1;
        }
        !(dots == 1 || dots == 2)
    })
}

/// `/orders` matches `/orders` and `/orders/1`, never `/ordersx`.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return path.starts_with('/');
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
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
/// path with the route prefix removed when the route says so.
pub fn upstream_path(route: &Route, path: &str) -> String {
    let rest = if route.strip_prefix && route.path_prefix != "/" {
        path.strip_prefix(route.path_prefix.as_str())
            .unwrap_or(path)
    } else {
        path
    };
    let rest = if rest.is_empty() { "/" } else { rest };
    format!("{}{rest}", route.upstream.base_path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::gateway::config::parse_text;

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
    fn dot_segments_and_encoded_slashes_are_unsafe() {
        for bad in [
            "/open/../admin",
            "/open/..",
            "/open/./x",
            "/open/%2e%2E/admin",
            "/open/.%2e/admin",
            "/open%2fadmin",
            "/open\\..\\admin",
            "relative",
        ] {
            assert!(!is_safe_path(bad), "{bad}");
        }
        for good in [
            "/",
            "/open/a.b",
            "/open/...",
            "/open/.well-known/x",
            "/a%20b",
        ] {
            assert!(is_safe_path(good), "{good}");
        }
    }

    #[test]
    fn strip_prefix_keeps_a_rooted_path() {
        let t = table();
        let orders = t.by_name("orders").unwrap();
        assert_eq!(upstream_path(orders, "/orders"), "/v2/");
        assert_eq!(upstream_path(orders, "/orders/7"), "/v2/7");
        let api = t.by_name("orders-api").unwrap();
        assert_eq!(upstream_path(api, "/orders/7"), "/orders/7");
    }
}
