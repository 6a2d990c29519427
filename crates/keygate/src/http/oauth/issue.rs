//! What every client-credentials grant ends with: the scopes the token
//! gets, and the signed token as the answer.

use axum::response::Response;
use keygate_api::sessions::TokenResponse;
use keygate_core::jwt::TokenClaims;
use keygate_core::jwt::claims::scope_text;
use keygate_core::model::Scope;

use axum::Json;
use axum::response::IntoResponse;

use super::form::Form;
use super::{OAuthError, no_store};
use crate::http::AppState;

pub fn token_response(body: TokenResponse) -> Response {
    let mut res = Json(body).into_response();
    no_store(res.headers_mut());
    res
}

/// Signs a client-credentials token for `audience` and answers it; for
/// an audience with `encrypt`, the answer is the nested JWT (RFC 7519
/// §5.2: signed, then encrypted to the audience's key).
pub(super) fn issue_client_token(
    state: &AppState,
    claims: &TokenClaims,
    audience: &str,
) -> Result<Response, OAuthError> {
    let config = state.tokens.config();
    let scope = (!claims.scopes.is_empty()).then(|| scope_text(&claims.scopes));
    let issued = state
        .tokens
        .issue(claims.request(audience.to_owned(), config.client_token_ttl))
        .map_err(OAuthError::from_core)?;
    let access_token = match state.audience_encryption.get(audience) {
        Some(encryption) => encryption
            .encrypt_nested(&issued.token)
            .map_err(OAuthError::from_core)?,
        None => issued.token,
    };
    Ok(token_response(TokenResponse {
        access_token: access_token.into(),
        token_type: "Bearer".into(),
        expires_in: config.client_token_ttl,
        scope,
        refresh_token: None,
    }))
}

/// The audience a token is asked for: RFC 8707's `resource` (an absolute
/// URI), or `audience` as several identity providers name it; at most
/// one, naming `[jwt] audience` or one of `[[jwt.audiences]]`. Neither:
/// `[jwt] audience`. Asked after the client has authenticated, so the
/// answer tells nobody else which audiences exist.
pub(super) fn target_audience(state: &AppState, form: &Form) -> Result<String, OAuthError> {
    let config = state.tokens.config();
    let asked = match (form.get("resource"), form.get("audience")) {
        (None, None) => return Ok(config.audience.clone()),
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_target(
                "send resource or audience, not both",
            ));
        }
        (Some(resource), None) => {
            let absolute = reqwest::Url::parse(resource).is_ok_and(|u| u.fragment().is_none());
            if !absolute {
                return Err(OAuthError::invalid_target(
                    "resource must be an absolute URI without a fragment (RFC 8707)",
                ));
            }
            resource
        }
        (None, Some(audience)) => audience,
    };
    if !config.knows_audience(asked) {
        return Err(OAuthError::invalid_target(
            "keygate issues no tokens for this resource; ask for one of its configured audiences",
        ));
    }
    Ok(asked.to_owned())
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
