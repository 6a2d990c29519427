//! Prometheus metrics, rendered as text on `GET /metrics`.

use std::sync::Arc;

use keygate_core::{Verification, VerifyCode};
use keygate_extauthz::ExtAuthzMetrics;
use keygate_gateway::metrics::GatewayMetrics;
pub use keygate_gateway::metrics::method_label;
use keygate_http::metrics::Reg;
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

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub verifications: Family<CodeLabels, Counter>,
    pub verify_seconds: Histogram,
    pub cache: Family<CacheLabels, Counter>,
    pub cached_keys: Gauge,
    pub audit_dropped: Counter,
    /// Handshakes that refused a client certificate, by refusal code.
    pub tls_client_certificate_refusals: Family<CodeLabels, Counter>,
    pub gateway: Arc<GatewayMetrics>,
    /// `[ext_authz]`'s checks, by result.
    pub ext_authz: ExtAuthzMetrics,
    pub cluster: ClusterMetrics,
    /// `keygate_invalidation_lag_seconds`: feed entry appended (database
    /// clock) to applied on this node (wall clock).
    pub invalidation_lag: Histogram,
}

/// The feed's state on this node, set when `/metrics` is rendered.
pub struct ClusterMetrics {
    pub applied_seq: Gauge,
    pub confirmed_age_ms: Gauge,
    pub stale_served: Counter,
    pub unconfirmed_refused: Counter,
    pub live_nodes: Gauge,
}

impl ClusterMetrics {
    fn register(registry: &mut Registry) -> Self {
        let mut r = Reg(registry);
        Self {
            applied_seq: r.register(
                "feed_applied_seq",
                "The last invalidation feed entry this node applied",
                Gauge::default(),
            ),
            confirmed_age_ms: r.register(
                "feed_confirmed_age_milliseconds",
                "Time since this node last confirmed it applied every committed change",
                Gauge::default(),
            ),
            stale_served: r.register(
                "stale_cache_answers",
                "Answers served from caches that could not be confirmed within S (stale_policy = serve_cached)",
                Counter::default(),
            ),
            unconfirmed_refused: r.register(
                "unconfirmed_refusals",
                "Requests answered 503 because this node could not confirm its caches within S",
                Counter::default(),
            ),
            live_nodes: r.register(
                "cluster_live_nodes",
                "Nodes whose heartbeat is recent",
                Gauge::default(),
            ),
        }
    }

    /// Brings the counters up to the freshness gate's own tallies.
    pub fn set_counts(&self, stale_served: u64, refused: u64) {
        self.stale_served
            .inc_by(stale_served.saturating_sub(self.stale_served.get()));
        self.unconfirmed_refused
            .inc_by(refused.saturating_sub(self.unconfirmed_refused.get()));
    }
}

/// From 5 µs (a cache hit) to about 80 ms (a slow database).
const VERIFY_BUCKETS: [f64; 14] = [
    5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 1e-1,
];

/// From 100 µs (same host) to 10 s (a node that was cut off).
const LAG_BUCKETS: [f64; 15] = [
    1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Every verify code and cache result shows from the start, at zero.
fn show_at_zero(verifications: &Family<CodeLabels, Counter>, cache: &Family<CacheLabels, Counter>) {
    for code in VerifyCode::ALL {
        let _ = verifications.get_or_create(&CodeLabels {
            code: code.as_str(),
        });
    }
    for result in ["hit", "miss"] {
        let _ = cache.get_or_create(&CacheLabels { result });
    }
}

/// `keygate_tls_client_certificate_refusals_total`, counted by the
/// listeners' TLS (`tls::Tls`).
fn tls_refusals(r: &mut Reg<'_>) -> Family<CodeLabels, Counter> {
    r.register(
        "tls_client_certificate_refusals",
        "TLS handshakes on keygate's listeners that refused a client certificate, by code",
        Family::<CodeLabels, Counter>::default(),
    )
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("keygate");
        let mut r = Reg(&mut registry);
        let requests = r.register(
            "http_requests",
            "HTTP requests by route, method and status",
            Family::<RequestLabels, Counter>::default(),
        );
        let verifications = r.register(
            "key_verifications",
            "Keys verified through POST /v1/keys/verify, by result code",
            Family::<CodeLabels, Counter>::default(),
        );
        let verify_seconds = r.register(
            "key_verification_duration_seconds",
            "Time to verify a key for POST /v1/keys/verify, in process",
            Histogram::new(VERIFY_BUCKETS),
        );
        let cache = r.register(
            "key_cache_lookups",
            "Key cache lookups by result (hit or miss)",
            Family::<CacheLabels, Counter>::default(),
        );
        let cached_keys = r.register(
            "key_cache_entries",
            "Keys currently cached",
            Gauge::default(),
        );
        let audit_dropped = r.register(
            "audit_dropped",
            "Failed authentications and gateway refusals not written to the audit log because too many tallies waited for storage (each drop is also written later as an audit.dropped row)",
            Counter::default(),
        );
        let tls_client_certificate_refusals = tls_refusals(&mut r);
        let invalidation_lag = r.register(
            "invalidation_lag_seconds",
            "From a feed entry's commit (database clock) to its application on this node",
            Histogram::new(LAG_BUCKETS),
        );
        show_at_zero(&verifications, &cache);
        let gateway = Arc::new(GatewayMetrics::register(&mut registry));
        let cluster = ClusterMetrics::register(&mut registry);
        let ext_authz = ExtAuthzMetrics::register(&mut registry);
        Arc::new(Self {
            cluster,
            ext_authz,
            invalidation_lag,
            gateway,
            registry,
            requests,
            verifications,
            verify_seconds,
            cache,
            cached_keys,
            audit_dropped,
            tls_client_certificate_refusals,
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
