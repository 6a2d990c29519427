//! `keygate_ext_authz_checks_total{result}`: every check the listener
//! answered, by what Envoy got, including those no route judged (an
//! untrusted caller, no decision). The decisions themselves are counted
//! per route in the gateway's families, as forward-auth's are; this is the
//! entry's own count, as `keygate_http_requests_total` is forward-auth's.

use keygate_http::metrics::Reg;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// What a check answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckResult {
    /// An `OkHttpResponse`.
    Allowed,
    /// A `DeniedHttpResponse` (401, 403, 429, 400).
    Denied,
    /// `UNAVAILABLE`: keygate could not decide (storage, a shared service).
    Unavailable,
    /// `PERMISSION_DENIED` without a decision: the caller is not in
    /// `trusted_proxies`.
    UntrustedCaller,
    /// `INTERNAL`: a refusal's answer could not be translated.
    Internal,
}

impl CheckResult {
    pub const ALL: [CheckResult; 5] = [
        CheckResult::Allowed,
        CheckResult::Denied,
        CheckResult::Unavailable,
        CheckResult::UntrustedCaller,
        CheckResult::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckResult::Allowed => "allowed",
            CheckResult::Denied => "denied",
            CheckResult::Unavailable => "unavailable",
            CheckResult::UntrustedCaller => "untrusted_caller",
            CheckResult::Internal => "internal",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// The listener's counters, registered in the binary's registry.
#[derive(Debug, Clone)]
pub struct ExtAuthzMetrics {
    checks: Family<ResultLabels, Counter>,
}

impl ExtAuthzMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let checks = Reg(registry).register(
            "ext_authz_checks",
            "Envoy ext_authz gRPC checks answered, by result",
            Family::default(),
        );
        // Every result's series from the start: a rate over a series that
        // appears with its first count misses that count.
        for result in CheckResult::ALL {
            let _ = checks.get_or_create(&ResultLabels {
                result: result.as_str(),
            });
        }
        Self { checks }
    }

    pub fn count(&self, result: CheckResult) {
        self.checks
            .get_or_create(&ResultLabels {
                result: result.as_str(),
            })
            .inc();
    }

    /// The count of `result` so far.
    pub fn get(&self, result: CheckResult) -> u64 {
        self.checks
            .get_or_create(&ResultLabels {
                result: result.as_str(),
            })
            .get()
    }
}
