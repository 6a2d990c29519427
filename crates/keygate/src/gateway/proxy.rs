//! Forwarding one request, in phases: pick the route, authenticate, limit,
//! rewrite the headers, stream to the upstream and back, log.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{self, HeaderName};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, Version};
use axum::response::{IntoResponse, Response};
use http_body_util::{LengthLimitError, Limited};
use hyper::body::Body as _;
use keygate_core::httpsig::{BodyDigest, SigCode};

use super::GatewayState;
use super::auth::{self, Identity, Incoming, Refusal};
use super::config::{AuthMode, ForwardToken, Route};
use super::hmac::{DigestChecked, DigestMismatch, mismatch_error};
use super::listener::ClientConn;
use super::path::NormalPath;
use super::request::{self, Target, connection_tokens};
use super::routes::upstream_path;
use super::upgrade::{self, WebSocketKey};
use super::upstream::SendError;
use crate::client_addr::CLIENT_ADDRESS_HEADERS;
use crate::http::error::{ApiError, ErrorCause};
use crate::listen::BodyTooSlow;

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
const CREDENTIALS: [&str; 4] = ["authorization", "x-api-key", "signature", "signature-input"];

/// keygate's own cookies, which are for keygate alone.
const OWN_COOKIE_PREFIX: &str = "__Host-keygate-";

/// What the access log and the metrics need to know about a request.
pub struct Outcome {
    /// The matched route (its name and metric handles); None: `unmatched`.
    pub route: Option<Arc<Route>>,
    pub identity: Option<Identity>,
    pub failure: Option<&'static str>,
    pub rate_limited: bool,
}

impl Outcome {
    pub fn new(route: Option<Arc<Route>>) -> Self {
        Self {
            route,
            identity: None,
            failure: None,
            rate_limited: false,
        }
    }

    /// The route label for logs and metrics.
    pub fn route_name(&self) -> &str {
        self.route.as_ref().map_or("unmatched", |r| r.name.as_str())
    }
}

pub async fn handle(gs: &GatewayState, conn: &ClientConn, req: Request) -> Response {
    let started = Instant::now();
    let request_id = crate::http::request_id_of(req.headers());
    let method = req.method().clone();
    let table = gs.gateway.table();
    let (mut res, outcome) = match request::target(&table, &req, gs.scheme) {
        Ok(target) => forward(gs, conn, target, req, &request_id).await,
        Err(e) => (e.into_response(), Outcome::new(None)),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert("x-request-id", v);
    }
    if let Some(ErrorCause(cause)) = res.extensions().get::<ErrorCause>() {
        tracing::error!(route = %outcome.route_name(), %request_id, %cause, "gateway request failed");
    }
    record(gs, &outcome, &method, res.status(), started, &request_id);
    res
}

/// One access-log line and the route's metrics. The path and query are left
/// out: a client may have pasted a secret into either.
pub fn record(
    gs: &GatewayState,
    outcome: &Outcome,
    method: &axum::http::Method,
    status: StatusCode,
    started: Instant,
    request_id: &str,
) {
    let seconds = started.elapsed().as_secs_f64();
    gs.app.metrics.gateway.observe(
        outcome.route_name(),
        outcome.route.as_deref().map(|r| &*r.metrics),
        status,
        seconds,
        outcome.failure,
        outcome.rate_limited,
    );
    let id = outcome.identity.as_ref();
    tracing::info!(
        target: "keygate::access",
        route = %outcome.route_name(),
        method = crate::metrics::method_label(method),
        status = status.as_u16(),
        micros = started.elapsed().as_micros() as u64,
        key_id = id.and_then(|i| i.key_id.as_deref()).unwrap_or("-"),
        subject = id.and_then(|i| i.subject.as_deref()).unwrap_or("-"),
        failure = outcome.failure.unwrap_or("-"),
        %request_id,
        "request"
    );
}

/// The client as the upstream is told of it: the peer, or the client a
/// trusted proxy in front names (`trusted_proxies`).
pub struct Client<'a> {
    pub ip: Cow<'a, str>,
    pub x_forwarded_for: Cow<'a, HeaderValue>,
    pub forwarded_for: Cow<'a, str>,
}

impl<'a> Client<'a> {
    fn of(gs: &GatewayState, conn: &'a ClientConn, headers: &HeaderMap) -> Self {
        let trusted = &gs.app.trusted_proxies;
        if trusted.is_empty() || !trusted.contains(conn.peer.ip()) {
            return Self {
                ip: Cow::Borrowed(&conn.peer_text),
                x_forwarded_for: Cow::Borrowed(&conn.x_forwarded_for),
                forwarded_for: Cow::Borrowed(&conn.forwarded_for),
            };
        }
        let ip = trusted.client_ip(conn.peer.ip(), headers);
        let peer = ClientConn::describe(ip);
        Self {
            ip: Cow::Owned(peer.0),
            x_forwarded_for: Cow::Owned(peer.1),
            forwarded_for: Cow::Owned(peer.2),
        }
    }
}

