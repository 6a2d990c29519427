//! Prometheus metrics, rendered as text on `GET /metrics`.

use std::sync::Arc;

use keygate_core::{Verification, VerifyCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub result: &'static str,
}

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

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub verifications: Family<CodeLabels, Counter>,
    pub verify_seconds: Histogram,
    pub cache: Family<CacheLabels, Counter>,
    pub cached_keys: Gauge,
    pub audit_dropped: Counter,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("keygate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        let verifications = Family::<CodeLabels, Counter>::default();
        registry.register(
            "key_verifications",
            "Keys verified through POST /v1/keys/verify, by result code",
            verifications.clone(),
        );
        // From 5 µs (a cache hit) to about 80 ms (a slow database).
        let verify_seconds = Histogram::new([
            5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2,
            1e-1,
        ]);
        registry.register(
            "key_verification_duration_seconds",
            "Time to verify a key for POST /v1/keys/verify, in process",
            verify_seconds.clone(),
        );
        let cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "key_cache_lookups",
            "Key cache lookups by result (hit or miss)",
            cache.clone(),
        );
        let cached_keys = Gauge::default();
        registry.register(
            "key_cache_entries",
            "Keys currently cached",
            cached_keys.clone(),
        );
        let audit_dropped = Counter::default();
        registry.register(
            "audit_dropped",
            "auth.failed audit entries dropped because the writer fell behind",
            audit_dropped.clone(),
        );
        for code in VerifyCode::ALL {
            let _ = verifications.get_or_create(&CodeLabels {
                code: code.as_str(),
            });
        }
        for result in ["hit", "miss"] {
            let _ = cache.get_or_create(&CacheLabels { result });
        }
        Arc::new(Self {
            registry,
            requests,
            verifications,
            verify_seconds,
            cache,
            cached_keys,
            audit_dropped,
        })
    }

    pub fn observe_verification(&self, v: &Verification, seconds: f64) {
        self.verifications
            .get_or_create(&CodeLabels {
                code: v.code.as_str(),
            })
            .inc();
        self.verify_seconds.observe(seconds);
        if v.code != VerifyCode::Malformed {
            let result = if v.cached { "hit" } else { "miss" };
            self.cache.get_or_create(&CacheLabels { result }).inc();
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
