//! `POST /oauth2/revoke` (RFC 7009). A refresh token ends its whole family;
//! an access token keygate signed is blocklisted until its `exp`, even one
//! not yet valid. Holding a token is enough to revoke it: revocation only
//! ever hurts the holder. Unknown tokens answer 200 too, as the RFC says,
//! so the endpoint tells nothing about which tokens exist.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use keygate_core::sessions::model::REASON_REVOKED;
use keygate_core::sessions::{AuditContext, RefreshToken};

use super::form::Form;
use super::{OAuthError, no_store};
use crate::http::AppState;
use crate::http::extract::RequestId;

#[utoipa::path(post, path = "/oauth2/revoke", operation_id = "revoke_token", tag = "oauth",
    request_body(content_type = "application/x-www-form-urlencoded",
        description = "token, optional token_type_hint (refresh_token or access_token)"),
    responses((status = 200), (status = 400)))]
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let result = async {
        let form = Form::parse(&headers, &body)?;
        let token = form.require("token")?;
        if let Some(hint) = form.get("token_type_hint")
            && !matches!(hint, "refresh_token" | "access_token")
        {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_token_type",
                "token_type_hint must be refresh_token or access_token",
            ));
        }
        let request_id = extensions.get::<RequestId>().map(|r| r.0.clone());
        let ctx = AuditContext::new("oauth", request_id);
        if keygate_verify::jwe::is_compact_jwe(token) && state.tokens.open_nested(token).is_none() {
            // RFC 7009 §2.2.1: an encrypted token keygate holds no key for
            // cannot be read, so its `jti` cannot be blocklisted; saying
            // 200 would pretend it was revoked.
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_token_type",
                "an encrypted token keygate cannot decrypt cannot be revoked here",
            ));
        }
        if RefreshToken::parse(token).is_some() {
            state
                .sessions
                .revoke_by_token(token, REASON_REVOKED, &ctx)
                .await
                .map_err(OAuthError::from_core)?;
        } else {
            crate::http::session_tokens::block_access_token(&state, token, &ctx)
                .await
                .map_err(OAuthError::from_core)?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            let mut res = StatusCode::OK.into_response();
            no_store(res.headers_mut());
            res
        }
        Err(e) => e.into_response(),
    }
}
