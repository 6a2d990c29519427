//! Forwarding one admitted request, in pingora's phases: the request filter
//! (upgrade check, then the admission phases), the upstream request
//! (headers rewritten, body limited and checked), send, the response
//! filter (hop-by-hop headers, RateLimit fields, an upgrade's tunnel) and
//! log. A phase fails with a `ProxyError`, which says whose fault it was.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{self, HeaderName};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, Version};
use axum::response::{IntoResponse, Response};
use http_body_util::{LengthLimitError, Limited};
use hyper::body::Body as _;
use hyper::body::Incoming as UpstreamBody;
use keygate_core::httpsig::BodyDigest;

use super::Gateway;
use super::admission::Admitted;
use super::config::{ForwardToken, Route};
use super::conn::{Client, ClientConn};
use super::failure::ProxyError;
use super::hmac::{DigestChecked, DigestMismatch};
use super::outcome::{Failure, Outcome};
use super::path::NormalPath;
use super::refusal::Refusal;
use super::request::{self, AuthInput, Target, connection_tokens};
use super::routes::upstream_path;
use super::upgrade::{self, WebSocketKey};
use super::upstream::{Lease, SendError};
use keygate_http::ErrorCause;
use keygate_http::client_addr::CLIENT_ADDRESS_HEADERS;
use keygate_http::listen::BodyTooSlow;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
];

/// The client's credentials; the upstream gets keygate's token instead.
pub const CREDENTIALS: [&str; 4] = ["authorization", "x-api-key", "signature", "signature-input"];

// Names as values, so setting them parses nothing per request.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// keygate's own cookies, which are for keygate alone.
const OWN_COOKIE_PREFIX: &str = "__Host-keygate-";

/// The proxy on one listener.
pub struct Proxy {
    pub gateway: Arc<Gateway>,
    /// `https` when the listener serves TLS: the scheme signed requests
    /// are checked with and `X-Forwarded-Proto` says upstream.
    pub scheme: &'static str,
}

/// Why a request stopped before its upstream's answer was relayed.
enum Stop {
    Refused(Refusal),
    Failed(ProxyError),
}

impl From<Refusal> for Stop {
    fn from(r: Refusal) -> Self {
        Stop::Refused(r)
    }
}

impl From<ProxyError> for Stop {
    fn from(e: ProxyError) -> Self {
        Stop::Failed(e)
    }
}

/// An admitted request's settled facts, for the upstream phases.
struct Ready<'a> {
    route: &'a Route,
    path: &'a NormalPath<'static>,
    authority: Option<&'a str>,
    client: &'a Client<'a>,
    websocket: Option<WebSocketKey>,
    request_id: &'a HeaderValue,
}

impl Proxy {
    /// Every phase of one request, the log phase included.
    pub async fn handle(&self, conn: &ClientConn, req: Request) -> Response {
        let started = Instant::now();
        let request_id = keygate_http::request_id_value(req.headers());
        let method = req.method().clone();
        let table = self.gateway.table();
        let (mut res, outcome) = match request::target(&table, &req, self.scheme) {
            Ok(target) => {
                let mut outcome = Outcome::new(Some(target.route.clone()));
                let res = match self
                    .forward(conn, target, req, &request_id, &mut outcome)
                    .await
                {
                    Ok(res) => res,
                    Err(Stop::Refused(r)) => {
                        outcome.refused(&r);
                        r.into_response()
                    }
                    Err(Stop::Failed(e)) => {
                        outcome.failure = Some(Failure::from(&e));
                        e.into_response()
                    }
                };
                (res, outcome)
            }
            Err(e) => (e.into_response(), Outcome::new(None)),
        };
        res.headers_mut()
            .insert(keygate_http::REQUEST_ID, request_id.clone());
        // Always text: a kept id is checked to be, a new one is made so.
        let request_id = request_id.to_str().unwrap_or("-");
        if let Some(ErrorCause(cause)) = res.extensions().get::<ErrorCause>() {
            tracing::error!(route = %outcome.route_name(), %request_id, %cause, "gateway request failed");
        }
        self.gateway
            .record(&outcome, &method, res.status(), started, request_id);
        res
    }

