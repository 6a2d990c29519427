//! The client certificate a proxy in front verified and passes in a
//! header: nginx's `$ssl_client_escaped_cert`, Envoy's
//! `X-Forwarded-Client-Cert` (`xfcc`), Traefik's
//! `X-Forwarded-Tls-Client-Cert`. Read only from a peer in
//! `trusted_proxies` (anyone else could write the header), in the one
//! format configured; a header that cannot be read exactly is refused,
//! never guessed at.
//!
//! - `decode`: the proxies' encodings (escaped PEM, bare base64 DER).
//! - `xfcc`: Envoy's `X-Forwarded-Client-Cert`.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName};
use keygate_core::clients::{CertSource, PeerCertificate};
use keygate_http::client_addr::TrustedProxies;
use serde::Deserialize;

mod decode;
mod xfcc;

pub use decode::ProxyCertError;
use decode::{pem_chain, traefik_chain, unescape};

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

#[cfg(test)]
mod tests;
