//! Which kind of principal a keygate token names. keygate signs user
//! session tokens and client-credentials tokens with the same keys, issuer
//! and audience, so nothing but a claim tells them apart: `kg_kind`, which
//! keygate sets on every token it signs and checks wherever a kind matters.
//! A token without it (minted before keygate set it) has no kind and is
//! refused wherever one is required.

use crate::{Claims, Error};

/// The claim naming the kind: `"user"` or `"client"`.
pub const KIND_CLAIM: &str = "kg_kind";
/// The claim carrying a client token's key owner (free text, never `sub`).
pub const OWNER_CLAIM: &str = "kg_owner";

/// The principal a token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// A person who logged in: `sub` is the user id.
    User,
    /// An application holding an API key: `sub` and `client_id` are the key id.
    Client,
}

impl TokenKind {
    /// The claim's value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Client => "client",
        }
    }

    /// The kind a claim value names; anything else is no kind.
    #[must_use]
    pub fn from_claim(value: &str) -> Option<Self> {
        match value {
            "user" => Some(Self::User),
            "client" => Some(Self::Client),
            _ => None,
        }
    }
}

/// Which kinds a resource takes. The default is users only: a client
/// token is let in only where someone chose to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum AcceptedKinds {
    #[default]
    Users,
    Clients,
    /// Either kind, but a token must still say which it is.
    Any,
}

impl AcceptedKinds {
    /// `users`, `clients` or `any`, as configuration spells them.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "users" => Some(Self::Users),
            "clients" => Some(Self::Clients),
            "any" => Some(Self::Any),
            _ => None,
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Clients => "clients",
            Self::Any => "any",
        }
    }

    /// The token's kind when it is one of these; a token without a kind is
    /// refused whatever the choice.
    pub fn check(self, claims: &Claims) -> Result<TokenKind, Error> {
        let kind = claims.kind()?;
        match (self, kind) {
            (Self::Any, _)
            | (Self::Users, TokenKind::User)
            | (Self::Clients, TokenKind::Client) => Ok(kind),
            _ => Err(Error::WrongTokenKind),
        }
    }
}

impl Claims {
    /// The token's kind from `kg_kind`. Missing is an error, as is any value
    /// other than `user` or `client`.
    pub fn kind(&self) -> Result<TokenKind, Error> {
        match self.extra.get(KIND_CLAIM) {
            None => Err(Error::MissingClaim { name: KIND_CLAIM }),
            Some(value) => value
                .as_str()
                .and_then(TokenKind::from_claim)
                .ok_or(Error::InvalidClaim { name: KIND_CLAIM }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NumericDate;
    use serde_json::{Map, Value, json};

    fn claims(kind: Option<Value>) -> Claims {
        let mut extra = Map::new();
        if let Some(kind) = kind {
            extra.insert(KIND_CLAIM.into(), kind);
        }
        Claims {
            iss: "i".into(),
            sub: Some("s".into()),
            aud: vec!["a".into()],
            exp: NumericDate::from_secs(10),
            nbf: None,
            iat: None,
            jti: None,
            extra,
        }
    }

    #[test]
    fn each_choice_takes_its_kinds_only() {
        let user = claims(Some(json!("user")));
        let client = claims(Some(json!("client")));
        assert_eq!(AcceptedKinds::default().check(&user), Ok(TokenKind::User));
        assert_eq!(
            AcceptedKinds::Users.check(&client),
            Err(Error::WrongTokenKind)
        );
        assert_eq!(AcceptedKinds::Clients.check(&client), Ok(TokenKind::Client));
        assert_eq!(
            AcceptedKinds::Clients.check(&user),
            Err(Error::WrongTokenKind)
        );
        assert_eq!(AcceptedKinds::Any.check(&user), Ok(TokenKind::User));
        assert_eq!(AcceptedKinds::Any.check(&client), Ok(TokenKind::Client));
    }

    #[test]
    fn a_token_without_a_valid_kind_is_refused_by_every_choice() {
        for kind in [
            None,
            Some(json!("User")),
            Some(json!(1)),
            Some(json!(["user"])),
        ] {
            let c = claims(kind.clone());
            for accepted in [
                AcceptedKinds::Users,
                AcceptedKinds::Clients,
                AcceptedKinds::Any,
            ] {
                let refused = accepted.check(&c);
                assert!(
                    matches!(
                        refused,
                        Err(Error::MissingClaim { .. } | Error::InvalidClaim { .. })
                    ),
                    "{kind:?} {accepted:?}: {refused:?}"
                );
            }
        }
    }
}
