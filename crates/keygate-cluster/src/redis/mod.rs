//! What a node keeps in Redis, each with its fallback for when Redis cannot
//! answer: route and key rate limits (`limiter`), signed-request nonces
//! (`nonces`), login throttling (`throttle`), all over one connection with
//! a deadline, a breaker and data-loss detection (`conn`, `breaker`).
//!
//! The integrator builds one `RedisConn` from `RedisOptions` and hands it
//! to each constructor with that one's options.

pub mod breaker;
pub mod conn;
pub mod limiter;
pub mod nonces;
#[doc(hidden)]
pub mod testing;
pub mod throttle;

pub use conn::{RedisConn, RedisOptions, RedisState, RedisStats, Unanswered};
pub use limiter::{LimiterOptions, RedisGcraLimiter};
pub use nonces::RedisNonceStore;
pub use throttle::RedisLoginThrottle;
