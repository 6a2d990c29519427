//! A `CheckRequest` read as the request the HTTP adapter would see from
//! Envoy's HTTP ext_authz filter: the original request line under
//! `/v1/forward-auth`, its headers, its host. The decision then reads it
//! exactly as it reads `/v1/forward-auth`, so the two cannot judge apart.
//!
//! What Envoy itself knows replaces what the client sent: the gRPC filter
//! forwards *every* client header (the HTTP filter only an allow-list), so
//! a client's `X-Forwarded-Host` or `X-Forwarded-Proto` must not outvote
//! Envoy's own `:authority` and scheme.

use std::net::{IpAddr, SocketAddr};

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use keygate_core::clients::{CertSource, PeerCertificate};
use keygate_gateway::forward_auth::PATH;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::pb::envoy::config::core::v3::{address, socket_address};
use crate::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, attribute_context};

/// The headers the request carries as Envoy's view, whatever the client
/// sent under their names.
const ENVOYS_OWN: [&str; 3] = ["host", "x-forwarded-host", "x-forwarded-proto"];

/// The `context_extensions` key that names the route to judge by, set in
/// Envoy's configuration per virtual host or route (`check_settings`).
pub const ROUTE_EXTENSION: &str = "keygate_route";

/// A check, as the decision takes it.
pub struct Asked {
    /// The original request line under `/v1/forward-auth`, and its headers.
    pub parts: Parts,
    /// The downstream client's address (`attributes.source.address`).
    pub source: Option<SocketAddr>,
    /// The route Envoy's configuration names (`context_extensions`'
    /// `keygate_route`), as `?route=` names one over HTTP.
    pub route: Option<String>,
}

/// The method and the client only: the headers hold credentials, and the
/// query may.
impl std::fmt::Debug for Asked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Asked")
            .field("method", &self.parts.method)
            .field("source", &self.source)
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

/// Why a `CheckRequest` cannot be read as an HTTP request; answered as the
/// HTTP adapter answers an original request it cannot judge (403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// No `attributes.request.http`: not an HTTP filter's check.
    NotHttp,
    Method,
    /// Not an origin-form path, or not a valid URI.
    Path,
    Header,
}

/// Reads `check`; the peer certificate, when Envoy sent one, rides in the
/// request's extensions (`PeerCertificate`, from a proxy).
pub fn read(check: &CheckRequest) -> Result<Asked, Unreadable> {
    let attributes = check.attributes.as_ref();
    let http = attributes
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
        .ok_or(Unreadable::NotHttp)?;
    let method = Method::from_bytes(http.method.as_bytes()).map_err(|_| Unreadable::Method)?;
    // Origin-form only: anything else (`*`, an authority) would leave the
    // decision reading the URI from headers the client chose.
    if !http.path.starts_with('/') {
        return Err(Unreadable::Path);
    }
    let uri: Uri = format!("{PATH}{}", http.path)
        .parse()
        .map_err(|_| Unreadable::Path)?;
    let (mut parts, ()) = Request::builder()
        .method(method)
        .uri(uri)
        .body(())
        .map_err(|_| Unreadable::Path)?
        .into_parts();
    parts.headers = headers(http)?;
    let source = attributes.and_then(|a| a.source.as_ref());
    if let Some(cert) = source.and_then(certificate) {
        parts.extensions.insert(cert);
    }
    Ok(Asked {
        parts,
        source: source.and_then(socket_address),
        route: attributes
            .and_then(|a| a.context_extensions.get(ROUTE_EXTENSION))
            .cloned(),
    })
}

/// The client's headers (`header_map` when Envoy encodes them raw, else the
/// `headers` map), less the pseudo-headers, with Envoy's host and scheme.
fn headers(http: &attribute_context::HttpRequest) -> Result<HeaderMap, Unreadable> {
    let mut map = HeaderMap::new();
    let mut put = |name: &str, value: &[u8]| -> Result<(), Unreadable> {
        if name.starts_with(':') {
            return Ok(());
        }
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| Unreadable::Header)?;
        if ENVOYS_OWN.contains(&name.as_str()) {
            return Ok(());
        }
        let value = HeaderValue::from_bytes(value).map_err(|_| Unreadable::Header)?;
        map.append(name, value);
        Ok(())
    };
    match &http.header_map {
        Some(raw) => {
            for h in &raw.headers {
                let value = if h.raw_value.is_empty() {
                    h.value.as_bytes()
                } else {
                    &h.raw_value
                };
                put(&h.key, value)?;
            }
        }
        None => {
            for (name, value) in &http.headers {
                put(name, value.as_bytes())?;
            }
        }
    }
    let mut own = |name: &'static str, value: &str| -> Result<(), Unreadable> {
        if !value.is_empty() {
            let value = HeaderValue::from_str(value).map_err(|_| Unreadable::Header)?;
            map.insert(name, value);
        }
        Ok(())
    };
    own("host", &http.host)?;
    own("x-forwarded-proto", &http.scheme)?;
    Ok(map)
}

/// A TCP peer's address; a pipe or a named port has none.
fn socket_address(peer: &attribute_context::Peer) -> Option<SocketAddr> {
    let address::Address::SocketAddress(socket) = peer.address.as_ref()?.address.as_ref()? else {
        return None;
    };
    let ip: IpAddr = socket.address.parse().ok()?;
    let port = match socket.port_specifier {
        Some(socket_address::PortSpecifier::PortValue(port)) => u16::try_from(port).ok()?,
        _ => 0,
    };
    Some(SocketAddr::new(ip, port))
}

