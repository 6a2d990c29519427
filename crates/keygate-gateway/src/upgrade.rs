//! Connection upgrades. After a 101 the connection is a tunnel that routing
//! and authentication no longer see, so only WebSocket (RFC 6455) passes,
//! only on routes that allow it (`websocket = true`), and only once the
//! upstream's 101 proves it speaks WebSocket to this very handshake
//! (`Sec-WebSocket-Accept`). Anything else asking to upgrade, `h2c`
//! included, is refused: a 400 tells the client plainly, where ignoring the
//! header would leave it guessing.

use aws_lc_rs::digest;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper_util::rt::TokioIo;

use super::config::Route;
use keygate_http::ApiError;

/// RFC 6455 §1.3.
const WEBSOCKET_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A WebSocket handshake allowed through: its client key.
pub struct WebSocketKey(HeaderValue);

/// Whether the request asks to switch protocols (`Connection: upgrade`).
fn asks_to_upgrade(headers: &HeaderMap) -> bool {
    super::request::connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

fn refused(detail: &str) -> ApiError {
    ApiError::bad_request("upgrade_not_allowed", detail.to_owned())
}

/// None: not an upgrade. An `Upgrade` header without `Connection: upgrade`
/// is not a request to switch, and is dropped as hop-by-hop.
pub fn check(headers: &HeaderMap, route: &Route) -> Result<Option<WebSocketKey>, ApiError> {
    if !asks_to_upgrade(headers) || !headers.contains_key(header::UPGRADE) {
        return Ok(None);
    }
    let mut protocols = headers.get_all(header::UPGRADE).iter();
    let only_websocket = protocols
        .next()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("websocket"))
        && protocols.next().is_none();
    if !only_websocket {
        return Err(refused("only WebSocket upgrades are forwarded"));
    }
    if !route.websocket {
        return Err(refused("this route does not allow WebSocket upgrades"));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|k| {
            STANDARD
                .decode(k.as_bytes())
                .is_ok_and(|raw| raw.len() == 16)
        })
        .ok_or_else(|| refused("a WebSocket handshake needs a Sec-WebSocket-Key of 16 bytes"))?;
    Ok(Some(WebSocketKey(key.clone())))
}

impl WebSocketKey {
    /// Whether `headers` (of a 101) are the answer to this handshake.
    pub fn accepted_by(&self, headers: &HeaderMap) -> bool {
        let mut input = Vec::with_capacity(self.0.len() + WEBSOCKET_GUID.len());
        input.extend_from_slice(self.0.as_bytes());
        input.extend_from_slice(WEBSOCKET_GUID);
        let expected = STANDARD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &input));
        let upgraded_to_websocket = headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("websocket"));
        upgraded_to_websocket
            && headers
                .get(header::SEC_WEBSOCKET_ACCEPT)
                .is_some_and(|v| v.as_bytes() == expected.as_bytes())
    }
}

/// Joins the client's and the upstream's upgraded connections once both
/// are ready; the tunnel ends when either side closes. `held` (the
/// upstream's lease) is kept for as long as the tunnel lasts.
pub fn splice(
    client: hyper::upgrade::OnUpgrade,
    upstream: &mut axum::http::Response<hyper::body::Incoming>,
    held: impl Send + 'static,
) {
    let upstream = hyper::upgrade::on(upstream);
    tokio::spawn(async move {
        let _held = held;
        let (Ok(client), Ok(upstream)) = tokio::join!(client, upstream) else {
            return;
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    });
}

/// The 101 for the client: the upstream's head, no body.
pub fn switching(mut parts: axum::http::response::Parts) -> axum::response::Response {
    // keygate's own version, as for every relayed answer (RFC 9110 §6.2).
    parts.version = axum::http::Version::HTTP_11;
    axum::response::Response::from_parts(parts, Body::empty())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_rfc_6455_example_handshake_is_accepted() {
        let key = WebSocketKey(HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        );
        assert!(key.accepted_by(&h));
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        assert!(!key.accepted_by(&h));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_static("AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        );
        assert!(!key.accepted_by(&h));
    }
}
