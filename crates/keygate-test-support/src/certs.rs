//! Certificates made in the test: CAs, leaves signed by them, self-signed
//! certificates and CRLs (rcgen, on aws-lc-rs), with the dates, names and
//! serials a test asks for. One helper for every suite that needs them.

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
/// client authentication, with no names.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    pub common_name: String,
    pub organization: Option<String>,
    pub spiffe_ids: Vec<String>,
    pub dns: Vec<String>,
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
            not_before: (2020, 1, 1),
            not_after: (2040, 1, 1),
            server_only: false,
        }
    }
}

impl LeafSpec {
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
    serial: u64,
}

fn serial() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    // Positive and non-zero, as RFC 5280 wants.
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
    p.not_before = date_time_ymd(spec.not_before.0, spec.not_before.1, spec.not_before.2);
    p.not_after = date_time_ymd(spec.not_after.0, spec.not_after.1, spec.not_after.2);
    p.extended_key_usages = if spec.server_only {
        vec![ExtendedKeyUsagePurpose::ServerAuth]
    } else {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    };
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let serial = serial();
    p.serial_number = Some(SerialNumber::from(serial));
    (p, serial)
}

/// A self-signed client certificate (RFC 8705's
/// `self_signed_tls_client_auth`).
pub fn self_signed(spec: &LeafSpec) -> TestCert {
    let key = KeyPair::generate().unwrap();
    let (p, serial) = params(spec);
    let cert = p.self_signed(&key).unwrap();
    TestCert {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        serial,
    }
}

/// A certificate authority that signs leaves, intermediates and CRLs.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pub der: Vec<u8>,
    pub pem: String,
    pub key_pem: String,
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
        Self::from_parts(p, key, cert.der().to_vec(), cert.pem())
    }

    fn from_parts(p: CertificateParams, key: KeyPair, der: Vec<u8>, pem: String) -> Self {
        let key_pem = key.serialize_pem();
        Self {
            issuer: Issuer::new(p, key),
            der,
            pem,
            key_pem,
        }
    }

    /// An intermediate CA signed by this one.
    pub fn intermediate(&self, name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let p = ca_params(name);
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Self::from_parts(p, key, cert.der().to_vec(), cert.pem())
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
            serial,
        }
    }

    /// A CRL of this CA listing `revoked`, valid 2020-01-01 to 2045-01-01;
    /// (DER, PEM).
    pub fn crl(&self, revoked: &[&TestCert]) -> (Vec<u8>, String) {
        self.crl_dated(revoked, (2020, 1, 1), (2045, 1, 1))
    }

    /// A CRL of this CA listing `revoked`, issued `this_update` and due
    /// to be replaced by `next_update` (a stale one: a date in the past).
    pub fn crl_dated(
        &self,
        revoked: &[&TestCert],
        this_update: Ymd,
        next_update: Ymd,
    ) -> (Vec<u8>, String) {
        let day = |d: Ymd| date_time_ymd(d.0, d.1, d.2);
        let params = CertificateRevocationListParams {
            this_update: day(this_update),
            next_update: day(next_update),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|c| RevokedCertParams {
                    serial_number: SerialNumber::from(c.serial),
                    revocation_time: date_time_ymd(2021, 1, 1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer).unwrap();
        (crl.der().to_vec(), crl.pem().unwrap())
    }
}