/// `attributes.source.certificate`: the URL-encoded PEM of the client's
/// certificate (Envoy's `include_peer_certificate: true`). What it is worth
/// is the client registry's to decide; a chain that does not parse is no
/// certificate, as a missing one is.
pub fn certificate(peer: &attribute_context::Peer) -> Option<PeerCertificate> {
    if peer.certificate.is_empty() {
        return None;
    }
    let pem = percent_encoding::percent_decode_str(&peer.certificate).collect::<Vec<u8>>();
    let chain = CertificateDer::pem_slice_iter(&pem)
        .map(|der| der.map(|d| d.as_ref().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    PeerCertificate::new(chain, CertSource::Proxy)
}

/// A `CheckRequest` as Envoy's HTTP filter sends one (for tests and tools).
pub fn check_request(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    source: Option<SocketAddr>,
) -> CheckRequest {
    use crate::pb::envoy::config::core::v3::{Address, SocketAddress};
    let http = attribute_context::HttpRequest {
        method: method.to_owned(),
        host: host.to_owned(),
        path: path.to_owned(),
        scheme: "http".to_owned(),
        protocol: "HTTP/1.1".to_owned(),
        size: -1,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
            .chain([(":authority".to_owned(), host.to_owned())])
            .collect(),
        ..Default::default()
    };
    let source = source.map(|addr| attribute_context::Peer {
        address: Some(Address {
            address: Some(address::Address::SocketAddress(SocketAddress {
                address: addr.ip().to_string(),
                port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(
                    addr.port(),
                ))),
                ..Default::default()
            })),
        }),
        ..Default::default()
    });
    CheckRequest {
        attributes: Some(AttributeContext {
            source,
            request: Some(attribute_context::Request { http: Some(http) }),
            ..Default::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn envoys_host_and_scheme_outvote_the_clients() {
        let check = check_request(
            "POST",
            "api.example",
            "/orders?x=1",
            &[
                ("X-Forwarded-Host", "admin.example"),
                ("x-forwarded-proto", "https"),
                ("x-api-key", "k"),
            ],
            Some("10.0.0.7:5555".parse().unwrap()),
        );
        let asked = read(&check).unwrap();
        assert_eq!(asked.parts.method, Method::POST);
        assert_eq!(asked.parts.uri, "/v1/forward-auth/orders?x=1");
        let h = &asked.parts.headers;
        assert_eq!(h["host"], "api.example");
        assert!(h.get("x-forwarded-host").is_none());
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-api-key"], "k");
        assert!(h.get(":authority").is_none());
        assert_eq!(asked.source, Some("10.0.0.7:5555".parse().unwrap()));
    }

    #[test]
    fn only_envoys_keygate_route_extension_names_a_route() {
        let mut check = check_request("GET", "h", "/a", &[("keygate_route", "x")], None);
        assert_eq!(read(&check).unwrap().route, None);
        let mut extend = |k: &str, v: &str| {
            let a = check.attributes.as_mut().unwrap();
            a.context_extensions.insert(k.to_owned(), v.to_owned());
            read(&check).unwrap().route
        };
        assert_eq!(extend("other", "y"), None);
        assert_eq!(extend(ROUTE_EXTENSION, "orders").as_deref(), Some("orders"));
    }

    #[test]
    fn what_is_not_an_origin_form_http_request_is_unreadable() {
        let mut check = check_request("GET", "h", "*", &[], None);
        assert_eq!(read(&check).unwrap_err(), Unreadable::Path);
        check = check_request("GE T", "h", "/", &[], None);
        assert_eq!(read(&check).unwrap_err(), Unreadable::Method);
        check = check_request("GET", "h", "/", &[("x-a", "a\u{1}b")], None);
        assert_eq!(read(&check).unwrap_err(), Unreadable::Header);
        assert_eq!(
            read(&CheckRequest::default()).unwrap_err(),
            Unreadable::NotHttp
        );
    }

    #[test]
    fn raw_headers_keep_their_repeats() {
        use crate::pb::envoy::config::core::v3::{HeaderMap as RawMap, HeaderValue as Raw};
        let mut check = check_request("GET", "h", "/", &[], None);
        let raw = |k: &str, v: &[u8]| Raw {
            key: k.to_owned(),
            raw_value: v.to_vec(),
            ..Default::default()
        };
        if let Some(http) = check
            .attributes
            .as_mut()
            .and_then(|a| a.request.as_mut())
            .and_then(|r| r.http.as_mut())
        {
            http.header_map = Some(RawMap {
                headers: vec![raw("x-api-key", b"a"), raw("x-api-key", b"b")],
            });
        }
        let asked = read(&check).unwrap();
        assert_eq!(asked.parts.headers.get_all("x-api-key").iter().count(), 2);
    }

    #[test]
    fn a_url_encoded_pem_chain_is_the_peers_certificate() {
        let der = [0x30u8, 0x03, 0x02, 0x01, 0x01];
        let b64 = "MAMCAQE=";
        let pem = format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
        let encoded: String =
            percent_encoding::utf8_percent_encode(&pem, percent_encoding::NON_ALPHANUMERIC)
                .collect();
        let peer = attribute_context::Peer {
            certificate: encoded,
            ..Default::default()
        };
        let cert = certificate(&peer).unwrap();
        assert_eq!(cert.leaf(), der);
        assert_eq!(cert.source(), CertSource::Proxy);
        let garbage = attribute_context::Peer {
            certificate: "not%20a%20pem".to_owned(),
            ..Default::default()
        };
        assert!(certificate(&garbage).is_none());
    }
}
