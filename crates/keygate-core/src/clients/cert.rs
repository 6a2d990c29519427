//! What the registry reads from a leaf certificate: its dates and names.
//! Parsing is total: any bytes give facts or `None`, never a panic.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::clients::pattern::{NameKind, NamePattern};

/// A leaf's validity (Unix seconds) and the names patterns can match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafFacts {
    pub not_before: i64,
    pub not_after: i64,
    /// The SPIFFE ID, when the certificate has exactly one `spiffe://` URI
    /// SAN (an X.509-SVID has one; with two, neither speaks for it).
    pub spiffe_id: Option<String>,
    /// DNS SANs, lowercase.
    pub dns: Vec<String>,
    /// The subject, rendered as `pattern` compares it, when it has a form
    /// that cannot be read two ways.
    pub subject: Option<String>,
}

impl LeafFacts {
    /// `None` when the DER is not a certificate (or has trailing bytes).
    pub fn parse(der: &[u8]) -> Option<Self> {
        let (rest, cert) = X509Certificate::from_der(der).ok()?;
        if !rest.is_empty() {
            return None;
        }
        let validity = cert.validity();
        let (spiffe_id, dns) = names(&cert);
        let subject = Some(cert.subject().to_string())
            .filter(|s| NamePattern::parse(NameKind::Subject, s).is_ok());
        Some(Self {
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            spiffe_id,
            dns,
            subject,
        })
    }

    /// The names of `kind` the certificate carries.
    pub fn names(&self, kind: NameKind) -> Vec<&str> {
        match kind {
            NameKind::SpiffeId => self.spiffe_id.iter().map(String::as_str).collect(),
            NameKind::Dns => self.dns.iter().map(String::as_str).collect(),
            NameKind::Subject => self.subject.iter().map(String::as_str).collect(),
        }
    }
}

fn names(cert: &X509Certificate<'_>) -> (Option<String>, Vec<String>) {
    let mut spiffe = Vec::new();
    let mut dns = Vec::new();
    // A malformed or duplicated SAN extension names nothing.
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::URI(uri) if uri.starts_with("spiffe://") => {
                    spiffe.push((*uri).to_owned());
                }
                GeneralName::DNSName(d) => dns.push(d.to_ascii_lowercase()),
                _ => {}
            }
        }
    }
    let spiffe_id = match spiffe.len() {
        1 => spiffe.pop(),
        _ => None,
    };
    (spiffe_id, dns)
}
