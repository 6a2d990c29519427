//! Client certificates in keygate's own handshake (`[tls] client_auth`):
//! which clients the listeners ask for one, which CAs vouch for it, and
//! which CRLs revoke it. Built with the TLS configuration, so a SIGHUP
//! rereads the CA bundles and CRLs with the certificate.
//!
//! Revocation: every certificate of the chain is checked (as nginx does
//! with `ssl_crl`), and a certificate whose issuer published no CRL among
//! `crl_files` is refused, so a missing CRL fails closed rather than
//! letting revoked clients through. A CRL past its `nextUpdate` is still
//! used: refusing every client the moment a CRL ages out would turn a late
//! CRL push into an outage.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::server::danger::ClientCertVerifier;

use super::TlsError;
use super::self_signed::SelfSigned;
use crate::config::ConfigError;
pub use keygate_http::listen::ClientAuthMode;

/// `[tls]`'s client certificate settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientAuth {
    pub mode: ClientAuthMode,
    /// PEM bundles of the CAs that vouch for clients.
    pub ca_files: Vec<PathBuf>,
    /// PEM (or DER) CRLs of those CAs.
    pub crl_files: Vec<PathBuf>,
    /// Also take a certificate no CA vouches for, checking only that the
    /// client holds its key (RFC 8705 `self_signed_tls_client_auth`).
    pub self_signed: bool,
}

impl ClientAuth {
    /// A listener's settings' own consistency, checked with the rest of
    /// the configuration (`setting` names where its mode was set); the
    /// files are read when the listeners start.
    pub fn validate(&self, setting: &str) -> Result<(), ConfigError> {
        let asks = self.mode.asks();
        if !asks && (!self.ca_files.is_empty() || !self.crl_files.is_empty() || self.self_signed) {
            return Err(ConfigError::invalid(
                "[tls] client_ca_files, crl_files and client_auth_self_signed need \
                 client_auth = \"request\" or \"require\"",
            ));
        }
        if asks && self.ca_files.is_empty() && !self.self_signed {
            return Err(ConfigError::invalid(format!(
                "{setting} = \"{}\" needs [tls] client_ca_files or [mtls] cas (the CAs \
                 that vouch for clients), or [tls] client_auth_self_signed = true",
                self.mode.as_str()
            )));
        }
        if !self.crl_files.is_empty() && self.ca_files.is_empty() {
            return Err(ConfigError::invalid(
                "[tls] crl_files need client_ca_files: a CRL revokes what a CA issued",
            ));
        }
        Ok(())
    }
}

/// The verifier a handshake runs, and the CA check alone, which says
/// afterwards whether a chain the self-signed mode took is CA-issued.
pub struct Verifiers {
    pub handshake: Arc<dyn ClientCertVerifier>,
    pub ca: Option<Arc<dyn ClientCertVerifier>>,
}

impl Verifiers {
    pub fn build(auth: &ClientAuth, provider: &Arc<CryptoProvider>) -> Result<Self, TlsError> {
        if auth.mode == ClientAuthMode::Off {
            return Ok(Self {
                handshake: WebPkiClientVerifier::no_client_auth(),
                ca: None,
            });
        }
        let ca = if auth.ca_files.is_empty() {
            None
        } else {
            Some(ca_verifier(auth, provider)?)
        };
        let handshake = if auth.self_signed {
            Arc::new(SelfSigned::new(
                ca.clone(),
                auth.mode == ClientAuthMode::Require,
                provider,
            )) as Arc<dyn ClientCertVerifier>
        } else {
            // `validate` saw to it: without self-signed, CAs are configured.
            ca.clone().ok_or(TlsError::NoClientCas)?
        };
        Ok(Self { handshake, ca })
    }

    /// Whether a configured CA vouches for `chain` (leaf first).
    pub fn ca_vouches_for(&self, chain: &[CertificateDer<'_>]) -> bool {
        let (Some(ca), Some((leaf, intermediates))) = (&self.ca, chain.split_first()) else {
            return false;
        };
        ca.verify_client_cert(leaf, intermediates, UnixTime::now())
            .is_ok()
    }
}

fn ca_verifier(
    auth: &ClientAuth,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for path in &auth.ca_files {
        let certs = read_certs(path)?;
        if certs.is_empty() {
            return Err(TlsError::Empty {
                what: "client CA bundle",
                path: path.clone(),
            });
        }
        for cert in certs {
            roots.add(cert).map_err(|e| TlsError::Rejected {
                what: "client CA certificate",
                path: path.clone(),
                reason: e.to_string(),
            })?;
        }
    }
    let mut crls = Vec::new();
    for path in &auth.crl_files {
        crls.extend(read_crls(path)?);
    }
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .with_crls(crls);
    if auth.mode == ClientAuthMode::Request {
        builder = builder.allow_unauthenticated();
    }
    builder
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))
}

pub(super) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::read("certificate", path, e))
}

/// A file of PEM `X509 CRL` blocks, or one DER CRL (as `openssl ca
/// -gencrl -outform DER` writes it).
fn read_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| TlsError::Io {
        what: "CRL",
        path: path.to_owned(),
        source: e,
    })?;
    if bytes.first() == Some(&0x30) {
        return Ok(vec![CertificateRevocationListDer::from(bytes)]);
    }
    let crls = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::read("CRL", path, e))?;
    if crls.is_empty() {
        return Err(TlsError::Empty {
            what: "CRL file",
            path: path.to_owned(),
        });
    }
    Ok(crls)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(mode: ClientAuthMode, cas: usize, crls: usize, self_signed: bool) -> ClientAuth {
        ClientAuth {
            mode,
            ca_files: (0..cas).map(|i| format!("ca{i}.pem").into()).collect(),
            crl_files: (0..crls).map(|i| format!("crl{i}.pem").into()).collect(),
            self_signed,
        }
    }

    #[test]
    fn settings_that_would_do_nothing_or_trust_nothing_are_refused() {
        use ClientAuthMode::*;
        assert!(auth(Off, 0, 0, false).validate("[tls] client_auth").is_ok());
        assert!(
            auth(Request, 1, 0, false)
                .validate("[tls] client_auth")
                .is_ok()
        );
        assert!(
            auth(Require, 1, 1, true)
                .validate("[tls] client_auth")
                .is_ok()
        );
        assert!(
            auth(Require, 0, 0, true)
                .validate("[tls] client_auth")
                .is_ok()
        );
        // CAs configured but never asked for: a silent no-op.
        assert!(
            auth(Off, 1, 0, false)
                .validate("[tls] client_auth")
                .is_err()
        );
        assert!(auth(Off, 0, 0, true).validate("[tls] client_auth").is_err());
        // Asking with nothing to check against.
        assert!(
            auth(Require, 0, 0, false)
                .validate("[tls] client_auth")
                .is_err()
        );
        assert!(
            auth(Request, 0, 1, true)
                .validate("[tls] client_auth")
                .is_err()
        );
    }
}
