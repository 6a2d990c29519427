//! The shared Redis, when `[cluster] redis_url` is set on PostgreSQL: one
//! connection for the rate limiter, the nonces and the login throttle,
//! each with its fallback (local share of the limit, the SQL nonce table,
//! the local throttle at 1/N). Redis is never on the revocation path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use keygate_cluster::redis::{
    LimiterOptions, RedisConn, RedisGcraLimiter, RedisLoginThrottle, RedisNonceStore, RedisOptions,
};
use keygate_core::httpsig::NonceStore;
use keygate_core::ratelimit::Unavailable;
use keygate_core::users::throttle::ThrottleConfig;
use serde_json::{Value, json};

use crate::config::cluster::RedisSettings;

pub struct SharedLayer {
    pub conn: Arc<RedisConn>,
    pub limiter: Arc<RedisGcraLimiter>,
    pub nonces: Arc<RedisNonceStore>,
    pub throttle: Arc<RedisLoginThrottle>,
}

impl SharedLayer {
    /// Does not wait for Redis: until it answers, the fallbacks decide.
    pub fn connect(
        settings: &RedisSettings,
        on_unavailable: Unavailable,
        live_nodes: Arc<AtomicU32>,
        sql_nonces: Arc<dyn NonceStore>,
    ) -> Result<Self, String> {
        let options = RedisOptions {
            url: settings.url.as_str().to_owned(),
            prefix: settings.prefix.clone(),
            timeout: Duration::from_millis(settings.timeout_ms),
        };
        // The error text of a bad URL could quote it; say only what is wrong.
        let conn = RedisConn::new(&options)
            .map_err(|e| format!("cluster.redis_url is not usable ({:?})", e.kind()))?;
        let limiter = Arc::new(RedisGcraLimiter::new(
            conn.clone(),
            LimiterOptions {
                on_unavailable,
                live_nodes: live_nodes.clone(),
            },
        ));
        let nonces = Arc::new(RedisNonceStore::new(conn.clone(), sql_nonces));
        let throttle = Arc::new(RedisLoginThrottle::new(
            conn.clone(),
            ThrottleConfig::default(),
            live_nodes,
        ));
        Ok(Self {
            conn,
            limiter,
            nonces,
            throttle,
        })
    }

    /// The limiter's state for heartbeats and `/v1/cluster`.
    pub fn info(&self) -> Value {
        let state = self.conn.state();
        let stats = self.conn.stats();
        json!({
            "backend": "redis",
            "breaker": state.breaker,
            "data_losses": state.data_losses,
            "limiter_fallbacks": stats.limiter_fallbacks.load(Ordering::Relaxed),
            "nonce_fallbacks": stats.nonce_fallbacks.load(Ordering::Relaxed),
            "throttle_fallbacks": stats.throttle_fallbacks.load(Ordering::Relaxed),
        })
    }
}
