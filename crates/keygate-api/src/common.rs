//! Shapes several resources share.

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// `limit` requests per `period_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitView {
    pub limit: u32,
    pub period_seconds: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RateLimitState {
    pub limit: u32,
    pub remaining: u32,
    /// Unix time in milliseconds when the quota is fully restored.
    pub reset: i64,
}

/// How far a change has spread: every live node applied `seq`, or the
/// `unconfirmed` ones, which stop answering from their caches by `bound_ms`
/// after the write.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PropagationView {
    /// The feed position the change is at or below.
    pub seq: i64,
    pub live_nodes: usize,
    pub acked: usize,
    /// Live nodes that had not applied it when the answer was sent.
    pub unconfirmed: Vec<String>,
    /// S, in milliseconds (0 on a single node).
    pub bound_ms: i64,
}

/// One page of a list (`GET /v1/keys`, `/v1/users`, `/v1/audit`), oldest
/// first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
/// Serialize such a field with `skip_serializing_if = "Option::is_none"`,
/// so `Some(None)` goes out as `null` and `None` not at all.
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// For `skip_serializing_if` on flags that default to false.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}
