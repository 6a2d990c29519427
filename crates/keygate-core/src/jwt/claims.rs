//! The claims keygate writes into the tokens it signs, beyond the registered
//! ones (`iss`, `sub`, `aud`, `iat`, `nbf`, `exp`, `jti`, which `issue`
//! sets): one type, `TokenClaims`, used to write them (login, refresh,
//! client credentials, the gateway's internal token) and to read them back
//! (introspection, the gateway), so the two sides cannot drift apart.
//!
//! Whom a token speaks for is the `Principal`: a user or a client (an API
//! key or a registered mTLS client), never both. Reading takes the kinds the caller accepts, so a client
//! token can never be read as a user's. Names keygate does not know are
//! tolerated and kept (`custom`); a known claim with a value keygate would
//! never write is refused.

use keygate_verify::{
    AcceptedKinds, Claims, Error as ClaimError, KIND_CLAIM, OWNER_CLAIM, TokenKind,
};
use serde_json::{Map, Value};

use super::client_ref::ClientRef;
use super::service::TokenRequest;
use crate::clients::model::ClientRecord;
use crate::model::{KeyRecord, Scope, Tenant};
use crate::users::model::Role;

/// The tenant the principal belongs to.
pub const TENANT_CLAIM: &str = "tenant";
/// A user's roles, as a list.
pub const ROLES_CLAIM: &str = "roles";
/// Scopes, space-separated (RFC 8693 §4.2).
pub const SCOPE_CLAIM: &str = "scope";
/// The key behind the request: a client token's own key, or the
/// application key beside a user (RFC 8693 §4.3).
pub const CLIENT_ID_CLAIM: &str = "client_id";
/// The session (refresh family) a user token was issued for.
pub const SESSION_CLAIM: &str = "sid";

/// RFC 7800 / RFC 8705: the client certificate a token is bound to.
pub use keygate_verify::{CNF_CLAIM, X5T_S256};

/// Every claim name `TokenClaims` gives a meaning to: none of them is ever
/// a custom claim, whatever the token's kind.
const KNOWN: [&str; 8] = [
    CNF_CLAIM,
    KIND_CLAIM,
    OWNER_CLAIM,
    CLIENT_ID_CLAIM,
    SESSION_CLAIM,
    TENANT_CLAIM,
    ROLES_CLAIM,
    SCOPE_CLAIM,
];

/// Whom a token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User(UserPrincipal),
    Client(ClientPrincipal),
}

/// A person: `sub` is the user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPrincipal {
    /// Never a key id (`issue` refuses one), so a user token and a client
    /// token never share a `sub`.
    pub subject: String,
    /// `sid`: the session a login or refresh issued the token for.
    pub session: Option<String>,
    /// `client_id`: the application (its API key or its registered mTLS
    /// client) presented beside the user.
    pub client: Option<ClientRef>,
}

/// An application: `sub` and `client_id` are its API key's id or its
/// registered mTLS client's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPrincipal {
    pub id: ClientRef,
    /// `kg_owner`: the client's owner, free text a tenant admin chooses,
    /// so it is never `sub` (it could be anyone's user id).
    pub owner: Option<String>,
}

/// keygate's claims of one token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenClaims {
    pub principal: Principal,
    pub tenant: Option<Tenant>,
    /// Always written on a user token (an empty list included), on a client
    /// token only when there are some.
    pub roles: Vec<Role>,
    /// Written only when there are some.
    pub scopes: Vec<Scope>,
    /// Every other claim: a user's custom claims when writing, names keygate
    /// does not know when reading. Never one of keygate's own names: those
    /// are dropped from here on both sides.
    pub custom: Map<String, Value>,
    /// RFC 8705: the SHA-256 of the DER of the client certificate the
    /// token is bound to (`cnf.x5t#S256`); whoever presents it must hold
    /// that certificate's key.
    pub cnf: Option<[u8; 32]>,
}

impl TokenClaims {
    /// A client-credentials token for `record`, narrowed to `scopes`.
    pub fn client(record: &KeyRecord, scopes: Vec<Scope>) -> Self {
        Self {
            principal: Principal::Client(ClientPrincipal {
                id: ClientRef::Key(record.id.clone()),
                owner: Some(record.owner.clone()),
            }),
            tenant: record.tenant.clone(),
            roles: Vec::new(),
            scopes,
            custom: Map::new(),
            cnf: None,
        }
    }

    /// A client-credentials token for a registered mTLS client, narrowed
    /// to `scopes` and bound to the certificate it authenticated with.
    pub fn mtls_client(record: &ClientRecord, scopes: Vec<Scope>, cnf: [u8; 32]) -> Self {
        Self {
            principal: Principal::Client(ClientPrincipal {
                id: ClientRef::Mtls(record.id.clone()),
                owner: Some(record.owner.clone()),
            }),
            tenant: record.tenant.clone(),
            roles: Vec::new(),
            scopes,
            custom: Map::new(),
            cnf: Some(cnf),
        }
    }

    pub fn kind(&self) -> TokenKind {
        match self.principal {
            Principal::User(_) => TokenKind::User,
            Principal::Client(_) => TokenKind::Client,
        }
    }

    /// `sub`: the user id, or the client's key id (never its owner).
    pub fn subject(&self) -> &str {
        match &self.principal {
            Principal::User(user) => &user.subject,
            Principal::Client(client) => client.id.as_str(),
        }
    }

