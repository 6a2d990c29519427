//! Certificates made in the test (rcgen, on aws-lc-rs), one helper for the
//! client registry's suites and the TLS ones alike: CAs and intermediates,
//! client and server leaves, expired and self-signed ones, and CRLs, as DER
//! and PEM, with files for the tests that configure keygate by path.
//!
//! Dates are fixed, so a test may set its clock anywhere in them and a TLS
//! test runs against the real one: CAs are valid 2019 to 2050, leaves 2020
//! to 2040 unless their [`LeafSpec`] says otherwise, CRLs 2020 to 2045.
//!
//! ```ignore
//! let root = TestCa::new("root");
//! let inter = root.intermediate("inter");
//! let client = inter.client("svc-a");
//! let (crl_der, crl_pem) = inter.crl(&[&client]);
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber, date_time_ymd,
};

/// A date as (year, month, day), midnight UTC.
pub type Ymd = (i32, u8, u8);

/// Unix seconds of a [`Ymd`], for setting a test clock.
pub fn unix(date: Ymd) -> i64 {
    date_time_ymd(date.0, date.1, date.2).unix_timestamp()
}

/// What a leaf carries. The default is valid 2020-01-01 to 2040-01-01 for
/// client authentication, named `client`, with no other names.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    pub common_name: String,
    pub organization: Option<String>,
    pub spiffe_ids: Vec<String>,
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub not_before: Ymd,
    pub not_after: Ymd,
    /// Only `serverAuth` in the EKU: a certificate not meant for clients.
    pub server_only: bool,
}

impl Default for LeafSpec {
    fn default() -> Self {
        Self {
            common_name: "client".into(),
            organization: None,
            spiffe_ids: Vec::new(),
            dns: Vec::new(),
            ips: Vec::new(),
            not_before: (2020, 1, 1),
            not_after: (2040, 1, 1),
            server_only: false,
        }
    }
}

impl LeafSpec {
    /// A client certificate with this common name.
    pub fn named(common_name: &str) -> Self {
        Self {
            common_name: common_name.to_owned(),
            ..Self::default()
        }
    }

    pub fn spiffe(id: &str) -> Self {
        Self {
            spiffe_ids: vec![id.to_owned()],
            ..Self::default()
        }
    }

    pub fn dns(name: &str) -> Self {
        Self {
            dns: vec![name.to_owned()],
            ..Self::default()
        }
    }

    /// A server certificate (`serverAuth` only) for `127.0.0.1` and
    /// `localhost`.
    pub fn server() -> Self {
        Self {
            common_name: "localhost".into(),
            dns: vec!["localhost".into()],
            ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            server_only: true,
            ..Self::default()
        }
    }

    pub fn valid(mut self, from: Ymd, to: Ymd) -> Self {
        self.not_before = from;
        self.not_after = to;
        self
    }
}

/// A certificate and its private key.
pub struct TestCert {
    pub der: Vec<u8>,
    pub pem: String,
    pub key_pem: String,
    /// The DER of the CAs between it and the root (its issuer first), as
    /// a client sends them.
    pub intermediates: Vec<Vec<u8>>,
    serial: u64,
}

impl TestCert {
    /// The certificate then its intermediates, PEM: what a client presents.
    pub fn chain_pem(&self) -> String {
        let mut out = self.pem.clone();
        for der in &self.intermediates {
            out.push_str(&pem("CERTIFICATE", der));
        }
        out
    }

    /// This certificate with `other`'s key: what someone who copied the
    /// certificate, but not its key, would present.
    pub fn with_key_of(&self, other: &TestCert) -> TestCert {
        TestCert {
            der: self.der.clone(),
            pem: self.pem.clone(),
            key_pem: other.key_pem.clone(),
            intermediates: self.intermediates.clone(),
            serial: self.serial,
        }
    }

    /// Writes `<name>.pem` (the chain) and `<name>.key` (mode 0600) into
    /// `dir`: (certificate, key).
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, self.chain_pem()).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        private(&key);
        (cert, key)
    }
}

/// Random, positive and non-zero, as RFC 5280 wants: a CRL revokes only the
/// certificate it names, across processes too.
fn serial() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    (u64::from_be_bytes(b) >> 2) | 1
}

fn params(spec: &LeafSpec) -> (CertificateParams, u64) {
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(DnType::CommonName, spec.common_name.as_str());
    if let Some(o) = &spec.organization {
        p.distinguished_name
            .push(DnType::OrganizationName, o.as_str());
    }
    for id in &spec.spiffe_ids {
        p.subject_alt_names
            .push(SanType::URI(id.as_str().try_into().unwrap()));
    }
    for d in &spec.dns {
        p.subject_alt_names
            .push(SanType::DnsName(d.as_str().try_into().unwrap()));
    }
    p.subject_alt_names
        .extend(spec.ips.iter().map(|ip| SanType::IpAddress(*ip)));
    p.not_before = date_time_ymd(spec.not_before.0, spec.not_before.1, spec.not_before.2);
    p.not_after = date_time_ymd(spec.not_after.0, spec.not_after.1, spec.not_after.2);
    p.extended_key_usages = if spec.server_only {
        vec![ExtendedKeyUsagePurpose::ServerAuth]
    } else {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    };
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    let serial = serial();
    p.serial_number = Some(SerialNumber::from(serial));
    (p, serial)
}

