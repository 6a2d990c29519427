//! What a node keeps in Redis, each with its fallback for when Redis cannot
//! answer: route and key rate limits (`limiter`), signed-request nonces
//! (`nonces`), login throttling (`throttle`), all over one connection with
//! a deadline, a breaker and data-loss detection (`conn`, `breaker`).
//!
//! The integrator builds one `RedisConn` from `RedisOptions` and hands it
//! to each constructor with that one's options.
//!
//! On a Redis Cluster: the limiter's script touches one key with a hash
//! tag, so it shards as is. The nonce script also reads two global keys
//! (the epoch, the outage marker) and the login script a user and a client
//! key: on a cluster these would become one epoch per hash slot (set at
//! the slot's first use, refusing older signatures as now) and two scripts
//! for the login; not built, since one Redis primary serves ~100k scripts/s.

pub mod breaker;
pub mod conn;
pub mod limiter;
pub mod nonces;
#[doc(hidden)]
pub mod throttle;

pub use conn::{RedisConn, RedisOptions, RedisState, RedisStats, Unanswered};
pub use limiter::{LimiterOptions, RedisGcraLimiter};
pub use nonces::RedisNonceStore;
pub use throttle::RedisLoginThrottle;
