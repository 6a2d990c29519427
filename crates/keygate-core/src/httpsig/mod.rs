//! HTTP message signatures (RFC 9421) with `hmac-sha256`, and keygate's
//! policy on top: the `auth = "hmac"` scheme of the gateway.
//!
//! We write our own small implementation: the only RFC 9421 crate is pre-1.0
//! and built on another crypto stack (FINDINGS.md), and keygate needs only
//! requests, only HMAC, and a strict parser whose every refusal has a code.
//!
//! - `structured`: the RFC 8941 subset the signature fields use.
//! - `base`: component values, the signature base (§2.5), HMAC sign/verify.
//! - `digest`: `Content-Digest` (RFC 9530), one-shot or fed while streaming.
//! - `replay`: the `NonceStore` trait and its in-process implementation.
//! - `policy`: which signature keygate accepts and what it must cover.
//! - `service`: `HmacService`, signing secrets and `verify_request`.
//!
//! # For the gateway
//!
//! Build a [`RequestView`] from the incoming request (method, scheme,
//! authority as the client addressed it, path and raw query, and a
//! [`HeaderLookup`] over its headers: in the binary,
//! `keygate::http::signing::HeaderMapLookup` wraps an axum `HeaderMap`), then call
//! [`HmacService::verify_request`](service::HmacService::verify_request)
//! with the body's status:
//!
//! - [`BodyStatus::Empty`]: the request has no body.
//! - [`BodyStatus::Complete`]: the whole (buffered) body; `Content-Digest`
//!   is checked before the call returns.
//! - [`BodyStatus::Streaming`]: the body is still to come. The signature and
//!   its covered `Content-Digest` header are checked now; the returned
//!   [`HmacIdentity::pending_digest`](service::HmacIdentity) must be fed every
//!   chunk ([`BodyDigest::update`]) and [`BodyDigest::finish`]ed before the
//!   upstream's answer is released: on a mismatch, abort the upstream request
//!   and answer 401 `content_digest_mismatch`.
//!
//! In the binary, `keygate::http::signing::verify_parts(&hmac, &parts,
//! scheme, body)` does all of this from an axum request's `Parts`.
//!
//! Every refusal is a [`SignatureRefusal`] whose [`SigCode`] is a stable snake_case
//! code, all answered with 401; `HmacError::Unavailable` (storage, or a full
//! replay cache) is a 503, and `HmacError::OverQuota` (the key holds its
//! quota of live nonces) a 429.

pub mod base;
pub mod digest;
mod key_nonces;
mod memory;
pub mod policy;
pub mod replay;
pub mod service;
pub mod structured;

pub use base::{SignatureParams, sign_hmac_sha256, signature_base, verify_hmac_sha256};
pub use digest::{BodyDigest, check_content_digest, content_digest_sha256};
pub use memory::MemoryNonceStore;
pub use policy::{
    CONTENT_HEADERS, DEFAULT_NONCES_PER_KEY, DEFAULT_SKEW_SECS, HmacPolicy, MAX_SKEW_SECS,
};
pub use replay::{NonceStore, NonceUse, NonceVerdict};
pub use service::{BodyStatus, HmacError, HmacIdentity, HmacService, IssuedHmacSecret};

/// The only algorithm keygate signs or verifies with.
pub const ALG_HMAC_SHA256: &str = "hmac-sha256";

/// Why a signed request was refused; every code answers 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigCode {
    SignatureMissing,
    SignatureMalformed,
    SignatureComponentMissing,
    SignatureExpired,
    SignatureReplayed,
    ContentDigestMissing,
    ContentDigestMismatch,
    SignatureInvalid,
    SignatureKeyUnknown,
    SignatureKeyRevoked,
}

