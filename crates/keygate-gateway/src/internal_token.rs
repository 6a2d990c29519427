//! The short internal JWT handed upstream: minted at most once per identity
//! and route while it has more than `REUSE_MARGIN` seconds left, since an
//! ES256 signature costs more than the rest of a proxied request.

use std::collections::HashMap;

use axum::http::HeaderValue;
use keygate_core::jwt::{
    ClientPrincipal, Principal, ROLES_CLAIM, TokenClaims, TokenKind, TokenRequest, TokenService,
    UserPrincipal,
};
use keygate_core::keys::apikey::KeyId;
use keygate_core::model::{Scope, Tenant};
use keygate_core::users::model::Role;
use parking_lot::Mutex;
use serde_json::Map;
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
/// says which kind of principal it carries (`kg_kind`), and names the key
/// whenever one is behind the request.
fn mint(tokens: &TokenService, route: &str, id: &Identity) -> Result<Minted, keygate_core::Error> {
    let request = request(route, tokens.config().internal_token_ttl, id)?;
    let issued = tokens.issue(request)?;
    let token = HeaderValue::try_from(format!("Bearer {}", issued.token)).map_err(|_| {
        keygate_core::Error::Internal("a minted token is not a header value".into())
    })?;
    Ok((token, issued.expires_at))
}

fn request(route: &str, ttl: i64, id: &Identity) -> Result<TokenRequest, keygate_core::Error> {
    let claims = claims(id)?;
    let mut request = claims.request(route.to_owned(), ttl);
    // The internal token has always left out an empty list of roles, where
    // a login's token carries one: what upstreams see stays as it was.
    if claims.roles.is_empty() {
        request.claims.remove(ROLES_CLAIM);
    }
    Ok(request)
}

/// What the upstream may rely on, typed: every value in `id` came from a
/// verified key or token, so one that does not parse is keygate's own fault.
fn claims(id: &Identity) -> Result<TokenClaims, keygate_core::Error> {
    let kind = id.kind.ok_or_else(|| {
        keygate_core::Error::Internal("an anonymous request has no principal to vouch for".into())
    })?;
    let subject = id
        .token_subject()
        .ok_or_else(|| keygate_core::Error::Internal("the principal has no identifier".into()))?;
    let client = id
        .client_id
        .as_deref()
        .map(KeyId::parse)
        .transpose()
        .map_err(unparsed)?;
    let principal = match (kind, client) {
        (TokenKind::User, client) => Principal::User(UserPrincipal {
            subject: subject.to_owned(),
            session: None,
            client,
        }),
        // A client's subject is its `client_id` (`token_subject`).
        (TokenKind::Client, key_id) => Principal::Client(ClientPrincipal {
            key_id: key_id.ok_or_else(|| {
                keygate_core::Error::Internal("the principal has no identifier".into())
            })?,
            owner: id.key_owner.clone(),
        }),
    };
    Ok(TokenClaims {
        principal,
        tenant: id
            .tenant
            .as_deref()
            .map(Tenant::parse)
            .transpose()
            .map_err(unparsed)?,
        roles: id
            .roles
            .iter()
            .map(|r| Role::parse(r))
            .collect::<Result<_, _>>()
            .map_err(unparsed)?,
        scopes: id
            .scopes
            .iter()
            .map(|s| Scope::parse(s))
            .collect::<Result<_, _>>()
            .map_err(unparsed)?,
        custom: Map::new(),
    })
}

fn unparsed(e: keygate_core::Error) -> keygate_core::Error {
    keygate_core::Error::Internal(format!("an admitted identity does not parse: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{Value, json};

    const KEY: &str = "key_AAAAAAAAAAAAAAAA";

    fn wire(id: &Identity) -> (String, Value) {
        let request = request("orders", 60, id).unwrap();
        (request.subject, Value::Object(request.claims))
    }

    #[test]
    fn the_wire_form_is_the_one_the_gateway_has_always_sent() {
        // A user with the application key beside, and no roles: the key is
        // its client, no owner, no empty roles list.
        let user = Identity {
            kind: Some(TokenKind::User),
            key_id: Some(KEY.into()),
            client_id: Some(KEY.into()),
            key_owner: Some("someone".into()),
            subject: Some("usr_x".into()),
            tenant: Some("acme".into()),
            scopes: vec!["orders:read".into(), "orders:write".into()],
            roles: Vec::new(),
        };
        let expected = json!({
            "kg_kind": "user", "client_id": KEY, "tenant": "acme",
            "scope": "orders:read orders:write",
        });
        assert_eq!(wire(&user), ("usr_x".into(), expected));
        // A client: its key is `sub` and `client_id`, its owner `kg_owner`.
        let client = Identity {
            kind: Some(TokenKind::Client),
            client_id: Some(KEY.into()),
            key_owner: Some("usr_victim".into()),
            roles: vec!["admin".into()],
            ..Identity::default()
        };
        let expected = json!({
            "kg_kind": "client", "client_id": KEY, "kg_owner": "usr_victim", "roles": ["admin"],
        });
        assert_eq!(wire(&client), (KEY.into(), expected));
    }

    #[test]
    fn nobody_and_a_malformed_identity_get_no_token() {
        assert!(request("orders", 60, &Identity::default()).is_err());
        let bad = Identity {
            kind: Some(TokenKind::Client),
            client_id: Some("not a key id".into()),
            ..Identity::default()
        };
        assert!(matches!(
            request("orders", 60, &bad),
            Err(keygate_core::Error::Internal(_))
        ));
    }
}
