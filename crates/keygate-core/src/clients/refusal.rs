//! Why a certificate names no client: one code each, stable, for logs,
//! metrics and problem+json. None of them carries the certificate.

use std::fmt;

/// A refused identification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientRefusal {
    /// No certificate was presented (for callers whose route needs one).
    Required,
    /// The chain leads to no configured CA, or the certificate is malformed.
    Untrusted,
    /// The certificate (or one above it) is expired or not yet valid.
    Expired,
    /// A configured CRL lists the certificate (or one above it).
    RevokedCert,
    /// CRLs are configured, but none from the issuer of the certificate
    /// (or of one above it): its status is unknown, and unknown is refused.
    RevocationUnknown,
    /// The certificate names a registered client that was revoked.
    ClientRevoked,
    /// The chain is trusted, but no registered client matches it.
    UnknownClient,
    /// The registry could not be read; the cause is logged where it happened.
    Unavailable,
}

impl ClientRefusal {
    pub const ALL: [ClientRefusal; 8] = [
        ClientRefusal::Required,
        ClientRefusal::Untrusted,
        ClientRefusal::Expired,
        ClientRefusal::RevokedCert,
        ClientRefusal::RevocationUnknown,
        ClientRefusal::ClientRevoked,
        ClientRefusal::UnknownClient,
        ClientRefusal::Unavailable,
    ];

    pub fn code(self) -> &'static str {
        match self {
            ClientRefusal::Required => "mtls_required",
            ClientRefusal::Untrusted => "mtls_untrusted",
            ClientRefusal::Expired => "mtls_expired",
            ClientRefusal::RevokedCert => "mtls_revoked_cert",
            ClientRefusal::RevocationUnknown => "mtls_revocation_unknown",
            ClientRefusal::ClientRevoked => "client_revoked",
            ClientRefusal::UnknownClient => "mtls_unknown_client",
            ClientRefusal::Unavailable => "mtls_unavailable",
        }
    }

    /// The HTTP status: 401 for every refusal of the caller, 503 when the
    /// registry could not answer.
    pub fn status(self) -> u16 {
        match self {
            ClientRefusal::Unavailable => 503,
            _ => 401,
        }
    }

    /// A sentence for problem+json's `detail`: never the certificate's
    /// contents, which would tell a prober what was read.
    pub fn detail(self) -> &'static str {
        match self {
            ClientRefusal::Required => "this route needs a client certificate",
            ClientRefusal::Untrusted => "the client certificate is not issued by a trusted CA",
            ClientRefusal::Expired => "the client certificate is expired or not yet valid",
            ClientRefusal::RevokedCert => "the client certificate is revoked by its CA",
            ClientRefusal::RevocationUnknown => {
                "the client certificate's revocation status is unknown: no CRL from its issuer"
            }
            ClientRefusal::ClientRevoked => "the client is revoked",
            ClientRefusal::UnknownClient => "the client certificate names no registered client",
            ClientRefusal::Unavailable => "client identification is unavailable; retry",
        }
    }
}

impl fmt::Display for ClientRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl std::error::Error for ClientRefusal {}
