//! The short internal JWT handed upstream: minted at most once per identity
//! and route while it has more than `REUSE_MARGIN` seconds left, since an
//! ES256 signature costs more than the rest of a proxied request.

use std::collections::HashMap;

use axum::http::HeaderValue;
use keygate_core::apikey::KeyId;
use keygate_core::jwt::{
    ClientPrincipal, Principal, TokenClaims, TokenKind, TokenRequest, TokenService, UserPrincipal,
};
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
    // Length-prefixed fields, and lists counted, so no two identities hash
    // the same input.
    fn field(h: &mut Sha256, v: &str) {
        h.update((v.len() as u64).to_be_bytes());
        h.update(v.as_bytes());
    }
    fn list<'a>(h: &mut Sha256, items: impl ExactSizeIterator<Item = &'a str>) {
        h.update((items.len() as u64).to_be_bytes());
        items.for_each(|v| field(h, v));
    }
    let mut h = Sha256::new();
    field(&mut h, route);
    field(&mut h, id.kind.map_or("", TokenKind::as_str));
    field(&mut h, id.key_id.as_ref().map_or("", KeyId::as_str));
    field(&mut h, id.client_id.as_ref().map_or("", KeyId::as_str));
    field(&mut h, id.key_owner.as_deref().unwrap_or(""));
    field(&mut h, id.subject.as_deref().unwrap_or(""));
    field(&mut h, id.tenant.as_ref().map_or("", Tenant::as_str));
    list(&mut h, id.scopes.iter().map(Scope::as_str));
    list(&mut h, id.roles.iter().map(Role::as_str));
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
    Ok(claims(id)?.request(route.to_owned(), ttl))
}

/// What the upstream may rely on: every value in `id` came typed from a
/// verified key or token; only its shape can be keygate's own fault.
fn claims(id: &Identity) -> Result<TokenClaims, keygate_core::Error> {
    let missing = || keygate_core::Error::Internal("the principal has no identifier".into());
    let kind = id.kind.ok_or_else(|| {
        keygate_core::Error::Internal("an anonymous request has no principal to vouch for".into())
    })?;
    let principal = match kind {
        TokenKind::User => Principal::User(UserPrincipal {
            subject: id.subject.clone().ok_or_else(missing)?,
            session: None,
            client: id.client_id.clone(),
        }),
        // A client's subject is its `client_id` (`token_subject`).
        TokenKind::Client => Principal::Client(ClientPrincipal {
            key_id: id.client_id.clone().ok_or_else(missing)?,
            owner: id.key_owner.clone(),
        }),
    };
    Ok(TokenClaims {
        principal,
        tenant: id.tenant.clone(),
        roles: id.roles.clone(),
        scopes: id.scopes.clone(),
        custom: Map::new(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{Value, json};

    const KEY: &str = "key_AAAAAAAAAAAAAAAA";

    fn key() -> KeyId {
        KeyId::parse(KEY).unwrap()
    }

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
            key_id: Some(key()),
            client_id: Some(key()),
            key_owner: Some("someone".into()),
            subject: Some("usr_x".into()),
            tenant: Some(Tenant::parse("acme").unwrap()),
            scopes: vec![
                Scope::parse("orders:read").unwrap(),
                Scope::parse("orders:write").unwrap(),
            ],
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
            client_id: Some(key()),
            key_owner: Some("usr_victim".into()),
            roles: vec![Role::parse("admin").unwrap()],
            ..Identity::default()
        };
        let expected = json!({
            "kg_kind": "client", "client_id": KEY, "kg_owner": "usr_victim", "roles": ["admin"],
        });
        assert_eq!(wire(&client), (KEY.into(), expected));
    }

    #[test]
    fn nobody_and_a_principal_without_an_identifier_get_no_token() {
        assert!(request("orders", 60, &Identity::default()).is_err());
        let bad = Identity {
            kind: Some(TokenKind::Client),
            key_id: Some(key()),
            ..Identity::default()
        };
        assert!(matches!(
            request("orders", 60, &bad),
            Err(keygate_core::Error::Internal(_))
        ));
    }

    #[test]
    fn identities_that_differ_in_any_field_or_list_split_hash_apart() {
        let scopes = |names: &[&str]| names.iter().map(|n| Scope::parse(n).unwrap()).collect();
        let a = Identity {
            kind: Some(TokenKind::Client),
            client_id: Some(key()),
            scopes: scopes(&["a:b", "c:d"]),
            ..Identity::default()
        };
        let mut b = a.clone();
        b.scopes = scopes(&["a:b"]);
        let mut c = a.clone();
        c.roles = vec![Role::parse("c-d").unwrap()];
        assert_ne!(digest("r", &a), digest("r", &b));
        assert_ne!(digest("r", &b), digest("r", &c));
        assert_ne!(digest("r", &a), digest("s", &a));
        assert_eq!(digest("r", &a), digest("r", &a.clone()));
    }
}
