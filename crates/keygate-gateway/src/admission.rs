//! The admission phases, in the order a request meets them, each callable
//! alone: route (`request::target` on the gateway's listener,
//! `forward_auth::judge` for forward-auth), authenticate, limit, mint.
//! The proxy and forward-auth run the same ones.

use axum::http::HeaderValue;
use keygate_core::httpsig::BodyDigest;

use super::Gateway;
use super::auth;
use super::config::{AuthMode, ForwardToken, Route};
use super::identity::Identity;
use super::limit;
use super::refusal::Refusal;
use super::request::AuthInput;
use keygate_http::RateLimitFields;

/// An authenticated request within its route's limit.
pub struct Admitted {
    pub identity: Identity,
    pub ratelimit: Option<RateLimitFields>,
    /// For a signed request with a body: what the body must match.
    pub pending_digest: Option<BodyDigest>,
}

impl Gateway {
    /// Authenticate, then limit.
    pub async fn admit(
        &self,
        route: &Route,
        req: &AuthInput<'_>,
        peer: &str,
    ) -> Result<Admitted, Refusal> {
        let (identity, pending_digest) = self
            .authenticate(route, req)
            .await
            .map_err(|r| r.from_peer(peer))?;
        let ratelimit = self
            .limit(route, &identity, peer)
            .await
            .map_err(|r| r.from_peer(peer).by(identity.token_subject()))?;
        Ok(Admitted {
            identity,
            ratelimit,
            pending_digest,
        })
    }

    /// Who the request is, as its route's auth mode reads it; for `hmac`,
    /// also the digest its body must be fed through.
    pub async fn authenticate(
        &self,
        route: &Route,
        req: &AuthInput<'_>,
    ) -> Result<(Identity, Option<BodyDigest>), Refusal> {
        auth::authenticate(&self.deps, self.limiter.as_ref(), route, req).await
    }

    /// The route's own rate limit, counted for `identity` (else `peer`).
    pub async fn limit(
        &self,
        route: &Route,
        identity: &Identity,
        peer: &str,
    ) -> Result<Option<RateLimitFields>, Refusal> {
        let now_ms = self.deps.clock.now_millis();
        limit::check_rate_limit(self.limiter.as_ref(), route, identity, peer, now_ms).await
    }

    /// The internal token for the upstream, as an `Authorization` value,
    /// when the route sends one: never for an anonymous request, which has
    /// no identity to vouch for.
    pub fn mint(
        &self,
        route: &Route,
        identity: &Identity,
    ) -> Result<Option<HeaderValue>, keygate_core::Error> {
        match route.forward_token {
            ForwardToken::Internal if route.auth == AuthMode::None => Ok(None),
            ForwardToken::Internal => self
                .internal
                .bearer(
                    &self.deps.tokens,
                    &route.name,
                    route.internal_token_encryption.as_deref(),
                    identity,
                )
                .map(Some),
            ForwardToken::Passthrough | ForwardToken::None => Ok(None),
        }
    }
}
