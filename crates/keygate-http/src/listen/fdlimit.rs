//! The file-descriptor budget: the soft RLIMIT_NOFILE raised to the hard
//! limit at start, and the caps fitted under it so that a flood on the
//! gateway cannot take the descriptors the admin listener needs.

use super::Limits;

/// Descriptors kept for everything that is not a client or upstream
/// connection: the database pool, log and config files, idle upstream
/// connections, the runtime's own.
const BASE: usize = 512;

/// Raises the soft limit on open files to the hard limit; returns the limit
/// in force (None when it cannot be read, as on systems without rlimits).
pub fn raise_nofile() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => {
            tracing::info!(open_files = n, "file-descriptor limit");
            Some(n)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the file-descriptor limit");
            None
        }
    }
}

/// Each listener's limits, fitted under the descriptor limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub admin: Limits,
    pub gateway: Limits,
}

/// Fits `limits` under `fds` open files. The admin listener keeps its
/// share whole (up to what there is); the gateway's connections and
/// upstream requests share the rest, in proportion, and each is lowered
/// only when they do not fit. Lowered caps are logged.
pub fn fit(limits: &Limits, fds: Option<u64>, gateway: bool) -> Budget {
    let mut admin = limits.clone();
    let mut gw = limits.clone();
    let Some(fds) = fds else {
        return Budget { admin, gateway: gw };
    };
    let spare = usize::try_from(fds)
        .unwrap_or(usize::MAX)
        .saturating_sub(BASE);
    let admin_need = admin.max_connections + admin.reserved_connections;
    if admin_need > spare {
        admin.max_connections = spare.saturating_sub(admin.reserved_connections).max(1);
    }
    let left = spare.saturating_sub(admin.max_connections + admin.reserved_connections);
    if gateway {
        let need = gw.max_connections + gw.reserved_connections + gw.upstream_max_requests;
        if need > left {
            let scale = |n: usize| (n as u128 * left as u128 / need.max(1) as u128) as usize;
            gw.max_connections = scale(gw.max_connections).max(1);
            gw.reserved_connections = scale(gw.reserved_connections);
            gw.upstream_max_requests = scale(gw.upstream_max_requests).max(1);
        }
    }
    if admin != *limits || (gateway && gw != *limits) {
        tracing::warn!(
            open_files = fds,
            admin_max_connections = admin.max_connections,
            gateway_max_connections = gw.max_connections,
            upstream_max_requests = gw.upstream_max_requests,
            "[limits] lowered to fit the file-descriptor limit; raise `ulimit -n` to keep them"
        );
    }
    Budget { admin, gateway: gw }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enough_descriptors_change_nothing() {
        let l = Limits::default();
        let b = fit(&l, Some(1 << 20), true);
        assert_eq!(b.admin, l);
        assert_eq!(b.gateway, l);
    }

    #[test]
    fn few_descriptors_shrink_the_gateway_and_keep_the_admin_share() {
        let l = Limits::default();
        let b = fit(&l, Some(8192), true);
        assert_eq!(b.admin.max_connections, l.max_connections);
        let gw = &b.gateway;
        let used = b.admin.max_connections
            + b.admin.reserved_connections
            + gw.max_connections
            + gw.reserved_connections
            + gw.upstream_max_requests;
        assert!(used + BASE <= 8192, "{used}");
        assert!(gw.max_connections > 0 && gw.upstream_max_requests > 0);
        // 1024 descriptors (a common default): the admin listener gets what
        // there is, and the gateway still gets at least one of each.
        let b = fit(&l, Some(1024), true);
        assert!(b.admin.max_connections + b.admin.reserved_connections <= 1024 - BASE);
        assert!(b.gateway.max_connections >= 1);
    }
}
