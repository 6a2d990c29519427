//! `POST /oauth2/introspect` (RFC 7662): is this access token, refresh token
//! or API key usable now, and what does it carry? Anything revoked,
//! expired, used, unknown or of another tenant is `{"active": false}` and
//! nothing more, so the answer leaks nothing about tokens one may not see.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use keygate_core::jwt::claims::scope_text;
use keygate_core::jwt::{
    AcceptedKinds, ClientPrincipal, KIND_CLAIM, Principal, SCOPE_CLAIM, SESSION_CLAIM,
    TENANT_CLAIM, TokenClaims, TokenError, TokenKind,
};
use keygate_core::model::Tenant;
use keygate_core::sessions::{RefreshToken, TokenState};
use keygate_core::{ApiKey, VerifyCode};
use serde_json::{Value, json};

use super::form::Form;
use super::{OAuthError, no_store};
use crate::http::AppState;
use crate::http::extract::IntrospectorAuth;

#[utoipa::path(post, path = "/oauth2/introspect", tag = "oauth",
    request_body(content_type = "application/x-www-form-urlencoded",
        description = "token, optional token_type_hint"),
    responses((status = 200, description = "RFC 7662 introspection response"),
        (status = 400), (status = 401), (status = 403)),
    security(("api_key" = [])))]
pub async fn introspect(
    State(state): State<AppState>,
    IntrospectorAuth(caller): IntrospectorAuth,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = async {
        let form = Form::parse(&headers, &body)?;
        let token = form.require("token")?;
        let tenant = caller.tenant.as_ref();
        if ApiKey::check_shape(token).is_ok() {
            return api_key(&state, token, tenant).await;
        }
        if RefreshToken::parse(token).is_some() {
            return refresh_token(&state, token, tenant).await;
        }
        access_token(&state, token, tenant).await
    }
    .await;
    match answer {
        Ok(body) => {
            let mut res = Json(body).into_response();
            no_store(res.headers_mut());
            res
        }
        Err(e) => e.into_response(),
    }
}

fn inactive() -> Value {
    json!({"active": false})
}

fn visible(tenant: Option<&Tenant>, token_tenant: Option<&Tenant>) -> bool {
    tenant.is_none_or(|t| token_tenant == Some(t))
}

async fn api_key(
    state: &AppState,
    token: &str,
    tenant: Option<&Tenant>,
) -> Result<Value, OAuthError> {
    let v = state
        .keys
        .inspect_key(token)
        .await
        .map_err(OAuthError::from_core)?;
    let Some(record) = v.record().filter(|_| v.code == VerifyCode::Valid) else {
        return Ok(inactive());
    };
    if !visible(tenant, record.tenant.as_ref()) {
        return Ok(inactive());
    }
    // A key is a client, named as its tokens name it: `sub` is the key id,
    // the owner (free text) has its own member.
    let claims = TokenClaims {
        principal: Principal::Client(ClientPrincipal {
            id: record.id.clone().into(),
            owner: Some(record.owner.clone()),
        }),
        tenant: record.tenant.clone(),
        roles: Vec::new(),
        scopes: record.scopes.clone(),
        custom: serde_json::Map::new(),
        cnf: None,
    };
    let mut out = claims.to_map();
    // A key names its scopes even when it has none.
    out.insert(SCOPE_CLAIM.into(), scope_text(&claims.scopes).into());
    out.insert("active".into(), true.into());
    out.insert("token_type".into(), "api_key".into());
    out.insert("sub".into(), claims.subject().into());
    out.insert("iat".into(), record.created_at.into());
    if let Some(exp) = record.expires_at {
        out.insert("exp".into(), exp.into());
    }
    Ok(Value::Object(out))
}

/// A refresh token: its session, while the session lives.
async fn refresh_token(
    state: &AppState,
    token: &str,
    tenant: Option<&Tenant>,
) -> Result<Value, OAuthError> {
    let status = state
        .sessions
        .family_of(token)
        .await
        .map_err(OAuthError::from_core)?;
    let Some(status) = status.filter(|s| s.state == TokenState::Active) else {
        return Ok(inactive());
    };
    let family = &status.family;
    if !visible(tenant, family.tenant.as_ref()) {
        return Ok(inactive());
    }
    // Named as the session's access tokens name it, but with no roles: a
    // refresh token does not carry them.
    let mut out = json!({
        "active": true,
        "token_type": "refresh_token",
        (KIND_CLAIM): TokenKind::User.as_str(),
        "sub": family.user_id,
        (SESSION_CLAIM): family.id.as_str(),
        "iat": family.created_at_ms / 1000,
        "exp": state.sessions.expires_at_ms(family) / 1000,
    });
    if let (Some(t), Some(map)) = (&family.tenant, out.as_object_mut()) {
        map.insert(TENANT_CLAIM.into(), t.as_str().into());
    }
    Ok(out)
}

async fn access_token(
    state: &AppState,
    token: &str,
    tenant: Option<&Tenant>,
) -> Result<Value, OAuthError> {
    // For whichever of keygate's audiences it names; an encrypted token
    // only where keygate holds that audience's private key (else inactive:
    // keygate cannot tell what it carries).
    let claims = match state.tokens.verify_issued(token).await {
        Ok(claims) => claims,
        Err(TokenError::Storage(e)) => return Err(OAuthError::from_core(e)),
        Err(_) => return Ok(inactive()),
    };
    // Either kind, reported as the token carries it; a token without one is
    // from before keygate set it and is no longer usable where a kind is
    // required.
    let Ok(typed) = TokenClaims::read(&claims, AcceptedKinds::Any) else {
        return Ok(inactive());
    };
    if !visible(tenant, typed.tenant.as_ref()) {
        return Ok(inactive());
    }
    let mut out = typed.to_map();
    out.insert("active".into(), true.into());
    out.insert("token_type".into(), "Bearer".into());
    out.insert("iss".into(), claims.iss.clone().into());
    out.insert("sub".into(), typed.subject().into());
    out.insert("aud".into(), json!(claims.aud));
    // RFC 7662 §2.2: NumericDate, an integer.
    out.insert("exp".into(), claims.exp.whole_secs().into());
    if let Some(iat) = claims.iat {
        out.insert("iat".into(), iat.whole_secs().into());
    }
    if let Some(nbf) = claims.nbf {
        out.insert("nbf".into(), nbf.whole_secs().into());
    }
    if let Some(jti) = &claims.jti {
        out.insert("jti".into(), jti.clone().into());
    }
    Ok(Value::Object(out))
}
