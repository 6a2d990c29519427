//! Whether a listener's TLS handshake asks the client for a certificate:
//! `[tls] client_auth`, and a listener's own override (`[gateway]
//! client_auth`). What vouches for the certificate is the binary's TLS
//! configuration.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuthMode {
    /// No certificate is asked for.
    #[default]
    Off,
    /// Asked for; a client without one still connects, one whose
    /// certificate fails verification is refused in the handshake.
    Request,
    /// A client without a certificate is refused in the handshake.
    Require,
}

impl ClientAuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthMode::Off => "off",
            ClientAuthMode::Request => "request",
            ClientAuthMode::Require => "require",
        }
    }

    /// Whether the handshake asks for a certificate at all.
    pub fn asks(self) -> bool {
        self != ClientAuthMode::Off
    }
}
