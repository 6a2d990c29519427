//! The short internal JWT handed upstream: minted at most once per identity
//! and route while it has more than `REUSE_MARGIN` seconds left, since an
//! ES256 signature costs more than the rest of a proxied request.

use std::collections::HashMap;

use axum::http::HeaderValue;
use keygate_core::jwt::{OWNER_CLAIM, TokenKind, TokenRequest, TokenService};
use parking_lot::Mutex;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::identity::Identity;

/// A cached token is reused only while it has more than this many seconds left.
pub const REUSE_MARGIN: i64 = 10;
const CAPACITY: usize = 50_000;

type IdentityDigest = [u8; 32];
/// `Bearer <token>`, ready to send (a clone shares its bytes), and `exp`.
type Minted = (HeaderValue, i64);

/// Minted tokens, keyed by a digest of route and identity: the cache holds
/// no credential, and its key reveals no identity either.
pub struct InternalTokens {
    minted: Mutex<HashMap<IdentityDigest, Minted>>,
}

impl Default for InternalTokens {
    fn default() -> Self {
        Self {
            minted: Mutex::new(HashMap::new()),
        }
    }
}

fn digest(route: &str, id: &Identity) -> [u8; 32] {
    let mut h = Sha256::new();
    // Length-prefixed fields, so no two identities hash the same input.
    let mut field = |v: &str| {
        h.update((v.len() as u64).to_be_bytes());
        h.update(v.as_bytes());
    };
    field(route);
    field(id.kind.map_or("", TokenKind::as_str));
    field(id.key_id.as_deref().unwrap_or(""));
    field(id.client_id.as_deref().unwrap_or(""));
    field(id.key_owner.as_deref().unwrap_or(""));
    field(id.subject.as_deref().unwrap_or(""));
    field(id.tenant.as_deref().unwrap_or(""));
    field(&id.scopes.join(" "));
    field(&id.roles.join(","));
    h.finalize().into()
}

impl InternalTokens {
    /// The `Authorization` value carrying the internal token for `id`.
    pub fn bearer(
        &self,
        tokens: &TokenService,
        route: &str,
        id: &Identity,
    ) -> Result<HeaderValue, keygate_core::Error> {
        let now = tokens.clock().now_secs();
        let key = digest(route, id);
        if let Some((token, exp)) = self.minted.lock().get(&key)
            && exp - now > REUSE_MARGIN
        {
            return Ok(token.clone());
        }
        let minted = mint(tokens, route, id)?;
        self.remember(key, minted.clone(), now);
        Ok(minted.0)
    }

    fn remember(&self, key: IdentityDigest, minted: Minted, now: i64) {
        let mut cache = self.minted.lock();
        if cache.len() >= CAPACITY {
            cache.retain(|_, (_, exp)| *exp - now > REUSE_MARGIN);
            if cache.len() >= CAPACITY {
                cache.clear();
            }
        }
        cache.insert(key, minted);
    }

    /// Forgets every minted token (a route reload may change what they carry).
    pub fn clear(&self) {
        self.minted.lock().clear();
    }
}

/// Signs a new internal token for `id`, whose audience is the route. It
/// says which kind of principal it carries (`kg_kind`, set by `issue`),
/// and names the key whenever one is behind the request.
fn mint(tokens: &TokenService, route: &str, id: &Identity) -> Result<Minted, keygate_core::Error> {
    let kind = id.kind.ok_or_else(|| {
        keygate_core::Error::Internal("an anonymous request has no principal to vouch for".into())
    })?;
    let subject = id
        .token_subject()
        .ok_or_else(|| keygate_core::Error::Internal("the principal has no identifier".into()))?;
    let issued = tokens.issue(TokenRequest {
        kind,
        subject: subject.to_owned(),
        audience: route.to_owned(),
        ttl: tokens.config().internal_token_ttl,
        not_issued_before: None,
        claims: claims(kind, id),
    })?;
    let token = HeaderValue::try_from(format!("Bearer {}", issued.token)).map_err(|_| {
        keygate_core::Error::Internal("a minted token is not a header value".into())
    })?;
    Ok((token, issued.expires_at))
}

/// The claims beside `sub` and `aud`: what the upstream may rely on.
fn claims(kind: TokenKind, id: &Identity) -> Map<String, Value> {
    let mut claims = Map::new();
    if let Some(client_id) = &id.client_id {
        claims.insert("client_id".into(), client_id.clone().into());
    }
    if let (TokenKind::Client, Some(owner)) = (kind, &id.key_owner) {
        claims.insert(OWNER_CLAIM.into(), owner.clone().into());
    }
    if let Some(tenant) = &id.tenant {
        claims.insert("tenant".into(), tenant.clone().into());
    }
    if !id.roles.is_empty() {
        claims.insert(
            "roles".into(),
            Value::Array(id.roles.iter().cloned().map(Value::String).collect()),
        );
    }
    if !id.scopes.is_empty() {
        claims.insert("scope".into(), id.scopes.join(" ").into());
    }
    claims
}
