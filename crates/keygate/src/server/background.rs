//! What runs beside the listeners: the periodic jobs (last-used, usage
//! count and audit flushes, the usage retention purge, the signing-key schedule, blocklist sync, pruning) and the
//! cluster's watcher and heartbeats, and their orderly stop.

use std::sync::Arc;
use std::time::Duration;

use keygate_core::KeyService;
use keygate_core::audit::AuditLog;
use keygate_core::httpsig::HmacService;
use keygate_core::jwt::TokenService;
use keygate_core::sessions::{AuditContext, BLOCKLIST_SYNC_INTERVAL, Blocklist, SessionService};
use tokio::task::JoinHandle;

use crate::config::KeyUsageConfig;
use crate::http::AppState;

/// How often counted failures are written to the audit log.
const AUDIT_FLUSH_EVERY: Duration = Duration::from_secs(1);
const USAGE_FLUSH_EVERY: Duration = Duration::from_secs(10);
/// How often each node runs the signing-key schedule and rereads the keys
/// (another node may have rotated).
const SIGNING_KEYS_EVERY: Duration = Duration::from_secs(10);

/// The server's periodic work and the cluster's tasks, beside the listeners.
pub(super) struct Background {
    /// Aborted at shutdown.
    tasks: Vec<JoinHandle<()>>,
    audit_stop: tokio::sync::oneshot::Sender<()>,
    audit_task: JoinHandle<()>,
}

impl Background {
    pub(super) fn spawn(state: &AppState, key_usage: KeyUsageConfig) -> Self {
        let mut tasks = state
            .cluster
            .as_ref()
            .map(|c| c.spawn())
            .unwrap_or_default();
        let (audit_stop, audit_stopped) = tokio::sync::oneshot::channel();
        let audit_task = tokio::spawn(flush_audit_until(state.audit.clone(), audit_stopped));
        tasks.extend([
            tokio::spawn(flush_usage_forever(state.keys.clone())),
            tokio::spawn(flush_usage_counts_forever(state.keys.clone(), key_usage)),
            tokio::spawn(maintain_signing_keys_forever(state.tokens.clone())),
            tokio::spawn(sync_blocklist_forever(state.blocklist.clone())),
            tokio::spawn(prune_nonces_forever(state.hmac.clone())),
            tokio::spawn(purge_forever(
                state.sessions.clone(),
                state.blocklist.clone(),
                state.audit.clone(),
            )),
        ]);
        if let Some(dashboard) = &state.dashboard {
            tasks.push(tokio::spawn(purge_console_forever(
                dashboard.console.clone(),
            )));
        }
        Self {
            tasks,
            audit_stop,
            audit_task,
        }
    }

    /// After the listeners have finished their requests: leaves the
    /// cluster and writes what is queued.
    pub(super) async fn finish(self, state: &AppState) {
        for task in self.tasks {
            task.abort();
        }
        if let Some(cluster) = &state.cluster {
            cluster.membership.leave().await;
        }
        if let Err(e) = state.keys.flush_usage().await {
            tracing::warn!(error = %e, "could not write last-used times at shutdown");
        }
        if let Err(e) = state.keys.flush_usage_counts().await {
            tracing::error!(error = %e, "could not write the verification counts at shutdown");
        }
        // Not aborted: a flush cut short would lose what it had taken.
        let _ = self.audit_stop.send(());
        let _ = self.audit_task.await;
    }
}

async fn flush_usage_forever(keys: Arc<KeyService>) {
    let mut tick = tokio::time::interval(USAGE_FLUSH_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = keys.flush_usage().await {
            tracing::warn!(error = %e, "could not write last-used times; will retry");
        }
    }
}

/// Writes verification counts every `flush_secs` and, every hour (and at
/// start), deletes those past the retention.
async fn flush_usage_counts_forever(keys: Arc<KeyService>, config: KeyUsageConfig) {
    let mut tick = tokio::time::interval(Duration::from_secs(config.flush_secs));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut purged_at: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        if let Err(e) = keys.flush_usage_counts().await {
            tracing::warn!(error = %e, "could not write verification counts; will retry");
        }
        if purged_at.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
            purged_at = Some(tokio::time::Instant::now());
            if let Err(e) = keys.purge_usage(config.retention_days).await {
                tracing::warn!(error = %e, "could not purge old verification counts; will retry");
            }
        }
    }
}

async fn maintain_signing_keys_forever(tokens: Arc<TokenService>) {
    let mut tick = tokio::time::interval(SIGNING_KEYS_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = tokens.maintain().await {
            tracing::warn!(error = %e, "could not run the signing-key schedule; will retry");
        }
    }
}

/// Also what drops expired entries from memory, so it runs on one node too.
async fn sync_blocklist_forever(blocklist: Arc<Blocklist>) {
    let mut tick = tokio::time::interval(BLOCKLIST_SYNC_INTERVAL);
    loop {
        tick.tick().await;
        if let Err(e) = blocklist.sync().await {
            tracing::warn!(error = %e, "could not sync the token blocklist; will retry");
        }
    }
}

/// Expired nonces are pruned this often: the table holds at most this
/// much dead weight beyond the live window.
const NONCE_PRUNE_EVERY: Duration = Duration::from_secs(60);

async fn prune_nonces_forever(hmac: Arc<HmacService>) {
    let mut tick = tokio::time::interval(NONCE_PRUNE_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = hmac.prune_nonces().await {
            tracing::warn!(error = %e, "could not prune expired signature nonces; will retry");
        }
    }
}

const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Expired sessions and blocklist entries, and audit rows past the
/// retention period (pruned at start too: a node may not run an hour).
async fn purge_forever(
    sessions: Arc<SessionService>,
    blocklist: Arc<Blocklist>,
    audit: Arc<AuditLog>,
) {
    let mut tick = tokio::time::interval(PURGE_EVERY);
    let mut first = true;
    loop {
        tick.tick().await;
        if let Err(e) = audit.prune().await {
            tracing::warn!(error = %e, "could not prune the audit log; will retry");
        }
        // Nothing has expired at start.
        if std::mem::take(&mut first) {
            continue;
        }
        let ctx = AuditContext::system();
        if let Err(e) = sessions.purge_expired(&ctx).await {
            tracing::warn!(error = %e, "could not purge expired sessions; will retry");
        }
        if let Err(e) = blocklist.purge(&ctx).await {
            tracing::warn!(error = %e, "could not purge the token blocklist; will retry");
        }
    }
}

/// Writes counted failures every second, and once more when `stop` fires
/// (after the listeners have finished their requests).
async fn flush_audit_until(audit: Arc<AuditLog>, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(AUDIT_FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = &mut stop => true,
        };
        match audit.flush().await {
            Err(e) if stopping => tracing::error!(
                error = %e,
                lost = audit.waiting(),
                "could not write the failed authentications counted since the last flush"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                waiting = audit.waiting(),
                "could not write counted failures to the audit log; will retry"
            ),
            Ok(_) => {}
        }
        if stopping {
            return;
        }
    }
}

/// Dashboard sessions past their idle or absolute expiry are refused when
/// presented; this deletes their rows.
async fn purge_console_forever(console: Arc<keygate_core::console::ConsoleSessions>) {
    let mut tick = tokio::time::interval(PURGE_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = console.purge_expired().await {
            tracing::warn!(error = %e, "could not purge expired dashboard sessions; will retry");
        }
    }
}
