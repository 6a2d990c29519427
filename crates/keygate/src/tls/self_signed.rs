//! The handshake verifier of `client_auth_self_signed`: RFC 8705's
//! `self_signed_tls_client_auth`, where a client's certificate is a
//! container for a key registered by its thumbprint, not something a CA
//! vouches for.
//!
//! Written here because rustls offers only the CA check: a certificate a
//! configured CA issues goes through it as usual (revocation included),
//! and only one whose issuer is unknown is taken without a CA. For that one
//! the handshake proves the client holds the leaf's private key (its
//! CertificateVerify signature, checked through the provider) and nothing
//! else: not the dates, not the issuer. The connection then marks the
//! chain `TlsUnverified`, which the client registry accepts only when the
//! leaf's thumbprint is pinned.

use std::sync::Arc;

use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::{
    CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, UnixTime};
use tokio_rustls::rustls::server::ParsedCertificate;
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme,
};

#[derive(Debug)]
pub struct SelfSigned {
    /// The configured CAs' verifier, when there are any.
    ca: Option<Arc<dyn ClientCertVerifier>>,
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl SelfSigned {
    pub fn new(
        ca: Option<Arc<dyn ClientCertVerifier>>,
        mandatory: bool,
        provider: &CryptoProvider,
    ) -> Self {
        Self {
            ca,
            mandatory,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for SelfSigned {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    /// None: a client that filters its certificates by the CAs named
    /// (browsers do) would otherwise never offer a self-signed one.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        if let Some(ca) = &self.ca {
            match ca.verify_client_cert(end_entity, intermediates, now) {
                // Only a certificate no configured CA issued falls through:
                // an expired or revoked CA-issued one stays refused.
                Err(Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {}
                decided => return decided,
            }
        }
        // A well-formed certificate with a key the signature check can use.
        ParsedCertificate::try_from(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
