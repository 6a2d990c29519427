//! `/v1/keys`: create, list, show, update, rotate, revoke, verify.

use std::borrow::Cow;
use std::fmt;

use keygate_secret::{REDACTED, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::common::{PropagationView, RateLimitState, RateLimitView, double_option, is_false};

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    pub name: String,
    /// Who the key is for: a user, a service, an application.
    pub owner: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// RFC 3339 time after which the key stops working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// `live` (default) or `test`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitView>,
    /// Usage credits: each valid verification takes one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<i64>,
}

/// Absent fields stay as they are; `null` removes an expiry, a rate limit
/// or a credit limit.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// RFC 3339, or null to remove the expiry.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, nullable)]
    pub expires_at: Option<Option<String>>,
    /// null removes the rate limit.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<RateLimitView>, nullable)]
    pub rate_limit: Option<Option<RateLimitView>>,
    /// null makes usage unlimited.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<i64>, nullable)]
    pub remaining: Option<Option<i64>>,
}

impl UpdateKeyRequest {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.scopes.is_none()
            && self.metadata.is_none()
            && self.expires_at.is_none()
            && self.rate_limit.is_none()
            && self.remaining.is_none()
    }
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// How long the old secret keeps working, 0 (default) to 604800 (7 days).
    #[serde(default)]
    pub grace_seconds: i64,
}

/// Borrows from the request body where it can: nothing is copied unless a
/// string contains escapes.
// Its `Debug` (below) leaves the key out.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyKeyRequest<'a> {
    #[serde(borrow)]
    #[schema(value_type = String)]
    pub key: Cow<'a, str>,
    #[serde(default, borrow)]
    #[schema(value_type = Vec<String>)]
    pub required_scopes: Vec<Cow<'a, str>>,
}

impl fmt::Debug for VerifyKeyRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyKeyRequest")
            .field("key", &format_args!("{REDACTED}"))
            .field("required_scopes", &self.required_scopes)
            .finish()
    }
}

/// Borrows from the verified record: the hot path copies nothing to answer.
// (No string is copied; the scopes cost one small vector of borrows.) A
// client reads it owned, as `VerifyKeyResponse<'static>`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerifyKeyResponse<'a> {
    pub valid: bool,
    /// VALID, MALFORMED, NOT_FOUND, REVOKED, EXPIRED, INSUFFICIENT_SCOPE,
    /// USAGE_EXCEEDED or RATE_LIMITED.
    #[schema(value_type = String)]
    pub code: Cow<'a, str>,
    #[schema(value_type = Option<String>)]
    pub key_id: Option<Cow<'a, str>>,
    #[schema(value_type = Option<String>)]
    pub owner: Option<Cow<'a, str>>,
    #[schema(value_type = Option<String>)]
    pub tenant: Option<Cow<'a, str>>,
    #[schema(value_type = Option<Vec<String>>)]
    pub scopes: Option<Vec<Cow<'a, str>>>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Cow<'a, Map<String, Value>>>,
    pub expires_at: Option<String>,
    pub remaining: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratelimit: Option<RateLimitState>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    /// Public id, `key_` + 16 characters.
    pub id: String,
    pub name: String,
    pub owner: String,
    pub tenant: Option<String>,
    pub scopes: Vec<String>,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// `live` or `test`.
    #[schema(value_type = String)]
    pub env: Cow<'static, str>,
    /// The start of the key, safe to display (`kg_live_AbCd`).
    pub prefix: String,
    /// `active`, `expired` or `revoked`.
    #[schema(value_type = String)]
    pub status: Cow<'static, str>,
    pub created_at: String,
    pub updated_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
    pub rate_limit: Option<RateLimitView>,
    /// Usage credits left; absent means unlimited.
    pub remaining: Option<i64>,
    /// With `?wait=all` only: how far the change has spread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<PropagationView>,
}

/// A key with its secret: returned only by create and rotate.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IssuedKeyView {
    #[serde(flatten)]
    pub record: KeyView,
    /// The secret. Shown this once; keygate keeps only a keyed hash of it.
    #[schema(value_type = String)]
    pub key: SecretString,
}

