//! `RedisLoginThrottle`: the login throttle shared by every node, so N
//! nodes allow what one would. A username's failures live in a Redis hash
//! (count, last failure), with the same free failures and doubling delay
//! as the local throttle; a client address (IPv6: its /64) is a GCRA of
//! `client_failures` per `client_window` (a burst of that many, then one
//! per window / failures), where the local throttle keeps a sliding window.
//!
//! While Redis cannot answer, each node throttles alone with the free
//! failures and the client's failures divided by the live nodes.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use keygate_core::users::throttle::{Admitted, LoginThrottle, Outcome, Throttle, ThrottleConfig};
use redis::Script;
use sha2::{Digest, Sha256};

use super::conn::RedisConn;

const ADMIT_LUA: &str = include_str!("lua/login_admit.lua");
const SETTLE_LUA: &str = include_str!("lua/login_settle.lua");
/// `Admitted::via` of an attempt Redis counted (0: the local fallback).
const VIA_REDIS: u8 = 1;

pub struct RedisLoginThrottle {
    conn: Arc<RedisConn>,
    config: ThrottleConfig,
    local: LoginThrottle,
    live_nodes: Arc<AtomicU32>,
    admit: Script,
    settle: Script,
}

impl RedisLoginThrottle {
    pub fn new(conn: Arc<RedisConn>, config: ThrottleConfig, live_nodes: Arc<AtomicU32>) -> Self {
        Self {
            conn,
            config,
            local: LoginThrottle::new(config),
            live_nodes,
            admit: Script::new(ADMIT_LUA),
            settle: Script::new(SETTLE_LUA),
        }
    }

    /// The username's and the client's keys; the name is hashed so Redis
    /// holds no usernames.
    fn keys(&self, attempt: &Admitted) -> [String; 2] {
        let user = hex::encode(&Sha256::digest(attempt.user().as_bytes())[..16]);
        [
            self.conn.key(&format!("lu:{user}")),
            self.conn.key(&format!("lc:{}", attempt.client_key())),
        ]
    }

    /// The client GCRA: `(interval, tolerance)` in µs.
    fn client_gcra(&self) -> (i64, i64) {
        let failures = i64::try_from(self.config.client_failures.max(1)).unwrap_or(i64::MAX);
        let interval = (self.config.client_window_ms.saturating_mul(1000) / failures).max(1);
        (interval, interval.saturating_mul(failures))
    }
}

#[async_trait]
impl Throttle for RedisLoginThrottle {
    async fn admit(&self, user: &str, client: IpAddr, now_ms: i64) -> Result<Admitted, u64> {
        let probe = Admitted::new(user, client, now_ms, VIA_REDIS);
        let keys = self.keys(&probe);
        let (interval, tolerance) = self.client_gcra();
        let cfg = self.config;
        let script = &self.admit;
        let r: Result<(i64, i64), _> = self
            .conn
            .call(|mut c| async move {
                script
                    .key(&keys[..])
                    .arg(cfg.free_failures)
                    .arg(cfg.base_delay_ms)
                    .arg(cfg.max_delay_ms)
                    .arg(cfg.forget_after_ms)
                    .arg(interval)
                    .arg(tolerance)
                    .invoke_async(&mut c)
                    .await
            })
            .await;
        match r {
            Ok((1, _)) => Ok(probe),
            Ok((_, wait_ms)) => Err(u64::try_from((wait_ms.max(1) + 999) / 1000).unwrap_or(1)),
            Err(_) => {
                self.conn
                    .stats()
                    .throttle_fallbacks
                    .fetch_add(1, Ordering::Relaxed);
                let share = self.live_nodes.load(Ordering::Relaxed).max(1);
                self.local.admit_share(user, client, now_ms, share)
            }
        }
    }

    async fn settle(&self, attempt: Admitted, outcome: Outcome) {
        if attempt.via() != VIA_REDIS {
            return self.local.settle(attempt, outcome).await;
        }
        let how = match outcome {
            // Counted when admitted.
            Outcome::Failed => return,
            Outcome::Succeeded => "s",
            Outcome::Forgiven => "f",
        };
        let keys = self.keys(&attempt);
        let (interval, _) = self.client_gcra();
        let script = &self.settle;
        // Lost when Redis cannot answer: the attempt stays a failure,
        // which errs on the side of throttling.
        let _: Result<i64, _> = self
            .conn
            .call(|mut c| async move {
                script
                    .key(&keys[..])
                    .arg(how)
                    .arg(interval)
                    .invoke_async(&mut c)
                    .await
            })
            .await;
    }
}
