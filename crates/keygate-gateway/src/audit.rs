//! Refusals in the audit log. Every policy refusal (a 4xx: no or bad
//! credentials, a scope, role or tenant the route needs, a limit) is
//! counted into the node's audit tallies, one row per route, reason,
//! principal (else client address) and minute, so a flood of refusals is a
//! few rows, not a row each. Counting is in memory and never waits for
//! storage; the audit log's flush writes the tallies.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use keygate_core::audit::{AuditLog, Failure, FailureKind};
use prometheus_client::metrics::counter::Counter;

use super::outcome::{self, Outcome};
use super::refusal::Refusal;

/// Where refusals are counted: the node's audit log, and the counter of
/// those it had to drop (`keygate_audit_dropped_total`, the admin API's).
#[derive(Clone)]
pub struct RefusalAudit {
    pub log: Arc<AuditLog>,
    pub dropped: Counter,
}

/// Whom a refusal is counted against.
#[derive(Debug, Clone, Default)]
pub struct Blame {
    /// The key id or user a verified credential named, when the refusal
    /// came after one did (over a limit, a scope or role short).
    pub principal: Option<String>,
    /// The client's address, as the route's limit counts it.
    pub source: Option<IpAddr>,
}

impl Refusal {
    /// The principal a verified credential named; refusals before one did
    /// are counted by address.
    pub fn by(mut self, principal: Option<&str>) -> Self {
        self.blame.principal = principal.map(str::to_owned);
        self
    }

    /// The client's address (`peer` as admission was given it).
    pub fn from_peer(mut self, peer: &str) -> Self {
        self.blame.source = peer.parse().ok();
        self
    }
}

impl Outcome {
    /// Admission refused the request: the reason the metrics count, and
    /// whom the audit log counts it against.
    pub fn refused(&mut self, refusal: &Refusal) {
        self.failure = Some(outcome::Failure::Refused(refusal.reason));
        self.blame = refusal.blame.clone();
    }
}

impl RefusalAudit {
    /// Counts a refused request towards its tally; anything else (admitted,
    /// unjudgeable, failed after admission) is not counted.
    pub fn record(&self, outcome: &Outcome, method: &Method, status: StatusCode, request_id: &str) {
        let Some(outcome::Failure::Refused(reason)) = &outcome.failure else {
            return;
        };
        // A 503 (storage or the shared limiter down) decided nothing about
        // the client.
        if !status.is_client_error() {
            return;
        }
        let counted = self.log.record_failure(Failure {
            kind: FailureKind::GatewayRefusal,
            source: outcome.blame.source,
            principal: outcome.blame.principal.as_deref(),
            reason: reason.as_str(),
            route: outcome.route_name(),
            method: crate::metrics::method_label(method),
            request_id: Some(request_id),
        });
        if !counted {
            self.dropped.inc();
        }
    }
}
