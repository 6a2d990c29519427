//! The gateway's and forward-auth's Prometheus metrics. The families are
//! registered in the binary's registry, which `/metrics` renders.

use keygate_http::metrics::Reg;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The request method as a metric label: made-up methods collapse into
/// `other`, so a client cannot create unbounded label sets.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteClassLabels {
    pub route: String,
    pub class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteReasonLabels {
    pub route: String,
    pub reason: &'static str,
}

fn gateway_histogram() -> Histogram {
    // From 100 µs (an auth-only answer) to 30 s (the default timeout).
    Histogram::new([
        1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        10.0, 30.0,
    ])
}

/// One route's request counters (by status class) and latency histogram,
/// looked up in their families once rather than hashed on every request.
#[derive(Debug, Default)]
pub struct RouteMetrics {
    classes: [std::sync::OnceLock<Counter>; 5],
    seconds: std::sync::OnceLock<Histogram>,
    /// The route's ring in `GatewayStats`, found by name once.
    pub(crate) stats: std::sync::OnceLock<std::sync::Arc<crate::stats::RouteStats>>,
}

/// The gateway's and forward-auth's metrics. Route labels come from the
/// configuration (or `unmatched`), so clients cannot grow the label sets.
pub struct GatewayMetrics {
    pub requests: Family<RouteClassLabels, Counter>,
    pub seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub auth_failures: Family<RouteReasonLabels, Counter>,
    pub upstream_errors: Family<RouteReasonLabels, Counter>,
    pub rate_limited: Family<RouteLabels, Counter>,
}

impl GatewayMetrics {
    /// Registers the gateway's families in the binary's registry (the one
    /// `/metrics` serves), under its `keygate` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let mut r = Reg(registry);
        Self {
            requests: r.register(
                "gateway_requests",
                "Gateway and forward-auth requests by route and status class",
                Family::default(),
            ),
            seconds: r.register(
                "gateway_request_duration_seconds",
                "Gateway request latency to the upstream's response headers, by route",
                Family::new_with_constructor(gateway_histogram),
            ),
            auth_failures: r.register(
                "gateway_auth_failures",
                "Gateway and forward-auth requests refused, by route and reason",
                Family::default(),
            ),
            upstream_errors: r.register(
                "gateway_upstream_errors",
                "Gateway requests whose upstream failed (unreachable, timeout), by route",
                Family::default(),
            ),
            rate_limited: r.register(
                "gateway_rate_limited",
                "Gateway requests refused by a route's rate limit",
                Family::default(),
            ),
        }
    }

    /// `cached`: the route's own handles, when the request matched one.
    pub fn observe(
        &self,
        route: &str,
        cached: Option<&RouteMetrics>,
        status: axum::http::StatusCode,
        seconds: f64,
        failure: Option<&'static str>,
        rate_limited: bool,
    ) {
        const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
        let class = match status.as_u16() {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            _ => 4,
        };
        let count = || {
            self.requests.get_or_create_owned(&RouteClassLabels {
                route: route.to_owned(),
                class: CLASSES[class],
            })
        };
        match cached {
            Some(c) => c.classes[class].get_or_init(count).inc(),
            None => count().inc(),
        };
        if let Some(reason) = failure {
            let family = if reason.starts_with("upstream_") {
                &self.upstream_errors
            } else {
                &self.auth_failures
            };
            family
                .get_or_create(&RouteReasonLabels {
                    route: route.to_owned(),
                    reason,
                })
                .inc();
        }
        if rate_limited {
            self.rate_limited
                .get_or_create(&RouteLabels {
                    route: route.to_owned(),
                })
                .inc();
        }
        let histogram = || {
            self.seconds.get_or_create_owned(&RouteLabels {
                route: route.to_owned(),
            })
        };
        match cached {
            Some(c) => c.seconds.get_or_init(histogram).observe(seconds),
            None => histogram().observe(seconds),
        }
    }
}
