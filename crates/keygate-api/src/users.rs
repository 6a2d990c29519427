//! `/v1/users`: user accounts. No response carries a password or its hash.

use keygate_secret::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::common::PropagationView;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// 1-128 characters accepted by RFC 8265 (PRECIS UsernameCaseMapped: no
    /// spaces or symbols), unique server-wide after its width and case
    /// mapping (`ｃarol`, `CAROL` and `carol` are one name).
    pub username: String,
    /// 12 characters to 1024 bytes. Stored only as an argon2id hash.
    #[schema(value_type = String)]
    pub password: SecretString,
    #[serde(default)]
    pub roles: Vec<String>,
    /// A tenant admin's users land in its own tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Extra claims copied into the user's tokens; at most 2 KiB, and not
    /// a name keygate sets itself (iss, sub, aud, exp, roles, tenant, ...).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub claims: Map<String, Value>,
}

/// Absent fields stay as they are.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub claims: Option<Map<String, Value>>,
    /// Disabling ends the user's sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// A new password ends the user's sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub password: Option<SecretString>,
}

impl UpdateUserRequest {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.roles.is_none()
            && self.claims.is_none()
            && self.disabled.is_none()
            && self.password.is_none()
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    /// Public id, `usr_` + 16 characters.
    pub id: String,
    pub username: String,
    pub roles: Vec<String>,
    pub tenant: Option<String>,
    #[schema(value_type = Object)]
    pub claims: Map<String, Value>,
    pub disabled: bool,
    /// Unix milliseconds: tokens issued before it are refused. 0: never.
    pub sessions_cutoff_ms: i64,
    pub created_at: String,
    pub updated_at: String,
    /// With `?wait=all` only: how far the change has spread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<PropagationView>,
}

/// The query of `GET /v1/users`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserListQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const PASSWORD: &str = "correct horse battery staple";

    #[test]
    fn user_bodies_do_not_print_the_password() {
        let create = CreateUserRequest {
            username: "carol".into(),
            password: PASSWORD.into(),
            roles: vec!["admin".into()],
            tenant: None,
            claims: Map::new(),
        };
        let update = UpdateUserRequest {
            password: Some(PASSWORD.into()),
            ..UpdateUserRequest::default()
        };
        for text in [format!("{create:?}"), format!("{update:#?}")] {
            assert!(!text.contains(PASSWORD), "{text}");
            assert!(!text.contains("horse"), "{text}");
        }
        assert!(format!("{create:?}").contains("carol"));
        let wire = serde_json::to_string(&create).unwrap();
        assert!(wire.contains(PASSWORD));
        let back: CreateUserRequest = serde_json::from_str(&wire).unwrap();
        assert_eq!(back.password.expose(), PASSWORD);
    }
}