/// A self-signed certificate: a client's (RFC 8705's
/// `self_signed_tls_client_auth`), or with [`LeafSpec::server`] a server's.
pub fn self_signed(spec: &LeafSpec) -> TestCert {
    let key = KeyPair::generate().unwrap();
    let (p, serial) = params(spec);
    let cert = p.self_signed(&key).unwrap();
    TestCert {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        intermediates: Vec::new(),
        serial,
    }
}

/// A self-signed client certificate with this common name.
pub fn self_signed_client(name: &str) -> TestCert {
    self_signed(&LeafSpec::named(name))
}

/// A certificate authority that signs leaves, intermediates and CRLs.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pub der: Vec<u8>,
    pub pem: String,
    pub key_pem: String,
    /// What a client of this CA sends besides its leaf: this CA and those
    /// above it, up to (not including) the root; empty for a root.
    sent: Vec<Vec<u8>>,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = date_time_ymd(2019, 1, 1);
    p.not_after = date_time_ymd(2050, 1, 1);
    p.serial_number = Some(SerialNumber::from(serial()));
    p
}

impl TestCa {
    /// A root CA named `name` (its common name).
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let p = ca_params(name);
        let cert = p.self_signed(&key).unwrap();
        Self::from_parts(p, key, cert.der().to_vec(), cert.pem(), Vec::new())
    }

    fn from_parts(
        p: CertificateParams,
        key: KeyPair,
        der: Vec<u8>,
        pem: String,
        sent: Vec<Vec<u8>>,
    ) -> Self {
        let key_pem = key.serialize_pem();
        Self {
            issuer: Issuer::new(p, key),
            der,
            pem,
            key_pem,
            sent,
        }
    }

    /// An intermediate CA signed by this one.
    pub fn intermediate(&self, name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let p = ca_params(name);
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        let mut sent = vec![cert.der().to_vec()];
        sent.extend(self.sent.iter().cloned());
        Self::from_parts(p, key, cert.der().to_vec(), cert.pem(), sent)
    }

    /// A leaf signed by this CA.
    pub fn leaf(&self, spec: &LeafSpec) -> TestCert {
        let key = KeyPair::generate().unwrap();
        let (p, serial) = params(spec);
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        TestCert {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
            intermediates: self.sent.clone(),
            serial,
        }
    }

    /// A client certificate (`clientAuth`) with this common name.
    pub fn client(&self, name: &str) -> TestCert {
        self.leaf(&LeafSpec::named(name))
    }

    /// A client certificate that expired in 2021.
    pub fn expired_client(&self, name: &str) -> TestCert {
        self.leaf(&LeafSpec::named(name).valid((2020, 1, 1), (2021, 1, 1)))
    }

    /// A server certificate for `127.0.0.1` and `localhost`.
    pub fn server(&self) -> TestCert {
        self.leaf(&LeafSpec::server())
    }

    /// A CRL of this CA listing `revoked` (revoked 2020-01-01), valid
    /// 2020-01-01 to 2045-01-01; (DER, PEM).
    pub fn crl(&self, revoked: &[&TestCert]) -> (Vec<u8>, String) {
        self.crl_dated(revoked, (2020, 1, 1), (2045, 1, 1))
    }

    /// A CRL of this CA listing `revoked` (revoked when issued), issued
    /// `this_update` and due to be replaced by `next_update`: a stale one
    /// when that date has passed; (DER, PEM).
    pub fn crl_dated(
        &self,
        revoked: &[&TestCert],
        this_update: Ymd,
        next_update: Ymd,
    ) -> (Vec<u8>, String) {
        // Increasing, so a later CRL of the same CA is the newer one.
        static NUMBER: AtomicU64 = AtomicU64::new(1);
        let day = |d: Ymd| date_time_ymd(d.0, d.1, d.2);
        let params = CertificateRevocationListParams {
            this_update: day(this_update),
            next_update: day(next_update),
            crl_number: SerialNumber::from(NUMBER.fetch_add(1, Ordering::Relaxed)),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|c| RevokedCertParams {
                    serial_number: SerialNumber::from(c.serial),
                    revocation_time: day(this_update),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer).unwrap();
        (crl.der().to_vec(), crl.pem().unwrap())
    }

    /// Writes the CA's certificate to `<dir>/<name>`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.pem).unwrap();
        path
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

#[cfg(unix)]
fn private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[cfg(not(unix))]
fn private(_path: &Path) {}