async fn forward(
    gs: &GatewayState,
    conn: &ClientConn,
    target: Target,
    req: Request,
    request_id: &str,
) -> (Response, Outcome) {
    let Target {
        route,
        path,
        authority,
    } = target;
    let mut outcome = Outcome::new(Some(route.clone()));
    let websocket = match upgrade::check(req.headers(), &route) {
        Ok(key) => key,
        Err(e) => return (e.into_response(), outcome),
    };
    let client = Client::of(gs, conn, req.headers());
    let incoming = Incoming {
        headers: req.headers(),
        method: req.method().as_str(),
        scheme: gs.scheme,
        authority: authority.as_deref(),
        // The signature covers the path as the client sent it.
        path: req.uri().path(),
        query: req.uri().query(),
        has_body: !req.body().is_end_stream(),
    };
    let admitted = match admit(gs, &route, &incoming, &client.ip).await {
        Ok(ok) => ok,
        Err(refusal) => {
            outcome.failure = Some(refusal.reason);
            outcome.rate_limited = refusal.reason == "rate_limited";
            return (refusal.into_response(), outcome);
        }
    };
    let ready = Ready {
        route: &route,
        path: &path,
        authority: authority.as_deref(),
        client: &client,
        websocket,
        request_id,
    };
    let (res, failure) = exchange(gs, conn, ready, admitted, req, &mut outcome).await;
    outcome.failure = outcome.failure.or(failure);
    (res, outcome)
}

/// An admitted request's settled facts, for the upstream phases.
struct Ready<'a> {
    route: &'a Route,
    path: &'a NormalPath<'static>,
    authority: Option<&'a str>,
    client: &'a Client<'a>,
    websocket: Option<WebSocketKey>,
    request_id: &'a str,
}

/// Sends an admitted request upstream and relays the answer.
async fn exchange(
    gs: &GatewayState,
    conn: &ClientConn,
    ready: Ready<'_>,
    admitted: Admitted,
    req: Request,
    outcome: &mut Outcome,
) -> (Response, Option<&'static str>) {
    let Admitted {
        identity,
        ratelimit,
        pending_digest,
    } = admitted;
    let route = ready.route;
    let token = internal_token(gs, route, &identity);
    outcome.identity = Some(identity);
    if declared_length(req.headers()).is_some_and(|n| n > route.body_limit) {
        return (too_large().into_response(), None);
    }
    let token = match token {
        Ok(t) => t,
        Err(e) => return (ApiError::from(e).into_response(), None),
    };
    let (upstream_req, client_upgrade) =
        match upstream_request(gs, &ready, req, token, pending_digest) {
            Ok(built) => built,
            Err(e) => return (e.into_response(), None),
        };
    let upstreams = &gs.gateway.upstreams;
    let exchange = upstreams.send(
        Some(&conn.affinity),
        &route.upstream.address,
        route.max_connections,
        upstream_req,
    );
    let (mut res, lease) = match tokio::time::timeout(route.timeout, exchange).await {
        Err(_) => return upstream_timeout(),
        Ok(Err(e)) => return upstream_failed(route, &e),
        Ok(Ok(sent)) => sent,
    };
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        return match (ready.websocket, client_upgrade) {
            (Some(key), Some(client)) if key.accepted_by(res.headers()) => {
                // The tunnel counts as a request in flight while it lasts.
                upgrade::splice(client, &mut res, lease);
                (upgrade::switching(res.into_parts().0), None)
            }
            _ => (
                upgrade::bad_answer().into_response(),
                Some("upstream_bad_upgrade"),
            ),
        };
    }
    let (mut parts, body) = res.into_parts();
    let body = lease.attach(body);
    strip_hop_by_hop(&mut parts.headers);
    if let Some((policy, value)) = ratelimit {
        parts.headers.insert("ratelimit-policy", policy);
        parts.headers.insert("ratelimit", value);
    }
    (Response::from_parts(parts, Body::new(body)), None)
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The internal token for the upstream, when the route sends one.
pub fn internal_token(
    gs: &GatewayState,
    route: &Route,
    identity: &Identity,
) -> Result<Option<HeaderValue>, keygate_core::Error> {
    match route.forward_token {
        // An anonymous request has no identity to vouch for.
        ForwardToken::Internal if route.auth == AuthMode::None => Ok(None),
        ForwardToken::Internal => gs
            .gateway
            .internal
            .bearer(&gs.app.tokens, &route.name, identity)
            .map(Some),
        _ => Ok(None),
    }
}

