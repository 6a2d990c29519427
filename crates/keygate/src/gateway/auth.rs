//! Authenticating a request as its route says, and the route's rate limit.
//! This is where a route's auth mode is dispatched (`authenticate`).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keygate_core::ApiKey;
use keygate_core::httpsig::BodyDigest;
use keygate_core::jwt::{AcceptedKinds, TokenKind};
use keygate_core::ratelimit::{RateDecision, RateLimiter};
use keygate_core::{VerifyCode, model::KeyRecord};

use super::config::{AuthMode, Route};
use super::jwt::with_jwt;
use crate::http::AppState;
use crate::http::error::ApiError;

/// Who a request is, once authenticated; nothing here is a secret.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// Whom the request speaks for: a user (a user token, with or without
    /// a key beside it) or a client (a key, a signature, a client token).
    /// None only for `auth = "none"`.
    pub kind: Option<TokenKind>,
    /// The key id, when an API key was presented (what the limit counts).
    pub key_id: Option<String>,
    /// The key behind the request: the presented key or a client token's
    /// `client_id`.
    pub client_id: Option<String>,
    /// The key's owner (free text), when a client is the principal.
    pub key_owner: Option<String>,
    /// The user id, when a user token was presented.
    pub subject: Option<String>,
    pub tenant: Option<String>,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
}

impl Identity {
    /// What the rate limit counts: the key, else the client, else the user.
    pub fn limit_key(&self) -> Option<&str> {
        self.key_id
            .as_deref()
            .or(self.client_id.as_deref())
            .or(self.subject.as_deref())
    }

    /// `sub` of the internal token: the user for a user, the key id for a
    /// client (never the owner: it is free text and could name a user).
    pub fn token_subject(&self) -> Option<&str> {
        match self.kind? {
            TokenKind::User => self.subject.as_deref(),
            TokenKind::Client => self.client_id.as_deref(),
        }
    }
}

/// `RateLimit-Policy` and `RateLimit`, in that order.
pub type RateLimitFields = (HeaderValue, HeaderValue);

/// A refused request: the problem to answer, the reason for the metrics,
/// and the RateLimit fields when the limit refused it.
pub struct Refusal {
    pub error: Box<ApiError>,
    pub reason: &'static str,
    pub ratelimit: Option<RateLimitFields>,
}

impl Refusal {
    pub(super) fn new(error: ApiError, reason: &'static str) -> Self {
        Self {
            error: Box::new(error),
            reason,
            ratelimit: None,
        }
    }

    fn missing(what: &str) -> Self {
        Self::new(
            ApiError::unauthorized(
                "missing_credentials",
                format!("this route needs {what}"),
                false,
            ),
            "missing_credentials",
        )
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut res = self.error.into_response();
        if let Some((policy, value)) = self.ratelimit {
            res.headers_mut().insert("ratelimit-policy", policy);
            res.headers_mut().insert("ratelimit", value);
        }
        res
    }
}

fn bearer(headers: &HeaderMap) -> Result<Option<&str>, Refusal> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("");
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(Refusal::new(
            ApiError::unauthorized(
                "invalid_authorization",
                "the Authorization header must be `Bearer <credential>`",
                true,
            ),
            "invalid_authorization",
        )),
    }
}

fn api_key_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-api-key")
        .map(|v| v.to_str().unwrap_or("").trim())
}

/// What authentication reads of a request: its headers, and for `hmac`
/// the request as the client addressed it (the signature covers it).
pub struct Incoming<'a> {
    pub headers: &'a HeaderMap,
    pub method: &'a str,
    /// `http` or `https`: how the client reached keygate (or the proxy
    /// asking forward-auth).
    pub scheme: &'a str,
    /// The host (and port) the client addressed; None when it named none.
    pub authority: Option<&'a str>,
    /// As sent, percent-encoding untouched.
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// Whether a body follows: a signed request must then cover its
    /// `Content-Digest`, and the body is checked as it streams.
    pub has_body: bool,
}

