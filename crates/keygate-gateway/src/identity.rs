//! Who a request is, once admitted: what the rate limit counts, what the
//! internal token carries and what forward-auth answers. Nothing here is a
//! secret. Its values are typed as they were verified, so the internal
//! token carries them without parsing them again.

use keygate_core::clients::ClientRecord;
use keygate_core::jwt::{ClientRef, TokenKind};
use keygate_core::keys::apikey::KeyId;
use keygate_core::model::{KeyRecord, Scope, Tenant};
use keygate_core::users::model::Role;

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Identity {
    /// Whom the request speaks for: a user (a user token, with or without
    /// a key beside it) or a client (a key, a signature, a client token).
    /// None only for `auth = "none"`.
    pub kind: Option<TokenKind>,
    /// The key id, when an API key was presented (what the limit counts).
    pub key_id: Option<KeyId>,
    /// The client behind the request: the presented key, the registered
    /// client a certificate named, or a client token's `client_id`.
    pub client_id: Option<ClientRef>,
    /// The client's owner (free text), when a client is the principal.
    pub key_owner: Option<String>,
    /// The user id, when a user token was presented.
    pub subject: Option<String>,
    pub tenant: Option<Tenant>,
    pub scopes: Vec<Scope>,
    pub roles: Vec<Role>,
}

impl Identity {
    /// A key as the principal: an API key, or the key a signature names.
    /// Its scopes come sorted, as the internal token carries them.
    pub fn of_key(record: &KeyRecord) -> Self {
        let mut scopes = record.scopes.clone();
        scopes.sort();
        Self {
            kind: Some(TokenKind::Client),
            key_id: Some(record.id.clone()),
            client_id: Some(ClientRef::Key(record.id.clone())),
            key_owner: Some(record.owner.clone()),
            subject: None,
            tenant: record.tenant.clone(),
            scopes,
            roles: Vec::new(),
        }
    }

    /// A registered mTLS client as the principal.
    pub fn of_client(record: &ClientRecord) -> Self {
        let mut scopes = record.scopes.clone();
        scopes.sort();
        Self {
            kind: Some(TokenKind::Client),
            key_id: None,
            client_id: Some(ClientRef::Mtls(record.id.clone())),
            key_owner: Some(record.owner.clone()),
            subject: None,
            tenant: record.tenant.clone(),
            scopes,
            roles: Vec::new(),
        }
    }

    /// What the rate limit counts: the key, else the client, else the user.
    pub fn limit_key(&self) -> Option<&str> {
        self.key_id
            .as_ref()
            .map(KeyId::as_str)
            .or(self.client_id.as_ref().map(ClientRef::as_str))
            .or(self.subject.as_deref())
    }

    /// `sub` of the internal token: the user for a user, the key id for a
    /// client (never the owner: it is free text and could name a user).
    pub fn token_subject(&self) -> Option<&str> {
        match self.kind? {
            TokenKind::User => self.subject.as_deref(),
            TokenKind::Client => self.client_id.as_ref().map(ClientRef::as_str),
        }
    }

    /// Whether every scope a route needs is among this identity's.
    pub fn has_scopes(&self, needed: &[Scope]) -> bool {
        keygate_http::credentials::scopes_cover(needed, &self.scopes)
    }
}
