//! The encodings proxies write certificates in: URL-escaped PEM (nginx,
//! Envoy) and base64 DER without armour (Traefik); every certificate
//! checked to be well-formed X.509, every fault named without the text.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::server::ParsedCertificate;

/// Why a trusted proxy's certificate header was refused. Never carries the
/// header's text: the log and the answer name the fault only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyCertError {
    Repeated,
    NotText,
    Escaping,
    NotCertificate,
    Xfcc,
    XfccWithoutCert,
    XfccInconsistent,
}

impl std::fmt::Display for ProxyCertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.detail())
    }
}

impl std::error::Error for ProxyCertError {}

impl ProxyCertError {
    /// The refusal's detail, as forward-auth answers it.
    pub fn detail(self) -> &'static str {
        match self {
            ProxyCertError::Repeated => "the client certificate header came more than once",
            ProxyCertError::NotText => "the client certificate header is not text",
            ProxyCertError::Escaping => {
                "the client certificate header is not escaped as the proxy escapes it"
            }
            ProxyCertError::NotCertificate => {
                "the client certificate header does not hold a certificate"
            }
            ProxyCertError::Xfcc => "the X-Forwarded-Client-Cert header is not well formed",
            ProxyCertError::XfccWithoutCert => {
                "the X-Forwarded-Client-Cert element carries no Cert (set_current_client_cert_details: cert)"
            }
            ProxyCertError::XfccInconsistent => {
                "the X-Forwarded-Client-Cert element's Hash, Cert and Chain disagree"
            }
        }
    }
}

/// `%XX` escapes undone (and nothing else: `+` stays `+`, as nginx and Go's
/// escaping leave no `+` for a space in what they escape).
pub(super) fn unescape(text: &str) -> Result<String, ProxyCertError> {
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(text).collect();
    String::from_utf8(bytes).map_err(|_| ProxyCertError::Escaping)
}

/// One or more PEM certificates and nothing else, each a well-formed
/// X.509 certificate; DER out, in order.
pub(super) fn pem_chain(text: &str) -> Result<Vec<Vec<u8>>, ProxyCertError> {
    let text = text.trim();
    if !text.starts_with("-----BEGIN CERTIFICATE-----")
        || !text.ends_with("-----END CERTIFICATE-----")
    {
        return Err(ProxyCertError::NotCertificate);
    }
    let certs = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ProxyCertError::NotCertificate)?;
    // Anything between the blocks (another kind of PEM section, stray
    // text) is not what a proxy writes.
    let blocks = text.matches("-----BEGIN ").count();
    if certs.is_empty() || certs.len() != blocks {
        return Err(ProxyCertError::NotCertificate);
    }
    certs.iter().map(|c| well_formed(c.as_ref())).collect()
}

pub(super) fn traefik_chain(text: &str) -> Result<Vec<Vec<u8>>, ProxyCertError> {
    // Traefik before v3 URL-escaped the value; `%` is not base64.
    let text = if text.contains('%') {
        unescape(text)?
    } else {
        text.to_owned()
    };
    text.split(',')
        .map(|one| {
            let der = STANDARD
                .decode(one.trim())
                .map_err(|_| ProxyCertError::NotCertificate)?;
            well_formed(&der)
        })
        .collect()
}

fn well_formed(der: &[u8]) -> Result<Vec<u8>, ProxyCertError> {
    let cert = CertificateDer::from(der);
    ParsedCertificate::try_from(&cert).map_err(|_| ProxyCertError::NotCertificate)?;
    Ok(der.to_vec())
}
