//! TLS to upstreams: whom a route trusts (the system's roots, a CA bundle,
//! or nobody on a loopback test set-up), the rustls client configuration
//! built from it, and why a handshake failed. Everything here is decided
//! at validation, so a bad bundle is a configuration error and a reload
//! reads it again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, aws_lc_rs};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// Whom a route's upstream certificate must chain to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Trust {
    /// The operating system's roots (`rustls-native-certs`).
    System,
    /// Only the certificates of this PEM file.
    Bundle(PathBuf),
    /// No check at all: loopback test set-ups only (validation enforces it).
    Unverified,
}

/// A route's way of opening TLS: the shared client configuration and the
/// name its certificate must carry (also sent as SNI).
#[derive(Debug)]
pub struct TlsConnect {
    pub(super) config: Arc<ClientConfig>,
    pub(super) server_name: ServerName<'static>,
    /// Tells trusts apart in the pool's key: a bundle by its content, so
    /// a reload of the same file keeps pooled connections and a changed
    /// one does not reuse connections its old certificates admitted.
    pub(super) trust_id: String,
}

/// The client configurations built during one validation, one per trust:
/// routes that trust alike share one (and its session cache), and the
/// system's store is read once.
#[derive(Default)]
pub struct Trusts {
    built: HashMap<Trust, (Arc<ClientConfig>, String)>,
}

impl Trusts {
    /// The connector for `host` under `trust`; the error names the file
    /// or the store and why it cannot be used.
    pub fn connect(&mut self, host: &str, trust: &Trust) -> Result<TlsConnect, String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(bare.to_owned())
            .map_err(|_| format!("{host:?} is not a name a certificate can be checked against"))?;
        let (config, trust_id) = match self.built.get(trust) {
            Some(built) => built.clone(),
            None => {
                let built = build(trust)?;
                self.built.insert(trust.clone(), built.clone());
                built
            }
        };
        Ok(TlsConnect {
            config,
            server_name,
            trust_id,
        })
    }

    /// Loads `trust` now, for a setting that no route may use yet (the
    /// gateway-wide bundle): its errors are configuration errors anyway.
    pub fn check(&mut self, trust: &Trust) -> Result<(), String> {
        if !self.built.contains_key(trust) {
            let built = build(trust)?;
            self.built.insert(trust.clone(), built);
        }
        Ok(())
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(aws_lc_rs::default_provider())
}

fn build(trust: &Trust) -> Result<(Arc<ClientConfig>, String), String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let (config, trust_id) = match trust {
        Trust::System => (
            builder
                .with_root_certificates(system_roots()?)
                .with_no_client_auth(),
            "system".to_owned(),
        ),
        Trust::Bundle(path) => {
            let (roots, digest) = bundle(path)?;
            (
                builder.with_root_certificates(roots).with_no_client_auth(),
                format!("ca:{digest}"),
            )
        }
        Trust::Unverified => (
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
                .with_no_client_auth(),
            "unverified".to_owned(),
        ),
    };
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), trust_id))
}

fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map_or_else(|| "none found".to_owned(), ToString::to_string);
        return Err(format!(
            "cannot load the system's root certificates ({why}); install them \
             (ca-certificates), point SSL_CERT_FILE at a bundle, or set upstream_ca_file"
        ));
    }
    Ok(roots)
}

/// The certificates of a PEM file, and a digest of its content.
fn bundle(path: &Path) -> Result<(RootCertStore, String), String> {
    let shown = path.display();
    let pem = read_capped(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        // rustls's words may quote a line of the file, which may not be a
        // certificate at all (a mistyped path to a secret): say what, not where.
        let cert = cert.map_err(|e| {
            format!(
                "{shown} is not a PEM certificate bundle ({})",
                pem_problem(&e)
            )
        })?;
        roots
            .add(cert)
            .map_err(|e| format!("{shown} holds a certificate rustls cannot use: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("{shown} holds no PEM certificate"));
    }
    let digest = Sha256::digest(&pem);
    let id = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    Ok((roots, id))
}

/// A bundle is a few hundred kilobytes (the whole Mozilla set is 220 kB);
/// a path to something endless (`/dev/zero`) must not hang validation.
const MAX_BUNDLE: u64 = 16 * 1024 * 1024;

fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut pem = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_BUNDLE + 1)
        .read_to_end(&mut pem)?;
    if pem.len() as u64 > MAX_BUNDLE {
        return Err(std::io::Error::other("larger than 16 MiB"));
    }
    Ok(pem)
}

