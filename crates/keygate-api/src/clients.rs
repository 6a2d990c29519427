//! `/v1/clients`: services that authenticate with a client certificate.
//!
//! A client is matched either by a pinned certificate (`thumbprint`: its
//! SHA-256, base64url as in `x5t#S256` or hex) or by a name under a named
//! CA (`ca` plus exactly one of `spiffe_id`, `dns`, `subject`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::common::{PropagationView, RateLimitView, double_option, is_false};

/// How a certificate is tied to the client: give `thumbprint` alone, or
/// `ca` with exactly one of `spiffe_id`, `dns`, `subject`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatcherFields {
    /// SHA-256 of the certificate's DER: 43 base64url characters
    /// (`x5t#S256`) or 64 hex digits. Any issuer, self-signed included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbprint: Option<String>,
    /// A CA name from `[mtls] cas`: the certificate must chain to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// `spiffe://domain/path`, or a prefix ending in `/*` (whole segments below it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spiffe_id: Option<String>,
    /// A DNS SAN, or `*.name` (exactly one more leftmost label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<String>,
    /// The subject, exactly: `CN=api, O=Example`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl MatcherFields {
    pub fn is_empty(&self) -> bool {
        *self == MatcherFields::default()
    }
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClientRequest {
    pub name: String,
    /// Who runs the service.
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitView>,
    // Not `#[serde(flatten)]`: serde cannot combine it with
    // `deny_unknown_fields`, and a misspelt field must be a 400.
    /// SHA-256 of the certificate's DER to pin (see `MatcherFields`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbprint: Option<String>,
    /// A CA name from `[mtls] cas` (see `MatcherFields`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spiffe_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// Absent fields stay as they are; `null` removes the rate limit. Any
/// matcher field replaces the whole matcher (how a pinned certificate is
/// rotated).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateClientRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// null removes the rate limit.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<RateLimitView>, nullable)]
    pub rate_limit: Option<Option<RateLimitView>>,
    /// SHA-256 of the certificate's DER to pin (see `MatcherFields`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbprint: Option<String>,
    /// A CA name from `[mtls] cas` (see `MatcherFields`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spiffe_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl CreateClientRequest {
    /// The matcher fields, as one value.
    pub fn matcher(&self) -> MatcherFields {
        MatcherFields {
            thumbprint: self.thumbprint.clone(),
            ca: self.ca.clone(),
            spiffe_id: self.spiffe_id.clone(),
            dns: self.dns.clone(),
            subject: self.subject.clone(),
        }
    }
}

impl UpdateClientRequest {
    /// The matcher fields, as one value.
    pub fn matcher(&self) -> MatcherFields {
        MatcherFields {
            thumbprint: self.thumbprint.clone(),
            ca: self.ca.clone(),
            spiffe_id: self.spiffe_id.clone(),
            dns: self.dns.clone(),
            subject: self.subject.clone(),
        }
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.owner.is_none()
            && self.scopes.is_none()
            && self.rate_limit.is_none()
            && self.matcher().is_empty()
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientView {
    /// Public id, `cli_` + 16 characters.
    pub id: String,
    pub name: String,
    pub owner: String,
    pub tenant: Option<String>,
    pub scopes: Vec<String>,
    pub rate_limit: Option<RateLimitView>,
    #[serde(flatten)]
    pub matcher: MatcherFields,
    /// `active` or `revoked`.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub revoked_at: Option<String>,
    /// With `?wait=all` only: how far the change has spread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<PropagationView>,
}

/// The query of `GET /v1/clients`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientListQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Only clients matched under this CA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub include_revoked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}
