//! The authenticate phase: the credentials a route's auth mode reads, who
//! they name, and the route's scopes and roles checked against that. `hmac`
//! is dispatched to its own module; the route's rate limit is `limit`'s.

use axum::http::HeaderMap;
use keygate_core::ApiKey;
use keygate_core::VerifyCode;
use keygate_core::clients::PeerCertificate;
use keygate_core::httpsig::BodyDigest;
use keygate_core::ratelimit::RateLimiter;

use super::config::{AuthMode, Route};
use super::deps::GatewayDeps;
use super::grants::{app_serves_user, check_grants};
use super::identity::Identity;
use super::jwt::{user_of, with_jwt};
use super::mtls;
use super::refusal::{Reason, Refusal};
use super::request::AuthInput;
use keygate_http::ApiError;
use keygate_http::credentials::{self, CredentialError};

/// Authenticates a request for `route`. For `hmac`, also answers the digest
/// the body must be fed through on its way to the upstream.
pub async fn authenticate(
    deps: &GatewayDeps,
    limiter: &dyn RateLimiter,
    route: &Route,
    req: &AuthInput<'_>,
) -> Result<(Identity, Option<BodyDigest>), Refusal> {
    // The credential checks are boxed: inline, their state (some 1.7 KB)
    // would be part of every request's future, which the server moves
    // whole, `auth = "none"` included.
    match route.auth {
        AuthMode::None => Ok((Identity::default(), None)),
        // The signature is the credential: other headers are not read.
        AuthMode::Hmac => Box::pin(super::hmac::with_signature(deps, route, req)).await,
        _ => Box::pin(with_credentials(deps, limiter, route, req))
            .await
            .map(|id| (id, None)),
    }
}

/// The credentials a request carries in its headers, and its client
/// certificate.
struct Presented<'a> {
    bearer: Option<&'a str>,
    api_key: Option<&'a str>,
    certificate: Option<&'a PeerCertificate>,
}

impl<'a> Presented<'a> {
    /// Read as every entry point reads them (keygate-http): a malformed
    /// or repeated credential header is refused whatever the mode, since
    /// guessing what it meant could admit.
    fn read(
        headers: &'a HeaderMap,
        certificate: Option<&'a PeerCertificate>,
    ) -> Result<Self, Refusal> {
        let refused = |e: CredentialError| Refusal::new(ApiError::from(e), Reason::Credentials(e));
        Ok(Self {
            bearer: credentials::bearer(headers).map_err(refused)?,
            api_key: credentials::api_key(headers).map_err(refused)?,
            certificate,
        })
    }
}

/// The modes that take an API key, a JWT or both.
async fn with_credentials(
    deps: &GatewayDeps,
    limiter: &dyn RateLimiter,
    route: &Route,
    req: &AuthInput<'_>,
) -> Result<Identity, Refusal> {
    let presented = Presented::read(req.headers, req.certificate)?;
    let cert = presented.certificate;
    let mut id = match route.auth {
        // Dispatched before this; refused here should that ever change.
        AuthMode::None | AuthMode::Hmac => {
            return Err(Refusal::missing("credentials this mode does not read"));
        }
        AuthMode::ApiKey => {
            let key = presented.api_key.or(presented.bearer).ok_or_else(|| {
                Refusal::missing("an API key in `X-API-Key` or `Authorization: Bearer`")
            })?;
            with_key(deps, route, key).await?
        }
        AuthMode::Jwt => {
            let token = presented
                .bearer
                .ok_or_else(|| Refusal::missing("a JWT in `Authorization: Bearer`"))?;
            with_jwt(
                &deps.tokens,
                route.audience.as_deref(),
                token,
                route.jwt_subjects,
                cert,
            )
            .await?
        }
        AuthMode::ApiKeyOrJwt => key_or_jwt(deps, route, &presented).await?,
        AuthMode::ApiKeyAndJwt => key_and_user(deps, route, &presented).await?,
        AuthMode::Mtls => mtls::with_certificate(deps, limiter, route, cert).await?,
        AuthMode::MtlsAndJwt => {
            mtls::client_and_user(deps, limiter, route, cert, presented.bearer).await?
        }
    };
    check_grants(route, &id).map_err(|r| r.by(id.token_subject()))?;
    id.scopes.sort();
    Ok(id)
}

async fn key_or_jwt(
    deps: &GatewayDeps,
    route: &Route,
    presented: &Presented<'_>,
) -> Result<Identity, Refusal> {
    match (presented.api_key, presented.bearer) {
        (Some(key), _) => with_key(deps, route, key).await,
        // A keygate key is recognisable by its shape, so it may come as
        // a Bearer here too.
        (None, Some(b)) if ApiKey::check_shape(b).is_ok() => with_key(deps, route, b).await,
        (None, Some(token)) => {
            with_jwt(
                &deps.tokens,
                route.audience.as_deref(),
                token,
                route.jwt_subjects,
                presented.certificate,
            )
            .await
        }
        (None, None) => Err(Refusal::missing(
            "an API key in `X-API-Key` or a JWT in `Authorization: Bearer`",
        )),
    }
}

/// `api_key_and_jwt`: the key names the application, the JWT the user, who
/// is the principal.
async fn key_and_user(
    deps: &GatewayDeps,
    route: &Route,
    presented: &Presented<'_>,
) -> Result<Identity, Refusal> {
    let key = presented.api_key.ok_or_else(|| {
        Refusal::missing("an API key in `X-API-Key` (the application) and a JWT in `Authorization: Bearer` (the user)")
    })?;
    let token = presented.bearer.ok_or_else(|| {
        Refusal::missing("a JWT in `Authorization: Bearer` (the user) beside the API key")
    })?;
    let user = user_of(&deps.tokens, route, token, presented.certificate).await?;
    let app = with_key(deps, route, key).await?;
    app_serves_user(
        app,
        user,
        "the API key and the JWT belong to different tenants",
    )
}

async fn with_key(deps: &GatewayDeps, route: &Route, key: &str) -> Result<Identity, Refusal> {
    let v = deps
        .keys
        .verify_key(key, &route.scopes, None)
        .await
        .map_err(Refusal::unavailable)?;
    // A key found is one whose secret matched: its id is the principal
    // of any refusal (revoked, expired, over its limit or credits).
    let principal = v.record().map(|r| r.id.as_str());
    match (v.code, v.record()) {
        (VerifyCode::Valid, Some(record)) => Ok(Identity::of_key(record)),
        (VerifyCode::InsufficientScope, _) => Err(Refusal::insufficient_scope().by(principal)),
        (VerifyCode::RateLimited, _) => {
            Err(Refusal::key_over_limit(v.ratelimit.as_ref()).by(principal))
        }
        (code, _) => Err(Refusal::new(
            ApiError::unauthorized(
                "invalid_credentials",
                format!("the API key was refused ({})", code.as_str()),
                true,
            ),
            Reason::Key(code),
        )
        .by(principal)),
    }
}