    /// The token's request to `TokenService::issue`.
    pub fn request(&self, audience: String, ttl: i64) -> TokenRequest {
        TokenRequest {
            kind: self.kind(),
            subject: self.subject().to_owned(),
            audience,
            ttl,
            not_issued_before: None,
            claims: self.to_map(),
        }
    }

    /// The claims as JSON members, `kg_kind` included, registered claims
    /// left out.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut out = self.custom.clone();
        for name in KNOWN {
            out.remove(name);
        }
        out.insert(KIND_CLAIM.into(), self.kind().as_str().into());
        match &self.principal {
            Principal::User(user) => {
                if let Some(sid) = &user.session {
                    out.insert(SESSION_CLAIM.into(), sid.clone().into());
                }
                if let Some(client) = &user.client {
                    out.insert(CLIENT_ID_CLAIM.into(), client.as_str().into());
                }
            }
            Principal::Client(client) => {
                out.insert(CLIENT_ID_CLAIM.into(), client.id.as_str().into());
                if let Some(owner) = &client.owner {
                    out.insert(OWNER_CLAIM.into(), owner.clone().into());
                }
            }
        }
        if let Some(tenant) = &self.tenant {
            out.insert(TENANT_CLAIM.into(), tenant.as_str().into());
        }
        // A session's token always says its user's roles, an empty list
        // included; any other token (the gateway's internal one) names
        // roles only when there are some.
        let session = matches!(&self.principal, Principal::User(u) if u.session.is_some());
        if session || !self.roles.is_empty() {
            let roles = self.roles.iter().map(|r| Value::from(r.as_str())).collect();
            out.insert(ROLES_CLAIM.into(), Value::Array(roles));
        }
        if !self.scopes.is_empty() {
            out.insert(SCOPE_CLAIM.into(), scope_text(&self.scopes).into());
        }
        if let Some(thumb) = &self.cnf {
            let x5t = keygate_verify::base64url_encode(thumb);
            out.insert(CNF_CLAIM.into(), serde_json::json!({ X5T_S256: x5t }));
        }
        out
    }

    /// The claims of a verified token whose kind is one of `accepted`. A
    /// token without a kind is refused whatever `accepted` says.
    pub fn read(claims: &Claims, accepted: AcceptedKinds) -> Result<Self, ClaimError> {
        let mut typed = Self::read_identity(claims, accepted)?;
        // keygate's own names mean nothing as custom claims, whatever the
        // kind (`sid` on a client token, an owner on a user's).
        typed.custom = claims
            .extra
            .iter()
            .filter(|(name, _)| !KNOWN.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        Ok(typed)
    }

    /// As `read`, but `custom` is left empty: whom the token speaks for and
    /// what it grants, read without copying its other claims, since the
    /// gateway reads them on every request.
    pub fn read_identity(claims: &Claims, accepted: AcceptedKinds) -> Result<Self, ClaimError> {
        let kind = accepted.check(claims)?;
        let extra = &claims.extra;
        let client = text(extra, CLIENT_ID_CLAIM)?
            .map(|id| ClientRef::parse(id).ok_or_else(|| invalid(CLIENT_ID_CLAIM)))
            .transpose()?;
        let principal = match kind {
            TokenKind::User => Principal::User(UserPrincipal {
                subject: claims
                    .sub
                    .clone()
                    .ok_or(ClaimError::MissingClaim { name: "sub" })?,
                session: text(extra, SESSION_CLAIM)?.map(str::to_owned),
                client,
            }),
            TokenKind::Client => Principal::Client(ClientPrincipal {
                id: client.ok_or(ClaimError::MissingClaim {
                    name: CLIENT_ID_CLAIM,
                })?,
                owner: text(extra, OWNER_CLAIM)?.map(str::to_owned),
            }),
        };
        let tenant = text(extra, TENANT_CLAIM)?
            .map(|t| Tenant::parse(t).map_err(|_| invalid(TENANT_CLAIM)))
            .transpose()?;
        Ok(Self {
            principal,
            tenant,
            roles: list(extra, ROLES_CLAIM, |r| Role::parse(r).ok())?,
            scopes: list(extra, SCOPE_CLAIM, |s| Scope::parse(s).ok())?,
            custom: Map::new(),
            cnf: claims.x5t_s256()?,
        })
    }
}

/// Scopes as the `scope` claim and RFC 6749's `scope` parameter spell them.
pub fn scope_text(scopes: &[Scope]) -> String {
    let names: Vec<&str> = scopes.iter().map(Scope::as_str).collect();
    names.join(" ")
}

fn invalid(name: &'static str) -> ClaimError {
    ClaimError::InvalidClaim { name }
}

/// A text claim; `null` counts as absent.
fn text<'a>(
    extra: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, ClaimError> {
    match extra.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(name)),
    }
}

/// A list claim: a JSON list of strings or one space-separated string (as
/// `scope` is written), each item parsed.
fn list<T>(
    extra: &Map<String, Value>,
    name: &'static str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, ClaimError> {
    let item = |s: &str| parse(s).ok_or_else(|| invalid(name));
    match extra.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => s.split_whitespace().map(item).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().ok_or_else(|| invalid(name)).and_then(item))
            .collect(),
        Some(_) => Err(invalid(name)),
    }
}

#[cfg(test)]
#[path = "claims_tests.rs"]
mod tests;
