//! The log phase: what the access log and the metrics learn of a request,
//! typed until the moment it becomes a label.

use std::sync::Arc;
use std::time::Instant;

use axum::http::{Method, StatusCode};

use super::Gateway;
use super::config::Route;
use super::failure::{Fault, ProxyError};
use super::forward_auth::Unjudgeable;
use super::identity::Identity;
use super::refusal::{Blame, Reason};

/// Why a request did not reach (or came back from) its upstream well.
#[derive(Debug)]
pub enum Failure {
    /// Admission refused it.
    Refused(Reason),
    /// Forward-auth could not judge the original request.
    Unjudgeable(Unjudgeable),
    /// After admission: whose fault, and the label (None for what is no
    /// failure of the route).
    Proxy {
        fault: Fault,
        label: Option<&'static str>,
    },
}

impl Failure {
    pub fn label(&self) -> Option<&'static str> {
        match self {
            Failure::Refused(r) => Some(r.as_str()),
            Failure::Unjudgeable(u) => Some(u.code()),
            Failure::Proxy { label, .. } => *label,
        }
    }
}

impl From<&ProxyError> for Failure {
    fn from(e: &ProxyError) -> Self {
        Failure::Proxy {
            fault: e.fault(),
            label: e.label(),
        }
    }
}

/// What the access log and the metrics need to know about a request.
pub struct Outcome {
    /// The matched route (its name and metric handles); None: `unmatched`.
    pub route: Option<Arc<Route>>,
    pub identity: Option<Identity>,
    pub failure: Option<Failure>,
    /// Whom a refusal is counted against in the audit log.
    pub blame: Option<Box<Blame>>,
}

impl Outcome {
    pub fn new(route: Option<Arc<Route>>) -> Self {
        Self {
            route,
            identity: None,
            failure: None,
            blame: None,
        }
    }

    /// The route label for logs and metrics.
    pub fn route_name(&self) -> &str {
        self.route.as_ref().map_or("unmatched", |r| r.name.as_str())
    }

    fn rate_limited(&self) -> bool {
        matches!(self.failure, Some(Failure::Refused(Reason::RateLimited)))
    }
}

impl Gateway {
    /// One access-log line and the route's metrics. The path and query are
    /// left out: a client may have pasted a secret into either.
    pub fn record(
        &self,
        outcome: &Outcome,
        method: &Method,
        status: StatusCode,
        started: Instant,
        request_id: &str,
    ) {
        let elapsed = started.elapsed();
        let seconds = elapsed.as_secs_f64();
        let failure = outcome.failure.as_ref().and_then(Failure::label);
        self.deps.metrics.observe(
            outcome.route_name(),
            outcome.route.as_deref().map(|r| &*r.metrics),
            status,
            seconds,
            failure,
            outcome.rate_limited(),
        );
        if let Some(route) = &outcome.route {
            let ring = route
                .metrics
                .stats
                .get_or_init(|| self.stats.route(&route.name));
            ring.record_at(self.stats.now_ms(), status.as_u16(), elapsed);
        }
        self.deps.audit.record(outcome, method, status, request_id);
        let id = outcome.identity.as_ref();
        tracing::info!(
            target: "keygate::access",
            route = %outcome.route_name(),
            method = crate::metrics::method_label(method),
            status = status.as_u16(),
            micros = elapsed.as_micros() as u64,
            key_id = id.and_then(|i| i.key_id.as_ref().map(keygate_core::KeyId::as_str)).unwrap_or("-"),
            client_id = id
                .and_then(|i| i.client_id.as_ref().map(keygate_core::jwt::ClientRef::as_str))
                .unwrap_or("-"),
            subject = id.and_then(Identity::token_subject).unwrap_or("-"),
            failure = failure.unwrap_or("-"),
            %request_id,
            "request"
        );
    }
}