/// The query of `GET /v1/keys`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyListQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub include_revoked: bool,
    /// A case-insensitive substring of the name, prefix, id or owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// `active`, `revoked` or `expired` (overrides `include_revoked`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// RFC 3339: only keys expiring before this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// The query of `GET /v1/keys/{id}/usage`. Times are RFC 3339; the window
/// is `since` (rounded down to the bucket) up to `until`. Defaults: the last
/// 24 hours by hour, or the last 30 days by day.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyUsageQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// `hour` (default) or `day`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granularity: Option<String>,
}

/// The query of `GET /v1/keys/usage`: hourly usage of up to 100 keys.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyUsageManyQuery {
    /// Key ids, comma-separated (at most 100).
    pub ids: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// Verifications in one bucket, by outcome code (VALID, RATE_LIMITED,
/// USAGE_EXCEEDED, REVOKED, EXPIRED, INSUFFICIENT_SCOPE; zeros included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageBucketView {
    /// RFC 3339 start of the bucket (UTC hour or day).
    pub start: String,
    pub counts: std::collections::BTreeMap<String, u64>,
    pub total: u64,
}

/// One key's verifications, every bucket of the window present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyUsageView {
    pub key_id: String,
    /// `hour` or `day`.
    pub granularity: String,
    pub buckets: Vec<UsageBucketView>,
}

/// `GET /v1/keys/usage`: one entry per requested id, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyUsageList {
    pub data: Vec<KeyUsageView>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const KEY: &str = "kg_live_0123456789abcdefghijABCDEFGHIJklmnopqrstuAAAAAA";

    fn view() -> KeyView {
        KeyView {
            id: "key_AAAAAAAAAAAAAAAA".into(),
            name: "billing".into(),
            owner: "svc".into(),
            tenant: None,
            scopes: vec!["read".into()],
            metadata: Map::new(),
            env: "live".into(),
            prefix: "kg_live_0123".into(),
            status: "active".into(),
            created_at: "2030-01-01T00:00:00Z".into(),
            updated_at: "2030-01-01T00:00:00Z".into(),
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            rate_limit: None,
            remaining: None,
            propagation: None,
        }
    }

    /// The secret goes out on the wire (shown once) but never into `Debug`.
    #[test]
    fn key_bodies_that_carry_a_key_do_not_print_it() {
        let issued = IssuedKeyView {
            record: view(),
            key: KEY.into(),
        };
        let verify = VerifyKeyRequest {
            key: Cow::Borrowed(KEY),
            required_scopes: vec![Cow::Borrowed("read")],
        };
        for text in [format!("{issued:?}"), format!("{verify:#?}")] {
            assert!(!text.contains(KEY), "{text}");
            assert!(!text.contains("0123456789abcdef"), "{text}");
        }
        assert!(format!("{issued:?}").contains("billing"));
        assert!(format!("{verify:?}").contains("read"));
        assert!(serde_json::to_string(&issued).unwrap().contains(KEY));
        assert!(serde_json::to_string(&verify).unwrap().contains(KEY));
    }

    #[test]
    fn an_issued_key_reads_back_flattened() {
        let issued = IssuedKeyView {
            record: view(),
            key: KEY.into(),
        };
        let wire = serde_json::to_value(&issued).unwrap();
        assert_eq!(wire["key"], KEY);
        assert_eq!(wire["id"], "key_AAAAAAAAAAAAAAAA");
        let back: IssuedKeyView = serde_json::from_value(wire).unwrap();
        assert_eq!(back.key.expose(), KEY);
        assert_eq!(back.record.status, "active");
    }

    /// Absent stays absent and `null` stays `null`, both ways.
    #[test]
    fn an_update_tells_absent_from_null() {
        let body = UpdateKeyRequest {
            expires_at: Some(None),
            remaining: Some(Some(5)),
            ..UpdateKeyRequest::default()
        };
        let text = serde_json::to_string(&body).unwrap();
        assert_eq!(text, r#"{"expires_at":null,"remaining":5}"#);
        let back: UpdateKeyRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(back.expires_at, Some(None));
        assert_eq!(back.rate_limit, None);
        assert!(UpdateKeyRequest::default().is_empty());
        assert!(!back.is_empty());
        assert!(serde_json::from_str::<UpdateKeyRequest>(r#"{"nme":"x"}"#).is_err());
    }
}
