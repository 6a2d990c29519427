//! keygate-cluster's integration suite, in one binary: the Redis-backed
//! limiter, nonce store and login throttle against the shared test Redis
//! (each test under a key prefix of its own), and the faults injected into a
//! private redis-server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use keygate_cluster::redis::{RedisConn, RedisOptions};
use keygate_test_support::redis::TestPrefix;

mod redis_faults;
mod redis_shared;

/// A connection to the shared test Redis under a prefix of its own, whose
/// keys go when the prefix drops; None (a skip) when Redis does not answer.
async fn test_conn(name: &str) -> Option<(Arc<RedisConn>, TestPrefix)> {
    let ns = TestPrefix::claim(name)?;
    let mut opts = RedisOptions::new(ns.url.clone(), ns.prefix.clone());
    // Generous: a loaded CI machine is not what these tests measure.
    opts.timeout = Duration::from_secs(2);
    let conn = RedisConn::new(&opts).unwrap();
    // One call first, as a node's start makes: it reads the run_id and the
    // nonce epoch, which a test's nonces must not predate.
    let ping: Result<String, _> = conn
        .call(|mut c| async move { redis::cmd("PING").query_async(&mut c).await })
        .await;
    ping.unwrap();
    Some((conn, ns))
}
