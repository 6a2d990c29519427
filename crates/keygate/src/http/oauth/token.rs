//! `POST /oauth2/token`: `client_credentials` (an API key, or a registered
//! mTLS client with its certificate (`mtls`), trades itself for a short
//! JWT) and `refresh_token`.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use keygate_api::sessions::TokenResponse;
use keygate_core::VerifyCode;
use keygate_core::clients::PeerCertificate;
use keygate_core::jwt::TokenClaims;
use keygate_core::sessions::AuditContext;

use super::OAuthError;
use super::form::{Form, client_credentials};
use super::issue::{issue_client_token, narrow_scopes, target_audience};
use super::mtls;
use crate::http::AppState;
use crate::http::session_tokens::{RefreshFailure, rotate};

pub use super::issue::token_response;

#[utoipa::path(post, path = "/oauth2/token", tag = "oauth",
    request_body(content_type = "application/x-www-form-urlencoded",
        description = "grant_type=client_credentials (client auth: Basic key_id:key, or \
            client_id + client_secret, or RFC 8705 client_id=cli_... with the TLS connection's \
            client certificate: tls_client_auth, self_signed_tls_client_auth), optional scope; \
            over a connection with a client certificate the token is bound to it \
            (cnf.x5t#S256); optional resource (RFC 8707, one absolute URI) or audience naming \
            one of keygate's audiences: the token's aud, encrypted when that audience says so; \
            or grant_type=refresh_token with refresh_token"),
    responses((status = 200, body = TokenResponse), (status = 400), (status = 401), (status = 429)))]
pub async fn token(
    State(state): State<AppState>,
    cert: Option<Extension<PeerCertificate>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let cert = mtls::connection_certificate(cert.as_ref().map(|c| &c.0));
    let result = match Form::parse(&headers, &body) {
        Err(e) => Err(e),
        Ok(form) => match form.get("grant_type") {
            Some("client_credentials") => {
                client_credentials_grant(&state, &headers, &form, cert).await
            }
            Some("refresh_token") => refresh_grant(&state, &form).await,
            Some(other) => Err(OAuthError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!(
                    "grant_type {other:?} is not supported; use client_credentials or refresh_token"
                ),
            )),
            None => Err(OAuthError::invalid_request(
                "the parameter `grant_type` is missing",
            )),
        },
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn client_credentials_grant(
    state: &AppState,
    headers: &HeaderMap,
    form: &Form,
    cert: Option<&PeerCertificate>,
) -> Result<Response, OAuthError> {
    // RFC 8705 §2: a registered mTLS client names itself and proves it
    // with the connection's certificate, no secret.
    let no_secret = !headers.contains_key(axum::http::header::AUTHORIZATION)
        && form.get("client_secret").is_none();
    if let Some(id) = form
        .get("client_id")
        .filter(|id| no_secret && id.starts_with("cli_"))
    {
        return mtls::grant(state, id, cert, form).await;
    }
    let client = client_credentials(headers, form)?;
    let refused = |why: &str| OAuthError::invalid_client(why, client.basic);
    let verification = state
        .keys
        .verify_key(client.secret.expose_str(), &[], None)
        .await
        .map_err(OAuthError::from_core)?;
    let record = match (verification.code, verification.record()) {
        (VerifyCode::Valid, Some(record)) if record.id.as_str() == client.client_id => record,
        (VerifyCode::RateLimited, _) => {
            return Err(OAuthError::rate_limited(
                "key",
                verification.ratelimit.as_ref(),
            ));
        }
        (VerifyCode::Valid, Some(_)) => {
            return Err(refused(
                "client_id does not name the key presented as the secret",
            ));
        }
        (code, _) => {
            return Err(refused(&format!(
                "the client's key was refused ({})",
                code.as_str()
            )));
        }
    };
    let scopes = narrow_scopes(&record.scopes, form.get("scope"))?;
    let audience = target_audience(state, form)?;
    let mut claims = TokenClaims::client(record, scopes);
    // RFC 8705 §3: over a connection with a client certificate, the token
    // is bound to it whatever authenticated the client.
    claims.cnf = cert.map(|c| *c.thumbprint());
    issue_client_token(state, &claims, &audience)
}

/// `grant_type=refresh_token`: the session rotates as at
/// `/v1/auth/refresh`, and the new refresh token is always in the body.
async fn refresh_grant(state: &AppState, form: &Form) -> Result<Response, OAuthError> {
    let presented = form.require("refresh_token")?;
    // A session's access tokens are for `[jwt] audience` only.
    if target_audience(state, form)? != state.tokens.config().audience {
        return Err(OAuthError::invalid_target(
            "a refresh_token grant issues tokens for keygate's own audience only",
        ));
    }
    let ctx = AuditContext::new("oauth", None);
    match rotate(state, presented, &ctx).await {
        Ok((refresh, access, expires_in)) => Ok(token_response(TokenResponse {
            access_token: access.into(),
            token_type: "Bearer".into(),
            expires_in,
            scope: None,
            refresh_token: Some(refresh.expose().into()),
        })),
        Err(RefreshFailure::Storage(e)) => Err(OAuthError::from_core(e)),
        Err(RefreshFailure::Invalid(why)) => Err(OAuthError::invalid_grant(why)),
    }
}
