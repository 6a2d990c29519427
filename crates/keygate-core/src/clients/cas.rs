//! The named client CAs (`[mtls] cas`) and their CRLs, and the one chain
//! check: does this leaf, with the intermediates its peer sent, chain to
//! that CA for client authentication at this time, unrevoked?
//!
//! rustls-webpki does the work (the verifier rustls itself uses, on
//! aws-lc-rs): path building, signatures, dates, name constraints, the
//! client-auth EKU when the leaf has an EKU at all, and CRLs.
//!
//! Revocation follows the TLS handshake's policy (`[tls] crl_files`), so a
//! certificate is worth the same at both layers: without CRLs nothing is
//! checked; with any, every certificate of the chain is checked and one
//! whose issuer has no CRL among them is refused (`RevocationUnknown`):
//! a forgotten CRL must not let revoked clients in. A CRL past its
//! nextUpdate still counts, as in the handshake: refusing every client of
//! a CA because a CRL file went stale would be an outage; its age is the
//! operator's to watch.

use std::collections::BTreeMap;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, TrustAnchor, UnixTime};
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage, OwnedCertRevocationList,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};

use crate::clients::model::CaName;

/// Why a configured CA or CRL cannot be used: refused at start (or reload).
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("client CA {name:?}: {reason}")]
    Bundle { name: String, reason: String },
    #[error("CRL #{index}: {reason}")]
    Crl { index: usize, reason: String },
}

/// Why a chain does not vouch for its leaf under a CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainRefusal {
    /// Not to this CA: unknown issuer, bad signature, wrong usage, ...
    Untrusted,
    /// The leaf or a certificate above it is outside its dates.
    Expired,
    /// A CRL lists a certificate of the chain.
    RevokedCert,
    /// CRLs are configured, but none from the issuer of a certificate of
    /// the chain.
    RevocationUnknown,
}

struct NamedCa {
    anchors: Vec<TrustAnchor<'static>>,
}

/// The configured client CAs by name, and every configured CRL.
#[derive(Default)]
pub struct ClientCas {
    cas: BTreeMap<CaName, NamedCa>,
    crls: Vec<CertRevocationList<'static>>,
}

impl std::fmt::Debug for ClientCas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCas")
            .field("cas", &self.cas.keys().collect::<Vec<_>>())
            .field("crls", &self.crls.len())
            .finish()
    }
}

fn bundle(name: &str, reason: impl Into<String>) -> CaError {
    CaError::Bundle {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

fn anchors(name: &str, pem: &[u8]) -> Result<Vec<TrustAnchor<'static>>, CaError> {
    let mut out = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| bundle(name, format!("not a PEM bundle: {e}")))?;
        let anchor = webpki::anchor_from_trusted_cert(&cert)
            .map_err(|e| bundle(name, format!("a certificate cannot be a trust anchor: {e}")))?;
        out.push(anchor.to_owned());
    }
    if out.is_empty() {
        return Err(bundle(name, "holds no CERTIFICATE block"));
    }
    Ok(out)
}

/// A CRL file: PEM (`X509 CRL` blocks, possibly several) or one DER CRL.
fn crls(index: usize, bytes: &[u8]) -> Result<Vec<CertRevocationList<'static>>, CaError> {
    let bad = |reason: String| CaError::Crl { index, reason };
    let ders: Vec<Vec<u8>> = if bytes.first() == Some(&0x30) {
        vec![bytes.to_vec()]
    } else {
        CertificateRevocationListDer::pem_slice_iter(bytes)
            .map(|c| c.map(|d| d.as_ref().to_vec()))
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("not PEM: {e}")))?
    };
    if ders.is_empty() {
        return Err(bad("holds no X509 CRL block".into()));
    }
    ders.iter()
        .map(|der| {
            OwnedCertRevocationList::from_der(der)
                .map(CertRevocationList::from)
                .map_err(|e| bad(format!("not a CRL: {e}")))
        })
        .collect()
}

impl ClientCas {
    /// From `(name, PEM bundle)` pairs and CRL files (DER or PEM).
    pub fn new<'a>(
        cas: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        crl_files: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Self, CaError> {
        let mut out = ClientCas::default();
        for (name, pem) in cas {
            let ca = CaName::parse(name).map_err(|e| bundle(name, e.to_string()))?;
            if out.cas.contains_key(&ca) {
                return Err(bundle(name, "named twice"));
            }
            out.cas.insert(
                ca,
                NamedCa {
                    anchors: anchors(name, pem)?,
                },
            );
        }
        for (index, bytes) in crl_files.into_iter().enumerate() {
            out.crls.extend(crls(index, bytes)?);
        }
        Ok(out)
    }

    pub fn contains(&self, ca: &CaName) -> bool {
        self.cas.contains_key(ca)
    }

    pub fn names(&self) -> impl Iterator<Item = &CaName> {
        self.cas.keys()
    }

    pub fn is_empty(&self) -> bool {
        self.cas.is_empty()
    }

    /// Checks `chain` (leaf first) against the CA `ca` at `now_secs`.
    pub fn verify(
        &self,
        ca: &CaName,
        chain: &[Vec<u8>],
        now_secs: i64,
    ) -> Result<(), ChainRefusal> {
        let named = self.cas.get(ca).ok_or(ChainRefusal::Untrusted)?;
        let (leaf, rest) = chain.split_first().ok_or(ChainRefusal::Untrusted)?;
        let leaf = CertificateDer::from(leaf.as_slice());
        let ee = EndEntityCert::try_from(&leaf).map_err(|_| ChainRefusal::Untrusted)?;
        let intermediates: Vec<CertificateDer<'_>> = rest
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        let time =
            UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now_secs).unwrap_or(0)));
        let refs: Vec<&CertRevocationList<'_>> = self.crls.iter().collect();
        let revocation = RevocationOptionsBuilder::new(&refs).ok().map(|b| {
            b.with_depth(RevocationCheckDepth::Chain)
                .with_status_policy(UnknownStatusPolicy::Deny)
                .with_expiration_policy(ExpirationPolicy::Ignore)
                .build()
        });
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &named.anchors,
            &intermediates,
            time,
            KeyUsage::client_auth(),
            revocation,
            None,
        )
        .map(|_| ())
        .map_err(|e| match e {
            webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
                ChainRefusal::Expired
            }
            webpki::Error::CertRevoked => ChainRefusal::RevokedCert,
            webpki::Error::UnknownRevocationStatus => ChainRefusal::RevocationUnknown,
            _ => ChainRefusal::Untrusted,
        })
    }

    /// The CAs the chain verifies under, or the most telling refusal when
    /// none: a revoked certificate says more than one of unknown status,
    /// which says more than an expired one, which says more than
    /// "untrusted".
    pub fn trusting(&self, chain: &[Vec<u8>], now_secs: i64) -> Result<Vec<&CaName>, ChainRefusal> {
        let mut ok = Vec::new();
        let mut worst = ChainRefusal::Untrusted;
        for ca in self.cas.keys() {
            match self.verify(ca, chain, now_secs) {
                Ok(()) => ok.push(ca),
                Err(refusal) if rank(refusal) > rank(worst) => worst = refusal,
                Err(_) => {}
            }
        }
        if ok.is_empty() { Err(worst) } else { Ok(ok) }
    }
}

fn rank(refusal: ChainRefusal) -> u8 {
    match refusal {
        ChainRefusal::Untrusted => 0,
        ChainRefusal::Expired => 1,
        ChainRefusal::RevocationUnknown => 2,
        ChainRefusal::RevokedCert => 3,
    }
}
