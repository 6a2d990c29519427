//! The route phase: what a request is, decided once and then used by every
//! later phase. Its framing (transfer codings), its one authority (for
//! routing, the signature, forwarding and `X-Forwarded-Host`), its normalized
//! path, and the route that path chooses.

use std::sync::Arc;

use axum::http::uri::Authority;
use axum::http::{HeaderMap, Method, StatusCode, Uri, Version, header};

use super::config::{PathParams, Route};
use super::path::{NormalPath, normalize};
use super::routes::{Lookup, RouteTable};
use keygate_core::clients::PeerCertificate;
use keygate_http::ApiError;
use keygate_http::framing::check_transfer_coding;

/// What the authenticate phase reads of a request: its headers, and for
/// `hmac` the request as the client addressed it (the signature covers it).
pub struct AuthInput<'a> {
    pub headers: &'a HeaderMap,
    pub method: &'a str,
    /// `http` or `https`: how the client reached keygate (or the proxy
    /// asking forward-auth).
    pub scheme: &'a str,
    /// The host (and port) the client addressed; None when it named none.
    pub authority: Option<&'a str>,
    /// As sent, percent-encoding untouched.
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// Whether a body follows: a signed request must then cover its
    /// `Content-Digest`, and the body is checked as it streams.
    pub has_body: bool,
    /// The client certificate: the connection's own (keygate's TLS), or
    /// the one a trusted proxy passed (forward-auth).
    pub certificate: Option<&'a PeerCertificate>,
}

/// The tokens of every `Connection` header, trimmed.
pub fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// The authority the client addressed: the request target's (absolute-form
/// HTTP/1, HTTP/2 `:authority`), which RFC 9112 §3.2.2 puts before `Host`,
/// or the one `Host`. Two that disagree, two `Host` headers, a malformed
/// one, or none on HTTP/1.1 are refused: each phase would otherwise be free
/// to read a different one.
pub fn authority(
    uri: &Uri,
    version: Version,
    headers: &HeaderMap,
    scheme: &str,
) -> Result<Option<String>, ApiError> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(bad_authority("the request has more than one Host header"));
    }
    let host = match host {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|h| h.parse::<Authority>().ok())
                .filter(|a| !a.as_str().contains('@'))
                .ok_or_else(|| bad_authority("the Host header is not a host[:port]"))?,
        ),
    };
    match (uri.authority(), host) {
        (Some(target), Some(host)) if !same_authority(target, &host, scheme) => Err(bad_authority(
            "the Host header names another authority than the request target",
        )),
        (Some(target), _) if target.as_str().contains('@') => {
            Err(bad_authority("the request target carries user information"))
        }
        (Some(target), _) => Ok(Some(target.as_str().to_owned())),
        (None, Some(host)) => Ok(Some(host.as_str().to_owned())),
        (None, None) if version == Version::HTTP_11 => {
            Err(bad_authority("an HTTP/1.1 request needs a Host header"))
        }
        (None, None) => Ok(None),
    }
}

fn bad_authority(detail: &str) -> ApiError {
    ApiError::bad_request("invalid_authority", detail.to_owned())
}

/// Equal ignoring case, and a port that is the scheme's default equal to
/// none.
pub fn same_authority(a: &Authority, b: &Authority, scheme: &str) -> bool {
    let default = if scheme == "https" { 443 } else { 80 };
    let port = |x: &Authority| x.port_u16().unwrap_or(default);
    a.host().eq_ignore_ascii_case(b.host()) && port(a) == port(b)
}

/// Why no route takes a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRoute {
    NotFound,
    MethodNotAllowed,
    /// The route refuses `;params` (`path_params = "refuse"`).
    PathParams,
}

impl NoRoute {
    pub fn code(self) -> &'static str {
        match self {
            NoRoute::NotFound => "no_route",
            NoRoute::MethodNotAllowed => "method_not_allowed",
            NoRoute::PathParams => "path_params",
        }
    }
}

/// The route for a normalized path: matched without `;params`, then the
/// route decides whether it takes them.
pub fn choose(
    table: &RouteTable,
    host: Option<&str>,
    path: &NormalPath<'_>,
    method: &Method,
) -> Result<Arc<Route>, NoRoute> {
    match table.find(host, path.matched(), method) {
        Lookup::Found(route) if path.has_params() && route.path_params == PathParams::Refuse => {
            Err(NoRoute::PathParams)
        }
        Lookup::Found(route) => Ok(route.clone()),
        Lookup::MethodNotAllowed => Err(NoRoute::MethodNotAllowed),
        Lookup::NotFound => Err(NoRoute::NotFound),
    }
}

/// What the gateway decided about a request before authenticating it.
pub struct Target {
    pub route: Arc<Route>,
    /// Normalized; what is forwarded.
    pub path: NormalPath<'static>,
    pub authority: Option<String>,
}

/// The route phase on the gateway's own listener, answered as the gateway
/// answers: 400 for a path or authority it cannot judge, 404, 405, 501.
pub fn target(
    table: &RouteTable,
    req: &axum::extract::Request,
    scheme: &str,
) -> Result<Target, ApiError> {
    check_transfer_coding(req.headers())?;
    let authority = authority(req.uri(), req.version(), req.headers(), scheme)?;
    let path = normalize(req.uri().path())
        .map_err(|e| ApiError::bad_request("invalid_path", e.detail()))?
        .into_owned();
    let route = choose(table, authority.as_deref(), &path, req.method()).map_err(|why| {
        let (status, detail) = match why {
            NoRoute::NotFound => (
                StatusCode::NOT_FOUND,
                "no gateway route matches this request",
            ),
            NoRoute::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "this route does not accept that method",
            ),
            NoRoute::PathParams => (
                StatusCode::BAD_REQUEST,
                "this route does not accept `;` parameters in path segments",
            ),
        };
        ApiError::new(status, why.code(), detail)
    })?;
    Ok(Target {
        route,
        path,
        authority,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn one_authority_or_none() {
        let origin: Uri = "/x".parse().unwrap();
        let absolute: Uri = "http://B.example:80/x".parse().unwrap();
        let v11 = Version::HTTP_11;
        let host = |h| headers(&[("host", h)]);
        assert_eq!(
            authority(&origin, v11, &host("a.example"), "http")
                .unwrap()
                .as_deref(),
            Some("a.example")
        );
        assert_eq!(
            authority(&absolute, v11, &host("b.example"), "http")
                .unwrap()
                .as_deref(),
            Some("B.example:80")
        );
        assert!(authority(&absolute, v11, &host("b.example:8080"), "http").is_err());
        assert!(authority(&absolute, v11, &host("a.example"), "http").is_err());
        assert!(authority(&absolute, v11, &host("b.example"), "https").is_err());
        let two = headers(&[("host", "a.example"), ("host", "a.example")]);
        assert!(authority(&origin, v11, &two, "http").is_err());
        assert!(authority(&origin, v11, &host("a.example/x"), "http").is_err());
        assert!(authority(&origin, v11, &host("u@a.example"), "http").is_err());
        assert!(authority(&origin, v11, &HeaderMap::new(), "http").is_err());
        assert_eq!(
            authority(&origin, Version::HTTP_10, &HeaderMap::new(), "http").unwrap(),
            None
        );
        let h2: Uri = "https://a.example/x".parse().unwrap();
        assert_eq!(
            authority(&h2, Version::HTTP_2, &HeaderMap::new(), "https")
                .unwrap()
                .as_deref(),
            Some("a.example")
        );
    }
}
