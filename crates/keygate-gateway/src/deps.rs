//! What the gateway is built from: the services it calls and the few
//! settings it reads. Not the admin API's state: the gateway knows nothing
//! of the JSON API, and a test can build one from these alone.

use std::sync::Arc;

use keygate_core::clients::ClientService;
use keygate_core::httpsig::HmacService;
use keygate_core::jwt::TokenService;
use keygate_core::{KeyService, MillisClock};

use crate::metrics::GatewayMetrics;
use keygate_core::audit::AuditLog;
use keygate_http::client_addr::TrustedProxies;
use prometheus_client::metrics::counter::Counter;

#[derive(Clone)]
pub struct GatewayDeps {
    /// API keys: verification, their own rate limits and credits.
    pub keys: Arc<KeyService>,
    /// JWTs: verification (with revocation) and the internal token.
    pub tokens: Arc<TokenService>,
    /// The registry of mTLS clients, for `mtls` and `mtls_and_jwt`.
    pub clients: Arc<ClientService>,
    /// RFC 9421 signatures for `auth = "hmac"`.
    pub hmac: Arc<HmacService>,
    /// The time route limits are counted at.
    pub clock: Arc<dyn MillisClock>,
    /// The gateway's counters live in the one registry `/metrics` serves.
    pub metrics: Arc<GatewayMetrics>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<TrustedProxies>,
    /// Where forward-auth reads the client certificate a trusted proxy
    /// verified (`[forward_auth] client_cert_header`).
    pub client_cert_header: crate::client_cert::ProxyCertHeader,
    /// Where refusals are counted (the audit log's tallies).
    pub audit: RefusalAudit,
}

/// Where refusals are counted (`audit` records them): the node's audit
/// log, and the counter of those it had to drop
/// (`keygate_audit_dropped_total`, the admin API's).
#[derive(Clone)]
pub struct RefusalAudit {
    pub log: Arc<AuditLog>,
    pub dropped: Counter,
}
