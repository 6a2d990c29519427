//! The limit phase: a route's own rate limit, apart from the key's (the
//! same key may have its own limit and a route's), counted per key, else
//! per user, else per client address.

use axum::http::StatusCode;
use keygate_core::ratelimit::RateLimiter;

use super::config::Route;
use super::identity::Identity;
use super::refusal::{Reason, Refusal};
use keygate_http::ApiError;
use keygate_http::{RateLimitFields, retry_after_secs};

/// Admits or refuses under the route's limit; allowed, answers the
/// RateLimit fields the response carries. A refusal by the limiter's
/// fallback (`deny` while the shared limiter cannot answer) is a 503, not a
/// 429: the client is not over any limit.
pub async fn check_rate_limit(
    limiter: &dyn RateLimiter,
    route: &Route,
    identity: &Identity,
    peer: &str,
    now_ms: i64,
) -> Result<Option<RateLimitFields>, Refusal> {
    let Some(spec) = route.rate_limit else {
        return Ok(None);
    };
    let who = identity.limit_key().unwrap_or(peer);
    let key = format!("{}\u{0}{who}", route.name);
    let d = limiter
        .check_burst(
            &key,
            spec,
            route.rate_limit_burst,
            route.on_limiter_unavailable,
            now_ms,
        )
        .await;
    if d.allowed {
        return Ok(Some(RateLimitFields::new(
            &route.name,
            &d,
            spec.period_seconds,
        )));
    }
    if d.unavailable {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "rate_limiter_unavailable",
            "this route's rate limiter cannot answer and the route refuses requests meanwhile",
        );
        e.retry_after_secs = Some(retry_after_secs(d.retry_after_ms));
        return Err(Refusal::new(e, Reason::RateLimiterUnavailable));
    }
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "over this route's limit of {} requests per {} s",
            spec.limit, spec.period_seconds
        ),
    );
    e.retry_after_secs = Some(retry_after_secs(d.retry_after_ms));
    let mut refusal = Refusal::new(e, Reason::RateLimited);
    refusal.ratelimit = Some(RateLimitFields::new(&route.name, &d, spec.period_seconds));
    Err(refusal)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use async_trait::async_trait;
    use keygate_core::model::RateLimitSpec;
    use keygate_core::ratelimit::{RateDecision, Unavailable};

    /// A shared limiter whose store is down: it applies the policy it is
    /// given, and records which one that was.
    struct Down(parking_lot::Mutex<Option<Unavailable>>);

    #[async_trait]
    impl RateLimiter for Down {
        async fn check_burst(
            &self,
            _: &str,
            spec: RateLimitSpec,
            _: u32,
            policy: Option<Unavailable>,
            _: i64,
        ) -> RateDecision {
            *self.0.lock() = policy;
            let allowed = policy == Some(Unavailable::Allow);
            RateDecision {
                allowed,
                limit: spec.limit,
                remaining: 0,
                reset_ms: 0,
                retry_after_ms: if allowed { 0 } else { 1000 },
                unavailable: !allowed,
            }
        }

        async fn refund(&self, _: &str, _: RateLimitSpec, _: i64) {}
    }

    fn route(policy: &str) -> Route {
        let text = format!(
            "[gateway]\n[[gateway.routes]]\nname = \"a\"\nmatch = {{ path_prefix = \"/\" }}\n\
             upstream = \"http://h:1\"\nauth = \"none\"\n\
             rate_limit = {{ limit = 10, period_seconds = 60{policy} }}\n"
        );
        super::super::config::parse_text(&text)
            .unwrap()
            .unwrap()
            .routes[0]
            .clone()
    }

    #[tokio::test]
    async fn the_route_policy_reaches_the_limiter_and_deny_is_a_503() {
        let down = Down(parking_lot::Mutex::new(None));
        let who = Identity::default();
        let deny = route(", on_limiter_unavailable = \"deny\"");
        let Err(refusal) = check_rate_limit(&down, &deny, &who, "192.0.2.1", 0).await else {
            unreachable!("deny admitted a request")
        };
        assert_eq!(refusal.error.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refusal.error.code, "rate_limiter_unavailable");
        assert_eq!(refusal.error.retry_after_secs, Some(1));
        assert_eq!(*down.0.lock(), Some(Unavailable::Deny));

        let allow = route(", on_limiter_unavailable = \"allow\"");
        let fields = check_rate_limit(&down, &allow, &who, "192.0.2.1", 0).await;
        assert!(fields.is_ok_and(|f| f.is_some()));
        // No route policy: the limiter's own default applies.
        let _ = check_rate_limit(&down, &route(""), &who, "192.0.2.1", 0).await;
        assert_eq!(*down.0.lock(), None);
    }
}