    async fn forward(
        &self,
        conn: &ClientConn,
        target: Target,
        req: Request,
        request_id: &HeaderValue,
        outcome: &mut Outcome,
    ) -> Result<Response, Stop> {
        let Target {
            route,
            path,
            authority,
        } = target;
        let client = Client::of(&self.gateway.deps.trusted_proxies, conn, req.headers());
        let incoming = AuthInput {
            headers: req.headers(),
            method: req.method().as_str(),
            scheme: self.scheme,
            authority: authority.as_deref(),
            // The signature covers the path as the client sent it.
            path: req.uri().path(),
            query: req.uri().query(),
            has_body: !req.body().is_end_stream(),
            certificate: conn.certificate.as_ref(),
        };
        let (websocket, admitted) = self.request_filter(&route, &incoming, &client).await?;
        let Admitted {
            identity,
            ratelimit,
            pending_digest,
        } = admitted;
        let token = self.gateway.mint(&route, &identity);
        outcome.identity = Some(identity);
        if declared_length(req.headers()).is_some_and(|n| n > route.body_limit) {
            return Err(ProxyError::BodyTooLarge.into());
        }
        let token = token.map_err(ProxyError::Token)?;
        let ready = Ready {
            route: &route,
            path: &path,
            authority: authority.as_deref(),
            client: &client,
            websocket,
            request_id,
        };
        let (upstream_req, client_upgrade) =
            self.upstream_request(&ready, req, token, pending_digest)?;
        let (res, lease) = self.send(conn, &route, upstream_req).await?;
        let websocket = ready.websocket;
        Ok(response_filter(
            res,
            lease,
            websocket,
            client_upgrade,
            ratelimit,
        )?)
    }

    /// Refuses an upgrade the route does not take, then runs admission
    /// (authenticate, limit) on the request as the client sent it.
    async fn request_filter(
        &self,
        route: &Route,
        incoming: &AuthInput<'_>,
        client: &Client<'_>,
    ) -> Result<(Option<WebSocketKey>, Admitted), Stop> {
        let websocket = upgrade::check(incoming.headers, route)
            .map_err(|e| ProxyError::UpgradeRefused(Box::new(e)))?;
        let admitted = self.gateway.admit(route, incoming, &client.ip).await?;
        Ok((websocket, admitted))
    }

    /// Sends within the route's timeout and its upstream's request cap.
    async fn send(
        &self,
        conn: &ClientConn,
        route: &Route,
        upstream_req: axum::http::Request<Body>,
    ) -> Result<(axum::http::Response<UpstreamBody>, Lease), ProxyError> {
        let exchange = self.gateway.upstreams.send(
            Some(&conn.affinity),
            &route.upstream.endpoint,
            route.max_connections,
            upstream_req,
        );
        match tokio::time::timeout(route.timeout, exchange).await {
            Err(_) => Err(ProxyError::Timeout),
            Ok(Err(e)) => Err(send_failure(route, &e)),
            Ok(Ok(sent)) => Ok(sent),
        }
    }

    /// The request the upstream gets: the normalized path, the client's headers
    /// less what is keygate's or the connection's, keygate's token and the
    /// forwarding headers; and the client's side of an allowed upgrade.
    fn upstream_request(
        &self,
        ready: &Ready<'_>,
        req: Request,
        token: Option<HeaderValue>,
        pending_digest: Option<BodyDigest>,
    ) -> Result<(axum::http::Request<Body>, Option<hyper::upgrade::OnUpgrade>), ProxyError> {
        let route = ready.route;
        let (mut parts, body) = req.into_parts();
        let client_upgrade = ready
            .websocket
            .as_ref()
            .and_then(|_| parts.extensions.remove::<hyper::upgrade::OnUpgrade>());
        let uri = upstream_path(route, ready.path, parts.uri.query());
        let uri = Uri::try_from(uri).map_err(|_| ProxyError::InvalidPath)?;
        let mut headers = std::mem::take(&mut parts.headers);
        // The client's Host, shared rather than copied, when it is the
        // authority `X-Forwarded-Host` names.
        let host = headers.get(header::HOST).cloned();
        strip_for_upstream(&mut headers, route.forward_token);
        headers.insert(header::HOST, route.upstream.host_header.clone());
        if ready.websocket.is_some() {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        }
        if let Some(bearer) = token {
            headers.insert(header::AUTHORIZATION, bearer);
        }
        // The listener's own scheme: a client's `:scheme` or forwarding
        // headers are not evidence of how it reached us.
        add_forwarded(
            &mut headers,
            ready.client,
            ready.authority,
            host,
            self.scheme,
            ready.request_id,
        );
        let limit = usize::try_from(route.body_limit).unwrap_or(usize::MAX);
        let body = Limited::new(body, limit);
        // A signed body is released only as far as it matches its digest; see
        // `DigestChecked` for what an upstream that answers early has seen.
        let body = match pending_digest {
            Some(digest) => Body::new(DigestChecked::new(body, digest)),
            None => Body::new(body),
        };
        let mut upstream_req = axum::http::Request::new(body);
        *upstream_req.method_mut() = parts.method;
        *upstream_req.uri_mut() = uri;
        *upstream_req.version_mut() = Version::HTTP_11;
        *upstream_req.headers_mut() = headers;
        Ok((upstream_req, client_upgrade))
    }
}