impl SigCode {
    pub const ALL: [SigCode; 10] = [
        SigCode::SignatureMissing,
        SigCode::SignatureMalformed,
        SigCode::SignatureComponentMissing,
        SigCode::SignatureExpired,
        SigCode::SignatureReplayed,
        SigCode::ContentDigestMissing,
        SigCode::ContentDigestMismatch,
        SigCode::SignatureInvalid,
        SigCode::SignatureKeyUnknown,
        SigCode::SignatureKeyRevoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SigCode::SignatureMissing => "signature_missing",
            SigCode::SignatureMalformed => "signature_malformed",
            SigCode::SignatureComponentMissing => "signature_component_missing",
            SigCode::SignatureExpired => "signature_expired",
            SigCode::SignatureReplayed => "signature_replayed",
            SigCode::ContentDigestMissing => "content_digest_missing",
            SigCode::ContentDigestMismatch => "content_digest_mismatch",
            SigCode::SignatureInvalid => "signature_invalid",
            SigCode::SignatureKeyUnknown => "signature_key_unknown",
            SigCode::SignatureKeyRevoked => "signature_key_revoked",
        }
    }
}

/// A signature check's refusal: the code, and a sentence for the client.
/// The detail names fields, labels and components, never a secret or a
/// signature. (The gateway's `Refusal` is another thing: any credential's
/// refusal, as an `ApiError` and a reason.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRefusal {
    pub code: SigCode,
    pub detail: String,
}

impl SignatureRefusal {
    pub fn new(code: SigCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }
    pub(crate) fn malformed(detail: impl Into<String>) -> Self {
        Self::new(SigCode::SignatureMalformed, detail)
    }
}

impl std::fmt::Display for SignatureRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.detail, self.code.as_str())
    }
}

/// The request's header fields, by lowercase name. `Sync`, so a
/// `RequestView` can be held across the awaits of `verify_request`.
pub trait HeaderLookup: Sync {
    /// Every value of the field `name` (given in lowercase), in the order
    /// received; empty when the field is absent.
    fn values(&self, name: &str) -> Vec<&[u8]>;
}

/// Pairs of (name, value), names in any case: for tests and the CLI.
impl<N: AsRef<str> + Sync, V: AsRef<str> + Sync> HeaderLookup for [(N, V)] {
    fn values(&self, name: &str) -> Vec<&[u8]> {
        self.iter()
            .filter(|(n, _)| n.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref().as_bytes())
            .collect()
    }
}

impl<N: AsRef<str> + Sync, V: AsRef<str> + Sync> HeaderLookup for Vec<(N, V)> {
    fn values(&self, name: &str) -> Vec<&[u8]> {
        self.as_slice().values(name)
    }
}

/// What the signature base is built from: a request, independent of any
/// HTTP library.
#[derive(Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The host (and port) the client addressed: `Host` or the URI's authority.
    pub authority: &'a str,
    /// As sent, percent-encoding untouched; empty means `/`.
    pub path: &'a str,
    /// As sent, without the `?`; `None` when the target has no `?`.
    pub query: Option<&'a str>,
    pub headers: &'a dyn HeaderLookup,
}

impl std::fmt::Debug for RequestView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Headers are left out: they may carry credentials.
        f.debug_struct("RequestView")
            .field("method", &self.method)
            .field("scheme", &self.scheme)
            .field("authority", &self.authority)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The parts of an absolute `http(s)` URL, as `RequestView` wants them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts {
    pub scheme: String,
    pub authority: String,
    pub path: String,
    pub query: Option<String>,
}

impl UrlParts {
    /// Splits `scheme://authority/path?query#fragment` (the fragment is
    /// dropped: it never reaches the server). No user info, no spaces.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or("the URL must start with http:// or https://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err("the URL must start with http:// or https://".into());
        }
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(end);
        if authority.is_empty() || authority.contains('@') {
            return Err("the URL needs a host, and no user name or password".into());
        }
        if url.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err("the URL must be ASCII without spaces (percent-encode the rest)".into());
        }
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (target, None),
        };
        Ok(Self {
            scheme,
            authority: authority.to_owned(),
            path: if path.is_empty() {
                "/".into()
            } else {
                path.to_owned()
            },
            query,
        })
    }

    pub fn view<'a>(&'a self, method: &'a str, headers: &'a dyn HeaderLookup) -> RequestView<'a> {
        RequestView {
            method,
            scheme: &self.scheme,
            authority: &self.authority,
            path: &self.path,
            query: self.query.as_deref(),
            headers,
        }
    }
}

#[cfg(test)]
mod tests;
