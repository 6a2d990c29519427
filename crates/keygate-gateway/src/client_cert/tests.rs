#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderValue};
use keygate_core::clients::CertSource;
use keygate_test_support::certs::{TestCa, TestCert, self_signed_client};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

use super::*;

const PROXY: &str = "10.0.0.5";

fn header(format: ProxyCertFormat) -> ProxyCertHeader {
    ProxyCertHeader::resolve(&ForwardAuthFile {
        client_cert_header: format,
        client_cert_header_name: None,
    })
    .unwrap()
}

fn trusted() -> TrustedProxies {
    TrustedProxies::parse(&["10.0.0.0/8".to_owned()]).unwrap()
}

fn read(
    format: ProxyCertFormat,
    from: &str,
    values: &[&str],
) -> Result<Option<PeerCertificate>, ProxyCertError> {
    let h = header(format);
    let mut headers = HeaderMap::new();
    let name = format.default_header().unwrap();
    for v in values {
        headers.append(name, HeaderValue::from_str(v).unwrap());
    }
    from_proxy(
        &h,
        &trusted(),
        Some(from.parse::<IpAddr>().unwrap()),
        &headers,
    )
}

fn escaped(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

fn client() -> (TestCa, TestCert) {
    let root = TestCa::new("root");
    let inter = root.intermediate("inter");
    let leaf = inter.client("svc-a");
    (inter, leaf)
}

fn b64(der: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(der)
}

#[test]
fn nginx_escaped_pem_is_the_leaf() {
    let (_, leaf) = client();
    let cert = read(ProxyCertFormat::Nginx, PROXY, &[&escaped(&leaf.pem)])
        .unwrap()
        .expect("a certificate");
    assert_eq!(cert.source(), CertSource::Proxy);
    assert_eq!(cert.leaf(), leaf.der.as_slice());
    assert_eq!(cert.chain().len(), 1);
    assert_eq!(
        cert.thumbprint(),
        &<[u8; 32]>::from(Sha256::digest(&leaf.der))
    );
    // nginx's variable is empty without a client certificate.
    assert!(
        read(ProxyCertFormat::Nginx, PROXY, &[""])
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_header_from_an_untrusted_peer_is_ignored() {
    let (_, leaf) = client();
    for format in [ProxyCertFormat::Nginx, ProxyCertFormat::Traefik] {
        let value = match format {
            ProxyCertFormat::Nginx => escaped(&leaf.pem),
            _ => b64(&leaf.der),
        };
        assert!(read(format, PROXY, &[&value]).unwrap().is_some());
        assert!(read(format, "203.0.113.9", &[&value]).unwrap().is_none());
        // Even malformed: an untrusted peer's header is not read at all.
        assert!(read(format, "203.0.113.9", &["%%%"]).unwrap().is_none());
    }
    let h = header(ProxyCertFormat::Nginx);
    let mut headers = HeaderMap::new();
    headers.insert("x-ssl-client-cert", escaped(&leaf.pem).parse().unwrap());
    assert!(
        from_proxy(&h, &trusted(), None, &headers)
            .unwrap()
            .is_none()
    );
}

#[test]
fn no_header_is_read_unless_configured() {
    let (_, leaf) = client();
    let none = header(ProxyCertFormat::None);
    let mut headers = HeaderMap::new();
    for name in [
        "x-ssl-client-cert",
        "x-forwarded-client-cert",
        "x-forwarded-tls-client-cert",
    ] {
        headers.insert(name, escaped(&leaf.pem).parse().unwrap());
    }
    let peer = Some(PROXY.parse().unwrap());
    assert!(
        from_proxy(&none, &trusted(), peer, &headers)
            .unwrap()
            .is_none()
    );
    // A renamed header is read under its name only.
    let renamed = ProxyCertHeader::resolve(&ForwardAuthFile {
        client_cert_header: ProxyCertFormat::Nginx,
        client_cert_header_name: Some("X-Client-Pem".into()),
    })
    .unwrap();
    assert!(
        from_proxy(&renamed, &trusted(), peer, &headers)
            .unwrap()
            .is_none()
    );
    headers.insert("x-client-pem", escaped(&leaf.pem).parse().unwrap());
    assert!(
        from_proxy(&renamed, &trusted(), peer, &headers)
            .unwrap()
            .is_some()
    );
    assert!(
        ProxyCertHeader::resolve(&ForwardAuthFile {
            client_cert_header: ProxyCertFormat::None,
            client_cert_header_name: Some("x-a".into()),
        })
        .is_err()
    );
}

#[test]
fn nginx_refuses_what_is_not_one_escaped_certificate() {
    let (_, leaf) = client();
    let nginx = |v: &str| read(ProxyCertFormat::Nginx, PROXY, &[v]);
    assert_eq!(nginx("hello").err(), Some(ProxyCertError::NotCertificate));
    // Valid escaping of bytes that are not UTF-8.
    assert_eq!(nginx("%FF%FE").err(), Some(ProxyCertError::Escaping));
    let broken = leaf.pem.replace('M', "*");
    assert_eq!(
        nginx(&escaped(&broken)).err(),
        Some(ProxyCertError::NotCertificate)
    );
    // Well-formed PEM around bytes that are no certificate.
    let junk = keygate_test_support::certs::pem("CERTIFICATE", b"not a certificate");
    assert_eq!(
        nginx(&escaped(&junk)).err(),
        Some(ProxyCertError::NotCertificate)
    );
    // A key smuggled beside the certificate.
    let mixed = format!("{}{}", leaf.pem, leaf.key_pem);
    assert_eq!(
        nginx(&escaped(&mixed)).err(),
        Some(ProxyCertError::NotCertificate)
    );
    let twice = escaped(&leaf.pem);
    assert_eq!(
        read(ProxyCertFormat::Nginx, PROXY, &[&twice, &twice]).err(),
        Some(ProxyCertError::Repeated)
    );
}

#[test]
fn traefik_base64_chain_plain_or_escaped() {
    let (_, leaf) = client();
    let chain = [leaf.der.clone()]
        .iter()
        .chain(leaf.intermediates.iter())
        .map(|d| b64(d))
        .collect::<Vec<_>>()
        .join(",");
    for value in [chain.clone(), escaped(&chain)] {
        let cert = read(ProxyCertFormat::Traefik, PROXY, &[&value])
            .unwrap()
            .expect("a certificate");
        assert_eq!(cert.leaf(), leaf.der.as_slice());
        assert_eq!(cert.chain().len(), 2);
        assert_eq!(cert.chain()[1], leaf.intermediates[0]);
    }
    let traefik = |v: &str| read(ProxyCertFormat::Traefik, PROXY, &[v]);
    assert_eq!(
        traefik("not base64!").err(),
        Some(ProxyCertError::NotCertificate)
    );
    assert_eq!(
        traefik(&format!("{},", b64(&leaf.der))).err(),
        Some(ProxyCertError::NotCertificate)
    );
    assert_eq!(
        traefik(&b64(b"junk")).err(),
        Some(ProxyCertError::NotCertificate)
    );
}

/// One XFCC element as Envoy writes it with `cert: true, chain: true`.
fn element(by: &str, leaf: &TestCert) -> String {
    format!(
        "By={by};Hash={};Cert=\"{}\";Chain=\"{}\";Subject=\"CN=svc,O=Example, Inc.\";URI=spiffe://example/svc;DNS=a.example;DNS=b.example",
        hex::encode(Sha256::digest(&leaf.der)),
        escaped(&leaf.pem),
        escaped(&leaf.chain_pem()),
    )
}

#[test]
fn envoy_takes_the_last_element() {
    let (_, leaf) = client();
    let envoy = |v: &str| read(ProxyCertFormat::Envoy, PROXY, &[v]);
    let cert = envoy(&element("spiffe://keygate", &leaf)).unwrap().unwrap();
    assert_eq!(cert.leaf(), leaf.der.as_slice());
    assert_eq!(cert.chain().len(), 2);
    // Several proxies: the one in front of keygate appended the last.
    let outer = self_signed_client("outer");
    let two = format!(
        "{},{}",
        element("spiffe://edge", &outer),
        element("spiffe://kg", &leaf)
    );
    assert_eq!(envoy(&two).unwrap().unwrap().leaf(), leaf.der.as_slice());
    let swapped = format!(
        "{},{}",
        element("spiffe://kg", &leaf),
        element("spiffe://edge", &outer)
    );
    assert_eq!(
        envoy(&swapped).unwrap().unwrap().leaf(),
        outer.der.as_slice()
    );
    // Cert alone, key names in any case, no Hash.
    let cert_only = format!("by=x;CERT=\"{}\"", escaped(&leaf.pem));
    let cert = envoy(&cert_only).unwrap().unwrap();
    assert_eq!(cert.chain().len(), 1);
    // Chain alone.
    let chain_only = format!("Chain=\"{}\"", escaped(&leaf.chain_pem()));
    assert_eq!(envoy(&chain_only).unwrap().unwrap().chain().len(), 2);
}

#[test]
fn envoy_refuses_what_it_cannot_read_exactly() {
    let (_, leaf) = client();
    let other = self_signed_client("other");
    let envoy = |v: &str| read(ProxyCertFormat::Envoy, PROXY, &[v]);
    let good = element("spiffe://kg", &leaf);
    // Only By and Hash: Envoy told to send no certificate.
    let hash_only = format!("By=x;Hash={}", hex::encode(Sha256::digest(&leaf.der)));
    assert_eq!(
        envoy(&hash_only).err(),
        Some(ProxyCertError::XfccWithoutCert)
    );
    // The Hash of another certificate.
    let wrong_hash = good.replace(
        &hex::encode(Sha256::digest(&leaf.der)),
        &hex::encode(Sha256::digest(&other.der)),
    );
    assert_eq!(
        envoy(&wrong_hash).err(),
        Some(ProxyCertError::XfccInconsistent)
    );
    // A Chain that does not start with the Cert.
    let wrong_chain = format!(
        "Cert=\"{}\";Chain=\"{}\"",
        escaped(&leaf.pem),
        escaped(&other.pem)
    );
    assert_eq!(
        envoy(&wrong_chain).err(),
        Some(ProxyCertError::XfccInconsistent)
    );
    let two_certs = format!(
        "Cert=\"{}\";Cert=\"{}\"",
        escaped(&leaf.pem),
        escaped(&other.pem)
    );
    assert_eq!(envoy(&two_certs).err(), Some(ProxyCertError::Xfcc));
}

#[test]
fn envoy_refuses_a_malformed_header() {
    let (_, leaf) = client();
    let envoy = |v: &str| read(ProxyCertFormat::Envoy, PROXY, &[v]);
    let good = element("spiffe://kg", &leaf);
    for malformed in [
        format!("Cert=\"{}", escaped(&leaf.pem)),
        format!("{good},"),
        format!(",{good}"),
        format!("{good};;"),
        format!("Cert{}", escaped(&leaf.pem)),
        format!("Cert=\"{}\"junk", escaped(&leaf.pem)),
        format!("Subject=a\"b;Cert=\"{}\"", escaped(&leaf.pem)),
        format!("C ert=\"{}\"", escaped(&leaf.pem)),
    ] {
        assert_eq!(
            envoy(&malformed).err(),
            Some(ProxyCertError::Xfcc),
            "{malformed}"
        );
    }
    assert_eq!(
        envoy("Cert=\"not%20a%20certificate\"").err(),
        Some(ProxyCertError::NotCertificate)
    );
    assert_eq!(
        envoy(&format!("Cert=\"{}\"", escaped(&leaf.chain_pem()))).err(),
        Some(ProxyCertError::XfccInconsistent)
    );
}

#[test]
fn a_quoted_value_may_hold_separators_and_escaped_quotes() {
    let (_, leaf) = client();
    let value = format!(
        "Subject=\"CN=a\\\"b, O=c;d=e\";Cert=\"{}\"",
        escaped(&leaf.pem)
    );
    let cert = read(ProxyCertFormat::Envoy, PROXY, &[&value])
        .unwrap()
        .unwrap();
    assert_eq!(cert.leaf(), leaf.der.as_slice());
}
