//! `/v1/auth/*` and `POST /oauth2/token`: what a user sends to log in or
//! refresh, and the tokens that come back.

use std::borrow::Cow;

use keygate_secret::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    #[schema(value_type = String)]
    pub password: SecretString,
    /// Return the refresh token in the body instead of a cookie (for
    /// clients that are not browsers).
    #[serde(default)]
    pub refresh_token_in_body: bool,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token, when it is not sent as the cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub refresh_token: Option<SecretString>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionResponse {
    #[schema(value_type = String)]
    pub access_token: SecretString,
    #[schema(value_type = String)]
    pub token_type: Cow<'static, str>,
    pub expires_in: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub refresh_token: Option<SecretString>,
}

/// RFC 6749 §5.1.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    #[schema(value_type = String)]
    pub access_token: SecretString,
    /// Always `Bearer`.
    #[schema(value_type = String)]
    pub token_type: Cow<'static, str>,
    pub expires_in: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Only for `refresh_token` grants asked for in the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub refresh_token: Option<SecretString>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const PASSWORD: &str = "correct horse battery staple";
    const ACCESS: &str = "eyJhbGciOiJFZERTQSJ9.access-claims.sig";
    const REFRESH: &str = "rt_refresh-token-value";

    #[test]
    fn session_bodies_do_not_print_passwords_or_tokens() {
        let login = LoginRequest {
            username: "carol".into(),
            password: PASSWORD.into(),
            refresh_token_in_body: true,
        };
        let refresh = RefreshRequest {
            refresh_token: Some(REFRESH.into()),
        };
        let session = SessionResponse {
            access_token: ACCESS.into(),
            token_type: "Bearer".into(),
            expires_in: 900,
            refresh_token: Some(REFRESH.into()),
        };
        let token = TokenResponse {
            access_token: ACCESS.into(),
            token_type: "Bearer".into(),
            expires_in: 300,
            scope: Some("read".into()),
            refresh_token: Some(REFRESH.into()),
        };
        let texts = [
            format!("{login:?}"),
            format!("{refresh:?}"),
            format!("{session:#?}"),
            format!("{token:?}"),
        ];
        for text in &texts {
            for secret in [PASSWORD, ACCESS, REFRESH, "access-claims", "refresh-token"] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
        }
        assert!(texts[0].contains("carol"));
        assert!(texts[3].contains("read"));
        let wire = serde_json::to_string(&token).unwrap();
        assert!(wire.contains(ACCESS) && wire.contains(REFRESH));
        let back: LoginRequest =
            serde_json::from_str(&serde_json::to_string(&login).unwrap()).unwrap();
        assert_eq!(back.password.expose(), PASSWORD);
    }
}
