//! The client a token or a request speaks for: an API key or a registered
//! mTLS client. Both are written as `client_id`; their prefixes (`key_`,
//! `cli_`) tell them apart, so one can never be read as the other.

use std::fmt;

use crate::clients::model::ClientId;
use crate::keys::apikey::KeyId;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientRef {
    /// An application holding an API key.
    Key(KeyId),
    /// A service calling with a client certificate the registry knows.
    Mtls(ClientId),
}

impl ClientRef {
    /// `key_…` or `cli_…`; anything else is no client.
    pub fn parse(s: &str) -> Option<Self> {
        if let Ok(key) = KeyId::parse(s) {
            return Some(Self::Key(key));
        }
        ClientId::parse(s).ok().map(Self::Mtls)
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Key(k) => k.as_str(),
            Self::Mtls(c) => c.as_str(),
        }
    }

    pub fn key(&self) -> Option<&KeyId> {
        match self {
            Self::Key(k) => Some(k),
            Self::Mtls(_) => None,
        }
    }
}

impl fmt::Display for ClientRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<KeyId> for ClientRef {
    fn from(k: KeyId) -> Self {
        Self::Key(k)
    }
}

impl From<ClientId> for ClientRef {
    fn from(c: ClientId) -> Self {
        Self::Mtls(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_decides_and_nothing_else_is_a_client() {
        let key = ClientRef::parse("key_AAAAAAAAAAAAAAAA");
        assert!(matches!(key, Some(ClientRef::Key(_))));
        let cli = ClientRef::parse("cli_AAAAAAAAAAAAAAAA");
        assert!(matches!(cli, Some(ClientRef::Mtls(_))));
        assert_eq!(
            cli.map(|c| c.to_string()).as_deref(),
            Some("cli_AAAAAAAAAAAAAAAA")
        );
        for bad in ["usr_AAAAAAAAAAAAAAAA", "cli_short", "", "key_"] {
            assert_eq!(ClientRef::parse(bad), None, "{bad}");
        }
    }
}