/// The request the upstream gets: the normalized path, the client's headers
/// less what is keygate's or the connection's, keygate's token and the
/// forwarding headers; and the client's side of an allowed upgrade.
fn upstream_request(
    gs: &GatewayState,
    ready: &Ready<'_>,
    req: Request,
    token: Option<HeaderValue>,
    pending_digest: Option<BodyDigest>,
) -> Result<(axum::http::Request<Body>, Option<hyper::upgrade::OnUpgrade>), ApiError> {
    let route = ready.route;
    let (mut parts, body) = req.into_parts();
    let client_upgrade = ready
        .websocket
        .as_ref()
        .and_then(|_| parts.extensions.remove::<hyper::upgrade::OnUpgrade>());
    let mut uri = upstream_path(route, ready.path);
    if let Some(q) = parts.uri.query() {
        uri.push('?');
        uri.push_str(q);
    }
    let uri = uri.parse::<Uri>().map_err(|_| {
        ApiError::bad_request("invalid_path", "the request path cannot be forwarded")
    })?;
    let mut headers = std::mem::take(&mut parts.headers);
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
        gs.scheme,
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

fn upstream_timeout() -> (Response, Option<&'static str>) {
    let e = ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "upstream_timeout",
        "the upstream service did not answer in time",
    );
    (e.into_response(), Some("upstream_timeout"))
}

fn upstream_failed(route: &Route, e: &SendError) -> (Response, Option<&'static str>) {
    if matches!(e, SendError::Busy) {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream_busy",
            "the upstream service has as many requests in flight as it may; retry shortly",
        );
        e.retry_after_secs = Some(1);
        return (e.into_response(), Some("upstream_busy"));
    }
    if caused_by::<BodyTooSlow>(e) {
        let e = ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "the request body arrived too slowly",
        );
        return (e.into_response(), Some("body_timeout"));
    }
    if caused_by::<LengthLimitError>(e) {
        return (too_large().into_response(), None);
    }
    if caused_by::<DigestMismatch>(e) {
        return (
            mismatch_error().into_response(),
            Some(SigCode::ContentDigestMismatch.as_str()),
        );
    }
    tracing::warn!(route = %route.name, connect = e.is_connect(), error = %e, "upstream request failed");
    let e = ApiError::new(
        StatusCode::BAD_GATEWAY,
        "upstream_unavailable",
        "the upstream service could not be reached",
    );
    (e.into_response(), Some("upstream_unavailable"))
}

/// An authenticated request within its route's limit.
pub struct Admitted {
    pub identity: Identity,
    pub ratelimit: Option<auth::RateLimitFields>,
    /// For a signed request with a body: what the body must match.
    pub pending_digest: Option<BodyDigest>,
}

/// Authentication, then the route's rate limit.
pub async fn admit(
    gs: &GatewayState,
    route: &Route,
    req: &Incoming<'_>,
    peer: &str,
) -> Result<Admitted, Refusal> {
    let (identity, pending_digest) = auth::authenticate(&gs.app, route, req).await?;
    let now_ms = gs.app.keys.clock().now_millis();
    let ratelimit =
        auth::check_rate_limit(gs.gateway.limiter.as_ref(), route, &identity, peer, now_ms).await?;
    Ok(Admitted {
        identity,
        ratelimit,
        pending_digest,
    })
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "the request body is larger than this route accepts",
    )
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

/// Names the `Connection` header lists are hop-by-hop too.
fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    connection_tokens(headers)
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect()
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in connection_listed(headers) {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
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
    let gone: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let n = name.as_str();
            HOP_BY_HOP.contains(&n)
                || listed.contains(name)
                || n == "host"
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

fn add_forwarded(
    headers: &mut HeaderMap,
    client: &Client<'_>,
    host: Option<&str>,
    proto: &str,
    request_id: &str,
) {
    use std::fmt::Write as _;
    let mut forwarded = String::with_capacity(64);
    forwarded.push_str(&client.forwarded_for);
    headers.insert(
        "x-forwarded-for",
        client.x_forwarded_for.clone().into_owned(),
    );
    if let Some(h) = host.filter(|h| !h.contains(['"', ';', ','])) {
        let _ = write!(forwarded, ";host=\"{h}\"");
        if let Ok(v) = HeaderValue::from_str(h) {
            headers.insert("x-forwarded-host", v);
        }
    }
    let _ = write!(forwarded, ";proto={proto}");
    if let Ok(v) = HeaderValue::from_str(&forwarded) {
        headers.insert("forwarded", v);
    }
    headers.insert(
        "x-forwarded-proto",
        HeaderValue::from_static(if proto == "https" { "https" } else { "http" }),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", v);
    }
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
}