fn pem_problem(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { .. } => "a section has no END line",
        Error::IllegalSectionStart { .. } => "a malformed BEGIN line",
        Error::Base64Decode(_) => "a section is not base64",
        Error::SectionTooLarge => "a section is too large",
        _ => "unreadable",
    }
}

/// Accepts any certificate, still checking that the server holds its key
/// (the handshake's signatures), so the connection is at least encrypted
/// to whoever answered.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Why a TLS handshake with an upstream failed: a short stable reason
/// for the log, and rustls's own words (names and dates, never a secret).
#[derive(Debug)]
pub struct TlsFailure {
    pub reason: &'static str,
    pub detail: String,
}

impl TlsFailure {
    pub(super) fn of(e: &std::io::Error) -> Self {
        let reason = match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(rustls::Error::InvalidCertificate(c)) => certificate_reason(c),
            Some(rustls::Error::AlertReceived(_)) => "alert_received",
            Some(rustls::Error::NoApplicationProtocol) => "no_http1",
            Some(rustls::Error::PeerIncompatible(_)) => "incompatible",
            Some(_) => "handshake",
            None => "connection_lost",
        };
        Self {
            reason,
            detail: e.to_string(),
        }
    }
}

fn certificate_reason(e: &CertificateError) -> &'static str {
    match e {
        CertificateError::UnknownIssuer => "unknown_issuer",
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "name_mismatch"
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "expired",
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "not_yet_valid"
        }
        CertificateError::Revoked => "revoked",
        _ => "bad_certificate",
    }
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TLS handshake failed ({}): {}", self.reason, self.detail)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn failure(e: rustls::Error) -> TlsFailure {
        TlsFailure::of(&std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    #[test]
    fn a_failed_handshake_names_its_reason() {
        let bad = |c| failure(rustls::Error::InvalidCertificate(c)).reason;
        assert_eq!(bad(CertificateError::UnknownIssuer), "unknown_issuer");
        assert_eq!(bad(CertificateError::NotValidForName), "name_mismatch");
        assert_eq!(bad(CertificateError::Expired), "expired");
        assert_eq!(bad(CertificateError::NotValidYet), "not_yet_valid");
        let lost = TlsFailure::of(&std::io::ErrorKind::UnexpectedEof.into());
        assert_eq!(lost.reason, "connection_lost");
        let shown = failure(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ))
        .to_string();
        assert!(
            shown.contains("unknown_issuer") && shown.contains("UnknownIssuer"),
            "{shown}"
        );
    }

    #[test]
    fn a_bundle_that_is_no_certificate_is_refused_with_its_file() {
        let dir = std::env::temp_dir().join(format!("kg-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let missing = dir.join("missing.pem");
        let mut trusts = Trusts::default();
        let err = trusts.check(&Trust::Bundle(junk.clone())).unwrap_err();
        assert!(
            err.contains(&junk.display().to_string()) && err.contains("no PEM certificate"),
            "{err}"
        );
        let err = trusts.check(&Trust::Bundle(missing.clone())).unwrap_err();
        assert!(
            err.contains(&missing.display().to_string()) && err.contains("cannot read"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn routes_that_trust_alike_share_one_configuration() {
        let mut trusts = Trusts::default();
        let a = trusts.connect("127.0.0.1", &Trust::Unverified).unwrap();
        let b = trusts.connect("[::1]", &Trust::Unverified).unwrap();
        assert!(Arc::ptr_eq(&a.config, &b.config));
        assert_eq!(a.config.alpn_protocols, [b"http/1.1".to_vec()]);
        assert!(trusts.connect("bad name!", &Trust::Unverified).is_err());
    }
}
