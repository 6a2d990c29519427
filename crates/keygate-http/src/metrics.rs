//! Registering Prometheus metrics (feature `metrics`): the binary's and the
//! gateway's families go into one registry, each declared in one place.

use prometheus_client::registry::{Metric, Registry};

/// Registers a metric and hands it back, so each is named, described and
/// kept in one expression rather than built, then registered by clone.
pub struct Reg<'a>(pub &'a mut Registry);

impl Reg<'_> {
    pub fn register<M: Metric + Clone>(&mut self, name: &str, help: &str, metric: M) -> M {
        self.0.register(name, help, metric.clone());
        metric
    }
}
