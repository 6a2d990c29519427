//! A key's HMAC request-signing secret, and keygate's JWT signing keys.

use keygate_secret::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::common::PropagationView;

/// The only response that ever carries the secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SigningSecretView {
    pub key_id: String,
    /// 32 random bytes, base64: the HMAC-SHA256 key for signing requests.
    #[schema(value_type = String)]
    pub secret: SecretString,
    pub created_at: String,
    /// With `?wait=all` only: how far the replacement has spread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<PropagationView>,
}

/// A signing key's public part and where it is in its life.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SigningKeyView {
    pub kid: String,
    pub alg: String,
    /// `pending` (published, not yet signing), `active`, `retired`
    /// (published until its tokens expire) or `expired`.
    pub state: String,
    pub created_at: String,
    pub activate_at: String,
    pub retire_at: Option<String>,
    pub unpublish_at: Option<String>,
    /// The public JWK as published (absent for HS256 keys, which never are).
    #[schema(value_type = Option<Object>)]
    pub public_jwk: Option<Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SigningKeyList {
    pub keys: Vec<SigningKeyView>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SECRET: &str = "c2VjcmV0LWJ5dGVzLWZvci1obWFjLXNpZ25pbmctMzI=";

    #[test]
    fn a_signing_secret_view_does_not_print_the_secret() {
        let view = SigningSecretView {
            key_id: "key_AAAAAAAAAAAAAAAA".into(),
            secret: SECRET.into(),
            created_at: "2030-01-01T00:00:00Z".into(),
            propagation: None,
        };
        let text = format!("{view:?} {view:#?}");
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("key_AAAAAAAAAAAAAAAA"));
        assert!(serde_json::to_string(&view).unwrap().contains(SECRET));
    }
}