/// Relays the upstream's answer: a WebSocket 101 becomes a tunnel, any
/// other answer takes keygate's HTTP version, loses its hop-by-hop headers
/// and gains the route's RateLimit fields.
fn response_filter(
    mut res: axum::http::Response<UpstreamBody>,
    lease: Lease,
    websocket: Option<WebSocketKey>,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    ratelimit: Option<keygate_http::RateLimitFields>,
) -> Result<Response, ProxyError> {
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        return match (websocket, client_upgrade) {
            (Some(key), Some(client)) if key.accepted_by(res.headers()) => {
                // The tunnel counts as a request in flight while it lasts.
                upgrade::splice(client, &mut res, lease);
                Ok(upgrade::switching(res.into_parts().0))
            }
            _ => Err(ProxyError::BadUpgrade),
        };
    }
    let (mut parts, body) = res.into_parts();
    let body = lease.attach(body);
    // An intermediary sends its own version (RFC 9110 §6.2): an HTTP/1.0
    // upstream's would make hyper answer HTTP/1.0 and close the client's
    // connection. (On HTTP/2, hyper ignores it.)
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    if let Some(fields) = ratelimit {
        fields.insert_into(&mut parts.headers);
    }
    Ok(Response::from_parts(parts, Body::new(body)))
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// What a failed send was: our own request body's failure (too slow, too
/// large, not matching its digest) is the client's, the rest the upstream's.
fn send_failure(route: &Route, e: &SendError) -> ProxyError {
    if matches!(e, SendError::Busy) {
        return ProxyError::Busy;
    }
    if caused_by::<BodyTooSlow>(e) {
        return ProxyError::BodyTimeout;
    }
    if caused_by::<LengthLimitError>(e) {
        return ProxyError::BodyTooLarge;
    }
    if caused_by::<DigestMismatch>(e) {
        return ProxyError::DigestMismatch;
    }
    tracing::warn!(route = %route.name, connect = e.is_connect(), error = %e, "upstream request failed");
    match e.tls_failure() {
        Some(_) => ProxyError::UpstreamTls,
        None => ProxyError::Unreachable,
    }
}

/// Whether our own request body failed the upstream request, with `E`.
fn caused_by<E: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<E>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Names the `Connection` header lists that are not hop-by-hop anyway.
/// Most messages have none, or the one `keep-alive` (or `close`): those
/// cost one lookup and allocate nothing.
fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    let mut values = headers.get_all(header::CONNECTION).iter();
    let (Some(first), rest) = (values.next(), values.next()) else {
        return Vec::new();
    };
    let plain = |v: &HeaderValue| {
        v.as_bytes().eq_ignore_ascii_case(b"keep-alive")
            || v.as_bytes().eq_ignore_ascii_case(b"close")
    };
    if rest.is_none() && plain(first) {
        return Vec::new();
    }
    connection_tokens(headers)
        .filter(|t| !is_hop_by_hop(t))
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect()
}

fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Removes only what is there: most answers carry one hop-by-hop header
/// (`Connection`) of eight, and a miss costs a hash lookup each.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in connection_listed(headers) {
        headers.remove(name);
    }
    while let Some(name) = headers
        .keys()
        .find(|n| HOP_BY_HOP.contains(&n.as_str()))
        .cloned()
    {
        headers.remove(name);
    }
}

