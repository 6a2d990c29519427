//! An HTTP request as the HMAC signature check (RFC 9421, keygate-core's
//! `httpsig`) reads it.

use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use keygate_core::httpsig::{
    BodyStatus, HeaderLookup, HmacError, HmacIdentity, HmacService, RequestView, SigCode,
    SignatureRefusal,
};

/// An axum/http header map as `httpsig` reads headers, for building a
/// `RequestView` of an incoming request (the gateway's `auth = "hmac"`).
pub struct HeaderMapLookup<'a>(pub &'a HeaderMap);

impl HeaderLookup for HeaderMapLookup<'_> {
    fn values(&self, name: &str) -> Vec<&[u8]> {
        self.0.get_all(name).iter().map(|v| v.as_bytes()).collect()
    }
}

/// Verifies a signed request from its axum parts: the authority is the
/// URI's (HTTP/2, absolute form) or else `Host`; `scheme` is how the client
/// reached us (`https` behind a TLS-terminating proxy). For the gateway.
pub async fn verify_parts(
    hmac: &HmacService,
    parts: &Parts,
    scheme: &str,
    body: BodyStatus<'_>,
) -> Result<HmacIdentity, HmacError> {
    let authority = match parts.uri.authority() {
        Some(a) => a.as_str(),
        None => parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(|| {
                SignatureRefusal::new(SigCode::SignatureMalformed, "the request names no host")
            })?,
    };
    let headers = HeaderMapLookup(&parts.headers);
    let view = RequestView {
        method: parts.method.as_str(),
        scheme,
        authority,
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &headers,
    };
    hmac.verify_request(&view, body).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn header_maps_are_read_in_order_case_insensitively() {
        let mut map = HeaderMap::new();
        map.append("x-a", HeaderValue::from_static("1"));
        map.append("X-A", HeaderValue::from_static("2"));
        let lookup = HeaderMapLookup(&map);
        assert_eq!(lookup.values("x-a"), vec![b"1".as_slice(), b"2".as_slice()]);
        assert!(lookup.values("x-b").is_empty());
    }
}
