//! The short internal JWT handed upstream: minted at most once per identity
//! and route while it has more than `REUSE_MARGIN` seconds left, since an
//! ES256 signature costs more than the rest of a proxied request.

use std::collections::HashMap;

use axum::http::HeaderValue;
use keygate_core::jwt::{
    ClientPrincipal, Principal, TokenClaims, TokenKind, TokenRequest, TokenService, UserPrincipal,
};
use parking_lot::Mutex;
use serde_json::Map;

use super::config::TokenEncryption;
use super::identity::Identity;

/// A cached token is reused only while it has more than this many seconds left.
pub const REUSE_MARGIN: i64 = 10;
const CAPACITY: usize = 50_000;

/// `Bearer <token>`, ready to send (a clone shares its bytes), and `exp`.
type Minted = (HeaderValue, i64);

/// Minted tokens by route, then by identity. The cache holds no
/// credential; it is keyed by the identity itself (what the token it
/// maps to says anyway), looked up by reference: a digest of it cost more
/// than the rest of an `api_key` request's own work.
#[derive(Default)]
pub struct InternalTokens {
    minted: Mutex<Cache>,
}

/// foldhash, not std's SipHash: every key is an identity keygate verified
/// (a client cannot choose one without holding its credential), each map
/// has its own random seed, and SipHash over an identity's fields cost
/// ~1.7k instructions per request, more than the proxy's header work.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct Cache {
    routes: FastMap<String, FastMap<Identity, Minted>>,
    len: usize,
}

impl InternalTokens {
    /// The `Authorization` value carrying the internal token for `id`.
    /// With `encryption`, the token is a nested JWT encrypted to the
    /// upstream's key (the cache then holds the encrypted form).
    pub fn bearer(
        &self,
        tokens: &TokenService,
        route: &str,
        encryption: Option<&TokenEncryption>,
        id: &Identity,
    ) -> Result<HeaderValue, keygate_core::Error> {
        let now = tokens.clock().now_secs();
        if let Some((token, exp)) = self.minted.lock().get(route, id)
            && exp - now > REUSE_MARGIN
        {
            return Ok(token.clone());
        }
        let minted = mint(tokens, route, encryption, id)?;
        self.minted.lock().insert(route, id, minted.clone(), now);
        Ok(minted.0)
    }

    /// Forgets every minted token (a route reload may change what they carry).
    pub fn clear(&self) {
        *self.minted.lock() = Cache::default();
    }
}

impl Cache {
    fn get(&self, route: &str, id: &Identity) -> Option<&Minted> {
        self.routes.get(route)?.get(id)
    }

    fn insert(&mut self, route: &str, id: &Identity, minted: Minted, now: i64) {
        if self.len >= CAPACITY {
            for tokens in self.routes.values_mut() {
                tokens.retain(|_, (_, exp)| *exp - now > REUSE_MARGIN);
            }
            self.count();
            if self.len >= CAPACITY {
                self.routes.clear();
                self.len = 0;
            }
        }
        let tokens = match self.routes.get_mut(route) {
            Some(tokens) => tokens,
            None => self.routes.entry(route.to_owned()).or_default(),
        };
        if tokens.insert(id.clone(), minted).is_none() {
            self.len += 1;
        }
    }

    fn count(&mut self) {
        self.routes.retain(|_, tokens| !tokens.is_empty());
        self.len = self.routes.values().map(FastMap::len).sum();
    }
}

/// Signs a new internal token for `id`, whose audience is the route. It
/// says which kind of principal it carries (`kg_kind`), and names the key
/// whenever one is behind the request.
fn mint(
    tokens: &TokenService,
    route: &str,
    encryption: Option<&TokenEncryption>,
    id: &Identity,
) -> Result<Minted, keygate_core::Error> {
    let request = request(route, tokens.config().internal_token_ttl, id)?;
    let issued = tokens.issue(request)?;
    let token = match encryption {
        Some(encryption) => encryption.encrypt_nested(&issued.token)?,
        None => issued.token,
    };
    let token = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
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
            id: id.client_id.clone().ok_or_else(missing)?,
            owner: id.key_owner.clone(),
        }),
    };
    Ok(TokenClaims {
        principal,
        tenant: id.tenant.clone(),
        roles: id.roles.clone(),
        scopes: id.scopes.clone(),
        custom: Map::new(),
        cnf: None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use keygate_core::keys::apikey::KeyId;
    use keygate_core::model::{Scope, Tenant};
    use keygate_core::users::model::Role;
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
            client_id: Some(key().into()),
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
            client_id: Some(key().into()),
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
    fn the_cache_answers_only_for_the_same_route_and_identity() {
        let scopes = |names: &[&str]| names.iter().map(|n| Scope::parse(n).unwrap()).collect();
        let a = Identity {
            kind: Some(TokenKind::Client),
            client_id: Some(key().into()),
            scopes: scopes(&["a:b", "c:d"]),
            ..Identity::default()
        };
        let mut b = a.clone();
        b.scopes = scopes(&["a:b"]);
        let mut cache = Cache::default();
        let token = HeaderValue::from_static("Bearer a");
        cache.insert("r", &a, (token.clone(), 100), 0);
        assert_eq!(cache.get("r", &a), Some(&(token, 100)));
        assert_eq!(cache.get("r", &b), None);
        assert_eq!(cache.get("s", &a), None);
        // Full: what has expired goes first.
        cache.len = CAPACITY;
        cache.insert("r", &b, (HeaderValue::from_static("Bearer b"), 200), 150);
        assert_eq!(cache.get("r", &a), None);
        assert_eq!((cache.len, cache.get("r", &b).is_some()), (1, true));
    }
}
