//! What every client-credentials grant ends with: the scopes the token
//! gets, and the signed token as the answer.

use axum::response::Response;
use keygate_api::sessions::TokenResponse;
use keygate_core::jwt::TokenClaims;
use keygate_core::jwt::claims::scope_text;
use keygate_core::model::Scope;

use axum::Json;
use axum::response::IntoResponse;

use super::{OAuthError, no_store};
use crate::http::AppState;

pub fn token_response(body: TokenResponse) -> Response {
    let mut res = Json(body).into_response();
    no_store(res.headers_mut());
    res
}

/// Signs a client-credentials token and answers it.
pub(super) fn issue_client_token(
    state: &AppState,
    claims: &TokenClaims,
) -> Result<Response, OAuthError> {
    let config = state.tokens.config();
    let scope = (!claims.scopes.is_empty()).then(|| scope_text(&claims.scopes));
    let issued = state
        .tokens
        .issue(claims.request(config.audience.clone(), config.client_token_ttl))
        .map_err(OAuthError::from_core)?;
    Ok(token_response(TokenResponse {
        access_token: issued.token.into(),
        token_type: "Bearer".into(),
        expires_in: config.client_token_ttl,
        scope,
        refresh_token: None,
    }))
}

/// The token gets the requested scopes, which must all be the client's
/// own (its key's or its registered client's); without a request, all of
/// them. A token never gets more than its client.
pub(super) fn narrow_scopes(
    own_scopes: &[Scope],
    requested: Option<&str>,
) -> Result<Vec<Scope>, OAuthError> {
    let Some(requested) = requested else {
        return Ok(own_scopes.to_vec());
    };
    let mut granted: Vec<Scope> = Vec::new();
    for scope in requested.split(' ').filter(|s| !s.is_empty()) {
        let Some(own) = own_scopes.iter().find(|s| s.as_str() == scope) else {
            return Err(OAuthError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_scope",
                format!("the scope {scope:?} is not one of the client's scopes"),
            ));
        };
        if !granted.contains(own) {
            granted.push(own.clone());
        }
    }
    Ok(granted)
}