/// Removes from the client's headers, in place (this runs on every
/// request, and most headers pass): hop-by-hop ones, the Host (the
/// upstream's is set from its URL), forwarding headers (set fresh later,
/// since a client may forge them), client-address headers such as
/// `X-Real-IP` (never set by keygate), identity headers a client could forge,
/// keygate's cookies, and its credentials unless the route passes them
/// through.
pub fn strip_for_upstream(headers: &mut HeaderMap, forward: ForwardToken) {
    let listed = connection_listed(headers);
    // The Host is always there: removed by itself, `gone` is then usually
    // empty, and empty it allocates nothing.
    headers.remove(header::HOST);
    let gone: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let n = name.as_str();
            HOP_BY_HOP.contains(&n)
                || listed.contains(name)
                || n == "forwarded"
                || n.starts_with("x-forwarded-")
                || n.starts_with("x-keygate-")
                || n == "x-request-id"
                || CLIENT_ADDRESS_HEADERS.contains(&n)
                || (forward != ForwardToken::Passthrough && CREDENTIALS.contains(&n))
        })
        .cloned()
        .collect();
    for name in gone {
        headers.remove(name);
    }
    if headers.contains_key(header::COOKIE) {
        let kept: Vec<HeaderValue> = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(without_own_cookies)
            .collect();
        headers.remove(header::COOKIE);
        for value in kept {
            headers.append(header::COOKIE, value);
        }
    }
}

fn without_own_cookies(value: &HeaderValue) -> Option<HeaderValue> {
    let text = value.to_str().ok()?;
    let kept: Vec<&str> = text
        .split(';')
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.starts_with(OWN_COOKIE_PREFIX))
        .collect();
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_str(&kept.join("; ")).ok()
}

/// `host_header`: the client's `Host`, reused for `X-Forwarded-Host` when
/// it is the authority (the usual case) instead of copied.
fn add_forwarded(
    headers: &mut HeaderMap,
    client: &Client<'_>,
    host: Option<&str>,
    host_header: Option<HeaderValue>,
    proto: &str,
    request_id: &HeaderValue,
) {
    let mut forwarded = String::with_capacity(64);
    forwarded.push_str(&client.forwarded_for);
    headers.insert(X_FORWARDED_FOR, client.x_forwarded_for.clone().into_owned());
    if let Some(h) = host.filter(|h| !h.contains(['"', ';', ','])) {
        forwarded.push_str(";host=\"");
        forwarded.push_str(h);
        forwarded.push('"');
        let value = match host_header {
            Some(v) if v.as_bytes() == h.as_bytes() => Ok(v),
            _ => HeaderValue::from_str(h),
        };
        if let Ok(v) = value {
            headers.insert(X_FORWARDED_HOST, v);
        }
    }
    forwarded.push_str(";proto=");
    forwarded.push_str(proto);
    // Moved, not copied, into the header.
    if let Ok(v) = HeaderValue::try_from(forwarded) {
        headers.insert(header::FORWARDED, v);
    }
    headers.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if proto == "https" { "https" } else { "http" }),
    );
    headers.insert(keygate_http::REQUEST_ID, request_id.clone());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn credentials_and_own_cookies_never_reach_the_upstream() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer secret"));
        h.insert("x-api-key", HeaderValue::from_static("kg_live_x"));
        h.insert("signature", HeaderValue::from_static("sig=:x:"));
        h.insert(
            "connection",
            HeaderValue::from_static("x-private, keep-alive"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("x-keygate-subject", HeaderValue::from_static("forged"));
        h.insert("x-real-ip", HeaderValue::from_static("6.6.6.6"));
        h.insert("true-client-ip", HeaderValue::from_static("6.6.6.6"));
        h.insert(
            "cookie",
            HeaderValue::from_static("a=1; __Host-keygate-refresh=secret; b=2"),
        );
        h.append("cookie", HeaderValue::from_static("__Host-keygate-x=1"));
        h.append("cookie", HeaderValue::from_static("c=3"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        let mut out = h.clone();
        strip_for_upstream(&mut out, ForwardToken::Internal);
        assert_eq!(out.len(), 3, "{out:?}");
        let cookies: Vec<_> = out.get_all("cookie").iter().collect();
        assert_eq!(cookies, ["a=1; b=2", "c=3"]);
        assert_eq!(out["accept"], "*/*");
        let mut pass = h.clone();
        strip_for_upstream(&mut pass, ForwardToken::Passthrough);
        assert_eq!(pass["authorization"], "Bearer secret");
        assert!(pass.get("x-keygate-subject").is_none());
    }

    #[test]
    fn every_connection_value_is_read_however_plain_the_first() {
        let mut h = HeaderMap::new();
        h.append("connection", HeaderValue::from_static("keep-alive"));
        h.append("connection", HeaderValue::from_static("X-Private"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        let mut close = HeaderMap::new();
        close.insert("connection", HeaderValue::from_static("Close"));
        close.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        close.insert("content-type", HeaderValue::from_static("text/plain"));
        strip_hop_by_hop(&mut close);
        assert_eq!(close.len(), 1, "{close:?}");
    }
}
