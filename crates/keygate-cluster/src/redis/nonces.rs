//! `RedisNonceStore`: signed-request nonces shared by every node in Redis,
//! one script per request (replay check, per-key quota, record), with the
//! database's `NonceStore` as the fallback while Redis cannot answer.
//!
//! Two ways a replay could slip through, and what closes them:
//! - Redis lost its data (restart, flush). A nonce epoch exists exactly as
//!   long as Redis's memory does: `RedisConn` sets it (Redis `TIME`) when
//!   it first connects and when it finds a new `run_id`, and the script
//!   sets it to now if it is missing all the same; a signature `created`
//!   before the epoch is refused (`BeforeEpoch`): at most
//!   `hmac_max_skew_seconds` of requests signed before the loss must be
//!   signed again.
//! - Nonces recorded in the database during an outage are not in Redis.
//!   A node that fell back remembers until when those nonces live and
//!   publishes it in Redis with its first call after the outage; until
//!   then every node records in both and takes the stricter answer. (A
//!   node cut off from Redis while others are not can still be replayed
//!   on another node until it reconnects: documented.)
//!
//! Nonce expiry is judged on Redis's clock, one clock for every node.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use keygate_core::Error;
use keygate_core::httpsig::{NonceStore, NonceUse, NonceVerdict};
use redis::Script;
use sha2::{Digest, Sha256};

use super::conn::{EPOCH_KEY, RedisConn};

const NONCE_LUA: &str = include_str!("lua/nonce.lua");

pub struct RedisNonceStore {
    conn: Arc<RedisConn>,
    /// The database's store: used while Redis cannot answer.
    fallback: Arc<dyn NonceStore>,
    script: Script,
    /// The latest expiry of a nonce this node recorded in the fallback.
    sql_until: AtomicI64,
}

fn hex16(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

impl RedisNonceStore {
    pub fn new(conn: Arc<RedisConn>, fallback: Arc<dyn NonceStore>) -> Self {
        Self {
            conn,
            fallback,
            script: Script::new(NONCE_LUA),
            sql_until: AtomicI64::new(0),
        }
    }

    /// `(verdict, detail, sql_until)` from the script, or None.
    async fn in_redis(&self, n: &NonceUse<'_>) -> Option<(i64, i64, i64)> {
        // Hashed: a key id or nonce of any length costs 32 bytes, and
        // neither appears in Redis in clear.
        let keys = [
            self.conn.key(&format!("n:{{{}}}", hex16(n.key_id))),
            self.conn.key(EPOCH_KEY),
            self.conn.key("nonce_sql_until"),
        ];
        let nonce = hex16(n.nonce);
        let mine = self.sql_until.load(Ordering::Relaxed);
        let script = &self.script;
        self.conn
            .call(|mut c| async move {
                script
                    .key(&keys[..])
                    .arg(nonce)
                    .arg(n.expires_at_ms)
                    .arg(n.created_ms)
                    .arg(n.per_key_limit)
                    .arg(mine)
                    .invoke_async(&mut c)
                    .await
            })
            .await
            .ok()
    }

    async fn in_fallback(&self, n: &NonceUse<'_>) -> Result<NonceVerdict, Error> {
        let v = self.fallback.record(n).await?;
        if v == NonceVerdict::Fresh {
            self.sql_until.fetch_max(n.expires_at_ms, Ordering::Relaxed);
        }
        Ok(v)
    }
}

#[async_trait]
impl NonceStore for RedisNonceStore {
    async fn record(&self, n: &NonceUse<'_>) -> Result<NonceVerdict, Error> {
        let Some((verdict, detail, sql_until)) = self.in_redis(n).await else {
            self.conn
                .stats()
                .nonce_fallbacks
                .fetch_add(1, Ordering::Relaxed);
            return self.in_fallback(n).await;
        };
        let verdict = match verdict {
            0 => NonceVerdict::Fresh,
            1 => NonceVerdict::Replayed,
            2 => NonceVerdict::OverQuota {
                retry_after_ms: detail,
            },
            3 => NonceVerdict::BeforeEpoch,
            other => {
                return Err(Error::Storage(format!(
                    "the nonce script answered {other}, which it never does"
                )));
            }
        };
        if verdict == NonceVerdict::Fresh && n.now_ms < sql_until.max(self.sql_until()) {
            // Nonces of the outage live in the database: it must agree.
            return self.fallback.record(n).await;
        }
        Ok(verdict)
    }

    async fn prune(&self, now_ms: i64) -> Result<u64, Error> {
        // Redis forgets by itself; the fallback's table needs pruning.
        self.fallback.prune(now_ms).await
    }
}

impl RedisNonceStore {
    fn sql_until(&self) -> i64 {
        self.sql_until.load(Ordering::Relaxed)
    }
}
