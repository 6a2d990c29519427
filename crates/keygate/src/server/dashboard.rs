//! The admin dashboard's wiring: its sessions (`ConsoleSessions`) on the
//! same store and services as the API, when `[dashboard] enabled`.

use std::sync::Arc;

use keygate_core::console::{ConsoleSessions, ConsoleSettings};
use keygate_core::store::Store;
use keygate_dashboard::DashboardDeps;

use crate::config::Config;
use crate::http::AppState;

/// The dashboard's services, or None when it is turned off.
pub(super) fn deps(
    config: &Config,
    state: &AppState,
    storage: Arc<dyn Store>,
) -> Option<DashboardDeps> {
    if !config.dashboard.enabled {
        return None;
    }
    let settings = ConsoleSettings {
        idle_secs: config.dashboard.idle_secs,
        absolute_secs: config.dashboard.absolute_secs,
    };
    // One throttle for both kinds of login: a client guessing dashboard
    // keys and user passwords is slowed down once.
    let console = ConsoleSessions::new(
        storage,
        state.keys.clone(),
        state.audit.clone(),
        state.users.throttle().clone(),
    )
    .with_settings(settings);
    Some(DashboardDeps {
        keys: state.keys.clone(),
        users: state.users.clone(),
        sessions: state.sessions.clone(),
        tokens: state.tokens.clone(),
        hmac: state.hmac.clone(),
        audit: state.audit.clone(),
        console: Arc::new(console),
        routes: state.gateway.clone().map(|g| {
            Arc::new(super::dashboard_routes::GatewayRoutes(g))
                as Arc<dyn keygate_dashboard::RoutesView>
        }),
        clock: state.keys.clock().clone(),
        trusted_proxies: state.trusted_proxies.clone(),
    })
}
