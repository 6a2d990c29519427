//! Test certificates made in process (rcgen on aws-lc-rs): CAs,
//! intermediates, client and server leaves, expired and self-signed ones,
//! and CRLs, as DER and PEM, with files for the tests that configure
//! keygate by path.
//!
//! ```ignore
//! let root = Ca::root("root");
//! let inter = root.intermediate("inter");
//! let client = inter.client("svc-a");
//! let crl = inter.crl(&[&client]);
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// Serial numbers unique within the test process, so a CRL revokes only
/// the certificate it names.
fn next_serial() -> SerialNumber {
    static NEXT: AtomicU64 = AtomicU64::new(1000);
    SerialNumber::from(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A certificate with its key.
pub struct Leaf {
    pub der: Vec<u8>,
    pub pem: String,
    pub key_pem: String,
    /// The DER of the CAs between it and the root (its issuer first), as
    /// a client sends them.
    pub intermediates: Vec<Vec<u8>>,
    serial: SerialNumber,
}

impl Leaf {
    /// The leaf then its intermediates, PEM: what a client presents.
    pub fn chain_pem(&self) -> String {
        let mut out = self.pem.clone();
        for der in &self.intermediates {
            out.push_str(&pem("CERTIFICATE", der));
        }
        out
    }

    /// This certificate with `other`'s key: what someone who copied the
    /// certificate, but not its key, would present.
    pub fn with_key_of(&self, other: &Leaf) -> Leaf {
        Leaf {
            der: self.der.clone(),
            pem: self.pem.clone(),
            key_pem: other.key_pem.clone(),
            intermediates: self.intermediates.clone(),
            serial: self.serial.clone(),
        }
    }

    /// Writes `<name>.pem` (the chain) and `<name>.key` into `dir`.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, self.chain_pem()).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        private(&key);
        (cert, key)
    }
}

/// A certificate authority that issues leaves, intermediates and CRLs.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub der: Vec<u8>,
    pub pem: String,
    /// What a client of this CA sends besides its leaf: this CA and those
    /// above it, up to (not including) the root; empty for a root.
    sent: Vec<Vec<u8>>,
}

impl Ca {
    pub fn root(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let params = ca_params(name);
        let cert = params.self_signed(&key).unwrap();
        Self {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
            sent: Vec::new(),
        }
    }

    /// A CA this one issues.
    pub fn intermediate(&self, name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let params = ca_params(name);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let mut sent = vec![cert.der().to_vec()];
        sent.extend(self.sent.iter().cloned());
        Self {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
            sent,
        }
    }

    /// A client certificate (`clientAuth`) valid now.
    pub fn client(&self, name: &str) -> Leaf {
        self.leaf(leaf_params(name, ExtendedKeyUsagePurpose::ClientAuth))
    }

    /// A client certificate that expired yesterday.
    pub fn expired_client(&self, name: &str) -> Leaf {
        let mut params = leaf_params(name, ExtendedKeyUsagePurpose::ClientAuth);
        params.not_before = OffsetDateTime::now_utc() - Duration::days(30);
        params.not_after = OffsetDateTime::now_utc() - Duration::days(1);
        self.leaf(params)
    }

    /// A server certificate for `127.0.0.1` and `localhost`.
    pub fn server(&self) -> Leaf {
        let mut params = leaf_params("localhost", ExtendedKeyUsagePurpose::ServerAuth);
        params.subject_alt_names =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap()
                .subject_alt_names;
        self.leaf(params)
    }

    fn leaf(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let serial = params.serial_number.clone().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
            intermediates: self.sent.clone(),
            serial,
        }
    }

    /// A CRL of this CA revoking `revoked`, current for a day.
    pub fn crl(&self, revoked: &[&Leaf]) -> String {
        let now = OffsetDateTime::now_utc();
        self.crl_dated(revoked, now - Duration::minutes(5), now + Duration::days(1))
    }

    /// A CRL of this CA revoking `revoked` whose `nextUpdate` passed a
    /// day ago: a CRL nobody renewed.
    pub fn stale_crl(&self, revoked: &[&Leaf]) -> String {
        let now = OffsetDateTime::now_utc();
        self.crl_dated(revoked, now - Duration::days(8), now - Duration::days(1))
    }

    fn crl_dated(
        &self,
        revoked: &[&Leaf],
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> String {
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: next_serial(),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|leaf| RevokedCertParams {
                    serial_number: leaf.serial.clone(),
                    revocation_time: this_update,
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer).unwrap().pem().unwrap()
    }

    /// Writes the CA's certificate to `<dir>/<name>`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.pem).unwrap();
        path
    }
}

/// A self-signed client certificate (RFC 8705 `self_signed_tls_client_auth`).
pub fn self_signed_client(name: &str) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let params = leaf_params(name, ExtendedKeyUsagePurpose::ClientAuth);
    let serial = params.serial_number.clone().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Leaf {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        intermediates: Vec::new(),
        serial,
    }
}

/// DER as one PEM block.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(next_serial());
    params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
    params.not_after = OffsetDateTime::now_utc() + Duration::days(30);
    params
}

fn leaf_params(name: &str, usage: ExtendedKeyUsagePurpose) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(next_serial());
    params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
    params.not_after = OffsetDateTime::now_utc() + Duration::days(30);
    params
}

#[cfg(unix)]
fn private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[cfg(not(unix))]
fn private(_path: &Path) {}
