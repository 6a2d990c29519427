//! A client certificate chain as a transport delivered it: from keygate's
//! own TLS handshake, or from a trusted proxy's header. The transport only
//! carries it; what it is worth (which CA vouches for it, which registered
//! client it names) is decided by the client registry, in one place for
//! every entry point.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// Where the chain came from. A proxy's header is only read from
/// `trusted_proxies`, and the proxy has checked the chain against its own
/// CAs; keygate's handshake has checked it against the configured ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertSource {
    Tls,
    /// keygate's handshake with `client_auth_self_signed`: the client
    /// proved it holds the leaf's key, and no configured CA vouches for
    /// the chain (RFC 8705 `self_signed_tls_client_auth`). Only a pin of
    /// the leaf's thumbprint may accept it.
    TlsUnverified,
    Proxy,
}

/// DER certificates, leaf first. Cheap to clone: a connection shares one
/// with every request on it.
#[derive(Clone)]
pub struct PeerCertificate {
    chain: Arc<[Vec<u8>]>,
    source: CertSource,
    /// SHA-256 of the leaf's DER: RFC 8705's `x5t#S256`, computed once.
    thumbprint: [u8; 32],
}

impl PeerCertificate {
    /// `None` when the chain is empty: no certificate is no credential.
    pub fn new(chain: Vec<Vec<u8>>, source: CertSource) -> Option<Self> {
        let leaf = chain.first()?;
        let thumbprint = Sha256::digest(leaf).into();
        Some(Self {
            chain: chain.into(),
            source,
            thumbprint,
        })
    }

    pub fn leaf(&self) -> &[u8] {
        &self.chain[0]
    }

    /// Leaf first, then whatever intermediates the peer sent.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    pub fn source(&self) -> CertSource {
        self.source
    }

    /// SHA-256 of the leaf certificate's DER encoding.
    pub fn thumbprint(&self) -> &[u8; 32] {
        &self.thumbprint
    }
}

/// Only the thumbprint: a certificate is not secret, but logs should name
/// it, not carry it.
impl fmt::Debug for PeerCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerCertificate")
            .field("source", &self.source)
            .field("thumbprint", &hex::encode(self.thumbprint))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_chain_is_no_certificate() {
        assert!(PeerCertificate::new(Vec::new(), CertSource::Tls).is_none());
    }

    #[test]
    fn the_thumbprint_is_the_leafs_sha256() {
        let cert = PeerCertificate::new(vec![b"leaf".to_vec(), b"ca".to_vec()], CertSource::Proxy)
            .expect("non-empty");
        assert_eq!(
            cert.thumbprint(),
            &<[u8; 32]>::from(Sha256::digest(b"leaf"))
        );
        assert_eq!(cert.leaf(), b"leaf");
        assert_eq!(cert.chain().len(), 2);
        assert!(format!("{cert:?}").contains(&hex::encode(Sha256::digest(b"leaf"))));
    }
}
