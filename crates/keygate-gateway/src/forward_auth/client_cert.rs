//! The client certificate a proxy in front verified and passes in a
//! header: nginx's `$ssl_client_escaped_cert`, Envoy's
//! `X-Forwarded-Client-Cert` (`xfcc`), Traefik's
//! `X-Forwarded-Tls-Client-Cert`. Read only from a peer in
//! `trusted_proxies` (anyone else could write the header), in the one
//! format configured; a header that cannot be read exactly is refused,
//! never guessed at.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keygate_core::clients::{CertSource, PeerCertificate};
use keygate_http::client_addr::TrustedProxies;
use serde::Deserialize;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::server::ParsedCertificate;

use super::xfcc;

/// Which proxy's header carries the client certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyCertFormat {
    /// No header is read: forward-auth sees no client certificate.
    #[default]
    None,
    /// URL-escaped PEM (`$ssl_client_escaped_cert`), the leaf only.
    Nginx,
    /// `X-Forwarded-Client-Cert`: the `Cert` and `Chain` of the element
    /// the nearest Envoy appended.
    Envoy,
    /// `X-Forwarded-Tls-Client-Cert` (`passTLSClientCert` with `pem`):
    /// base64 DER, comma-separated, leaf first, possibly URL-escaped.
    Traefik,
}

impl ProxyCertFormat {
    /// The header each proxy writes by default.
    pub fn default_header(self) -> Option<&'static str> {
        match self {
            ProxyCertFormat::None => None,
            ProxyCertFormat::Nginx => Some("x-ssl-client-cert"),
            ProxyCertFormat::Envoy => Some("x-forwarded-client-cert"),
            ProxyCertFormat::Traefik => Some("x-forwarded-tls-client-cert"),
        }
    }
}

/// `[forward_auth]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardAuthFile {
    #[serde(default)]
    pub client_cert_header: ProxyCertFormat,
    /// The header's name, for a proxy configured to use another one.
    pub client_cert_header_name: Option<String>,
}

/// Where forward-auth reads a proxy's client certificate from.
#[derive(Debug, Clone, Default)]
pub struct ProxyCertHeader {
    format: ProxyCertFormat,
    name: Option<HeaderName>,
}

impl ProxyCertHeader {
    pub fn resolve(file: &ForwardAuthFile) -> Result<Self, ForwardAuthConfigError> {
        let default = file.client_cert_header.default_header();
        let name = match (&file.client_cert_header_name, default) {
            (Some(_), None) => return Err(ForwardAuthConfigError::NameWithoutFormat),
            (Some(name), Some(_)) => Some(
                HeaderName::try_from(name.as_str())
                    .map_err(|_| ForwardAuthConfigError::BadName(name.clone()))?,
            ),
            (None, default) => default.map(HeaderName::from_static),
        };
        Ok(Self {
            format: file.client_cert_header,
            name,
        })
    }

    pub fn format(&self) -> ProxyCertFormat {
        self.format
    }
}

/// Why `[forward_auth]` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardAuthConfigError {
    #[error(
        "[forward_auth] client_cert_header_name needs client_cert_header = \"nginx\", \"envoy\" or \"traefik\""
    )]
    NameWithoutFormat,
    #[error("[forward_auth] client_cert_header_name: {0:?} is not a header name")]
    BadName(String),
}

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

/// The client certificate a trusted proxy passed for this request, if
/// any. From a peer not in `trusted_proxies` the header is ignored.
pub fn from_proxy(
    header: &ProxyCertHeader,
    trusted: &TrustedProxies,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<Option<PeerCertificate>, ProxyCertError> {
    let Some(name) = &header.name else {
        return Ok(None);
    };
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if !peer.is_some_and(|ip| trusted.contains(ip)) {
        // Its text stays out of the log: a client wrote it.
        tracing::debug!(header = %name, "ignored a client certificate header from a peer not in trusted_proxies");
        return Ok(None);
    }
    if values.next().is_some() {
        return Err(ProxyCertError::Repeated);
    }
    let text = value.to_str().map_err(|_| ProxyCertError::NotText)?.trim();
    if text.is_empty() {
        // nginx's variable is empty when the client sent no certificate.
        return Ok(None);
    }
    let chain = match header.format {
        ProxyCertFormat::None => return Ok(None),
        ProxyCertFormat::Nginx => pem_chain(&unescape(text)?)?,
        ProxyCertFormat::Envoy => xfcc::client_chain(text)?,
        ProxyCertFormat::Traefik => traefik_chain(text)?,
    };
    Ok(PeerCertificate::new(chain, CertSource::Proxy))
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

fn traefik_chain(text: &str) -> Result<Vec<Vec<u8>>, ProxyCertError> {
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

#[cfg(test)]
#[path = "client_cert_tests.rs"]
mod tests;