/// Authenticates a request for `route`. For `hmac`, also answers the digest
/// the body must be fed through on its way to the upstream.
pub async fn authenticate(
    state: &AppState,
    route: &Route,
    req: &Incoming<'_>,
) -> Result<(Identity, Option<BodyDigest>), Refusal> {
    match route.auth {
        AuthMode::None => Ok((Identity::default(), None)),
        // The signature is the credential: other headers are not read.
        AuthMode::Hmac => super::hmac::with_signature(state, route, req).await,
        _ => with_credentials(state, route, req.headers)
            .await
            .map(|id| (id, None)),
    }
}

/// The modes that take an API key, a JWT or both.
async fn with_credentials(
    state: &AppState,
    route: &Route,
    headers: &HeaderMap,
) -> Result<Identity, Refusal> {
    let bearer = bearer(headers)?;
    let x_key = api_key_header(headers);
    let mut id = match route.auth {
        // Dispatched before this; refused here should that ever change.
        AuthMode::None | AuthMode::Hmac => {
            return Err(Refusal::missing("credentials this mode does not read"));
        }
        AuthMode::ApiKey => {
            let key = x_key.or(bearer).ok_or_else(|| {
                Refusal::missing("an API key in `X-API-Key` or `Authorization: Bearer`")
            })?;
            with_key(state, route, key).await?
        }
        AuthMode::Jwt => {
            let token =
                bearer.ok_or_else(|| Refusal::missing("a JWT in `Authorization: Bearer`"))?;
            with_jwt(state, token, route.jwt_subjects).await?
        }
        AuthMode::ApiKeyOrJwt => match (x_key, bearer) {
            (Some(key), _) => with_key(state, route, key).await?,
            // A keygate key is recognisable by its shape, so it may come as
            // a Bearer here too.
            (None, Some(b)) if ApiKey::check_shape(b).is_ok() => with_key(state, route, b).await?,
            (None, Some(token)) => with_jwt(state, token, route.jwt_subjects).await?,
            (None, None) => {
                return Err(Refusal::missing(
                    "an API key in `X-API-Key` or a JWT in `Authorization: Bearer`",
                ));
            }
        },
        AuthMode::ApiKeyAndJwt => {
            let key = x_key.ok_or_else(|| {
                Refusal::missing("an API key in `X-API-Key` (the application) and a JWT in `Authorization: Bearer` (the user)")
            })?;
            let token = bearer.ok_or_else(|| {
                Refusal::missing("a JWT in `Authorization: Bearer` (the user) beside the API key")
            })?;
            // The user first: verifying it has no side effects, while the
            // key's check uses its rate limit and credits.
            // Only a user token names a user, whatever the route says.
            let user = with_jwt(state, token, AcceptedKinds::Users).await?;
            check_roles(route, &user.roles)?;
            let app = with_key(state, route, key).await?;
            // A tenant's key serves that tenant's users only; a user in no
            // tenant is not one of them. A key without a tenant (a
            // platform's own application) may serve any user.
            if app.tenant.is_some() && app.tenant != user.tenant {
                return Err(Refusal::new(
                    ApiError::new(
                        StatusCode::FORBIDDEN,
                        "tenant_mismatch",
                        "the API key and the JWT belong to different tenants",
                    ),
                    "tenant_mismatch",
                ));
            }
            Identity {
                kind: Some(TokenKind::User),
                key_id: app.key_id,
                client_id: app.client_id,
                // The user is the principal; the key is its client.
                key_owner: None,
                subject: user.subject,
                tenant: app.tenant.or(user.tenant),
                scopes: app.scopes,
                roles: user.roles,
            }
        }
    };
    // A JWT on a route with scopes (api_key_or_jwt) answers for them with
    // its `scope` claim, as a client-credentials token does.
    if id.key_id.is_none() && !route.scopes.is_empty() {
        let missing = route
            .scopes
            .iter()
            .any(|s| !id.scopes.iter().any(|have| have == s.as_str()));
        if missing {
            return Err(insufficient_scope());
        }
    }
    check_roles(route, &id.roles)?;
    id.scopes.sort();
    Ok(id)
}

