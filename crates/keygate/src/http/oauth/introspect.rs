//! `POST /oauth2/introspect` (RFC 7662): is this access token, refresh token
//! or API key usable now, and what does it carry? Anything revoked,
//! expired, used, unknown or of another tenant is `{"active": false}` and
//! nothing more, so the answer leaks nothing about tokens one may not see.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use keygate_core::jwt::{KIND_CLAIM, OWNER_CLAIM, TokenKind};
use keygate_core::model::Tenant;
use keygate_core::{ApiKey, VerifyCode};
use serde_json::{Map, Value, json};

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
        if let Some(answer) =
            crate::http::sessions::introspect_refresh(&state, token, tenant).await?
        {
            return Ok(answer);
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

pub fn inactive() -> Value {
    json!({"active": false})
}

fn visible(tenant: Option<&Tenant>, token_tenant: Option<&str>) -> bool {
    tenant.is_none_or(|t| token_tenant == Some(t.as_str()))
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
    if !visible(tenant, record.tenant.as_ref().map(Tenant::as_str)) {
        return Ok(inactive());
    }
    let mut out = Map::new();
    out.insert("active".into(), true.into());
    out.insert("token_type".into(), "api_key".into());
    // A key is a client, named as its tokens name it: `sub` is the key id,
    // the owner (free text) has its own member.
    out.insert(KIND_CLAIM.into(), TokenKind::Client.as_str().into());
    out.insert("client_id".into(), record.id.as_str().into());
    out.insert("sub".into(), record.id.as_str().into());
    out.insert(OWNER_CLAIM.into(), record.owner.clone().into());
    let scopes: Vec<&str> = record.scopes.iter().map(|s| s.as_str()).collect();
    out.insert("scope".into(), scopes.join(" ").into());
    out.insert("iat".into(), record.created_at.into());
    if let Some(exp) = record.expires_at {
        out.insert("exp".into(), exp.into());
    }
    if let Some(t) = &record.tenant {
        out.insert("tenant".into(), t.as_str().into());
    }
    Ok(Value::Object(out))
}

async fn access_token(
    state: &AppState,
    token: &str,
    tenant: Option<&Tenant>,
) -> Result<Value, OAuthError> {
    let audience = state.tokens.config().audience.clone();
    let claims = match state.tokens.verify(token, &audience).await {
        Ok(claims) => claims,
        Err(keygate_core::jwt::TokenError::Storage(e)) => return Err(OAuthError::from_core(e)),
        Err(_) => return Ok(inactive()),
    };
    let token_tenant = claims.extra.get("tenant").and_then(Value::as_str);
    if !visible(tenant, token_tenant) {
        return Ok(inactive());
    }
    // Its kind is reported as the token carries it (`kg_kind`, among the
    // other claims); a token without one is from before keygate set it and
    // is no longer usable where a kind is required.
    if claims.kind().is_err() {
        return Ok(inactive());
    }
    let mut out = claims.extra.clone();
    out.insert("active".into(), true.into());
    out.insert("token_type".into(), "Bearer".into());
    out.insert("iss".into(), claims.iss.clone().into());
    if let Some(sub) = &claims.sub {
        out.insert("sub".into(), sub.clone().into());
    }
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
