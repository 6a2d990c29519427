//! Who is on the other end of a connection: its address and, over TLS,
//! the client certificate chain its handshake took. Read once per
//! connection; every request on it shares the chain (an `Arc`).

use std::net::SocketAddr;

use keygate_core::clients::PeerCertificate;
use tokio_rustls::rustls::server::ServerConnection;
use tokio_rustls::rustls::{CertificateError, Error as TlsError};

use super::TlsSource;

/// The peer of one connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The chain the client presented, leaf first, when it presented one
    /// and the handshake's verifier accepted it.
    pub certificate: Option<PeerCertificate>,
}

impl Peer {
    pub(crate) fn plain(addr: SocketAddr) -> Self {
        Self {
            addr,
            certificate: None,
        }
    }

    /// The peer of a finished handshake: rustls keeps the chain only when
    /// the verifier accepted it, so a chain here has passed the listener's
    /// `client_auth`.
    pub(crate) fn after_handshake(
        addr: SocketAddr,
        tls: &ServerConnection,
        source: &dyn TlsSource,
    ) -> Self {
        let certificate = tls.peer_certificates().and_then(|chain| {
            let kind = source.certificate_source(chain);
            PeerCertificate::new(chain.iter().map(|c| c.as_ref().to_vec()).collect(), kind)
        });
        Self { addr, certificate }
    }
}

/// Why a handshake refused a client certificate, as the log names it;
/// `None` for a failure that is not about one (a scanner, a client that
/// speaks no TLS, a protocol mismatch).
pub(crate) fn client_certificate_refusal(e: &TlsError) -> Option<&'static str> {
    let code = match e {
        TlsError::NoCertificatesPresented => "client_certificate_missing",
        TlsError::InvalidCertificate(why) => match why {
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => "client_certificate_expired",
            CertificateError::Revoked => "client_certificate_revoked",
            CertificateError::UnknownRevocationStatus
            | CertificateError::ExpiredRevocationList
            | CertificateError::ExpiredRevocationListContext { .. } => {
                "client_certificate_revocation_unknown"
            }
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                "client_certificate_untrusted"
            }
            _ => "client_certificate_invalid",
        },
        _ => return None,
    };
    Some(code)
}

/// Logs and counts a handshake that refused a client certificate, with
/// its code and the peer, never the certificate; other failures are
/// logged at debug only.
pub(crate) fn handshake_failed(addr: SocketAddr, e: &std::io::Error, source: &dyn TlsSource) {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<TlsError>());
    match tls.and_then(client_certificate_refusal) {
        Some(code) => {
            source.refused_client_certificate(code);
            tracing::info!(peer = %addr, code, "TLS handshake refused a client certificate");
        }
        None => tracing::debug!(peer = %addr, error = %e, "TLS handshake failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_certificate_refusal_has_its_code() {
        let code = |e| client_certificate_refusal(&e);
        assert_eq!(
            code(TlsError::NoCertificatesPresented),
            Some("client_certificate_missing")
        );
        let bad = |c| code(TlsError::InvalidCertificate(c));
        assert_eq!(
            bad(CertificateError::Expired),
            Some("client_certificate_expired")
        );
        assert_eq!(
            bad(CertificateError::Revoked),
            Some("client_certificate_revoked")
        );
        assert_eq!(
            bad(CertificateError::UnknownIssuer),
            Some("client_certificate_untrusted")
        );
        assert_eq!(
            bad(CertificateError::UnknownRevocationStatus),
            Some("client_certificate_revocation_unknown")
        );
        assert_eq!(
            bad(CertificateError::BadEncoding),
            Some("client_certificate_invalid")
        );
        assert_eq!(code(TlsError::HandshakeNotComplete), None);
    }
}
