//! Refusals in the audit log. Every policy refusal (a 4xx: no or bad
//! credentials, a scope, role or tenant the route needs, a limit) is
//! counted into the node's audit tallies, one row per route, reason,
//! principal (else client address) and minute, so a flood of refusals is a
//! few rows, not a row each. Counting is in memory and never waits for
//! storage; the audit log's flush writes the tallies.

use axum::http::{Method, StatusCode};
use keygate_core::audit::{Failure, FailureKind};

use super::deps::RefusalAudit;
use super::outcome::{self, Outcome};
use super::refusal::Refusal;

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
        let blame = outcome.blame.as_deref();
        let counted = self.log.record_failure(Failure {
            kind: FailureKind::GatewayRefusal,
            source: blame.and_then(|b| b.source),
            principal: blame.and_then(|b| b.principal.as_deref()),
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