fn check_roles(route: &Route, roles: &[String]) -> Result<(), Refusal> {
    if route.roles.iter().all(|r| roles.contains(r)) {
        return Ok(());
    }
    Err(Refusal::new(
        ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_role",
            format!("this route needs the roles: {}", route.roles.join(", ")),
        ),
        "insufficient_role",
    ))
}

pub(super) fn insufficient_scope() -> Refusal {
    Refusal::new(
        ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the credential lacks a scope this route needs",
        ),
        "insufficient_scope",
    )
}

async fn with_key(state: &AppState, route: &Route, key: &str) -> Result<Identity, Refusal> {
    let v = state
        .keys
        .verify_key(key, &route.scopes, None)
        .await
        .map_err(|e| Refusal::new(ApiError::from(e), "storage_unavailable"))?;
    match (v.code, v.record()) {
        (VerifyCode::Valid, Some(record)) => Ok(key_identity(record)),
        (VerifyCode::InsufficientScope, _) => Err(insufficient_scope()),
        (VerifyCode::RateLimited, _) => {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "this key is over its rate limit",
            );
            let wait_ms = v.ratelimit.map_or(1000, |d| d.retry_after_ms);
            e.retry_after_secs = Some(ceil_secs(wait_ms));
            Err(Refusal::new(e, "key_rate_limited"))
        }
        (code, _) => Err(Refusal::new(
            ApiError::unauthorized(
                "invalid_credentials",
                format!("the API key was refused ({})", code.as_str()),
                true,
            ),
            reason_of(code),
        )),
    }
}

fn reason_of(code: VerifyCode) -> &'static str {
    match code {
        VerifyCode::Malformed => "key_malformed",
        VerifyCode::NotFound => "key_not_found",
        VerifyCode::Revoked => "key_revoked",
        VerifyCode::Expired => "key_expired",
        VerifyCode::UsageExceeded => "key_usage_exceeded",
        _ => "key_refused",
    }
}

fn key_identity(record: &KeyRecord) -> Identity {
    Identity {
        kind: Some(TokenKind::Client),
        key_id: Some(record.id.as_str().to_owned()),
        client_id: Some(record.id.as_str().to_owned()),
        key_owner: Some(record.owner.clone()),
        subject: None,
        tenant: record.tenant.as_ref().map(|t| t.as_str().to_owned()),
        scopes: record
            .scopes
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        roles: Vec::new(),
    }
}

pub fn ceil_secs(ms: i64) -> u64 {
    u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1)
}

/// `RateLimit-Policy` and `RateLimit` per draft-ietf-httpapi-ratelimit-headers-11.
pub fn ratelimit_fields(route: &str, d: &RateDecision, period: u32) -> RateLimitFields {
    let policy = format!("\"{route}\";q={};w={period}", d.limit);
    let t = if d.allowed {
        u64::try_from((d.reset_ms + 999) / 1000).unwrap_or(0)
    } else {
        ceil_secs(d.retry_after_ms)
    };
    let value = format!("\"{route}\";r={};t={t}", d.remaining);
    (
        HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("")),
        HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("")),
    )
}

/// The route's own limit, per key, else per user, else per client address.
/// A refusal by the limiter's fallback (`deny` while the shared limiter
/// cannot answer) is a 503, not a 429: the client is not over any limit.
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
        return Ok(Some(ratelimit_fields(&route.name, &d, spec.period_seconds)));
    }
    if d.unavailable {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "rate_limiter_unavailable",
            "this route's rate limiter cannot answer and the route refuses requests meanwhile",
        );
        e.retry_after_secs = Some(ceil_secs(d.retry_after_ms));
        return Err(Refusal::new(e, "rate_limiter_unavailable"));
    }
    let fields = ratelimit_fields(&route.name, &d, spec.period_seconds);
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "over this route's limit of {} requests per {} s",
            spec.limit, spec.period_seconds
        ),
    );
    e.retry_after_secs = Some(ceil_secs(d.retry_after_ms));
    Err(Refusal {
        error: Box::new(e),
        reason: "rate_limited",
        ratelimit: Some(fields),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use async_trait::async_trait;
    use keygate_core::model::RateLimitSpec;
    use keygate_core::ratelimit::Unavailable;

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
