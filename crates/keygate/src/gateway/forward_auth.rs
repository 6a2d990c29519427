//! `/v1/forward-auth` on the admin listener: the same routes and checks as
//! the proxy, answered as nginx `auth_request`, Traefik/Caddy `forward_auth`
//! and Envoy `ext_authz` expect. Allowed is exactly 200 with an empty body;
//! a refusal is 401, 403 or 429, never a 5xx (a storage failure is 503,
//! which is no decision).
//!
//! The original URI may carry credential-looking query parameters: keygate
//! never takes credentials from a query, so it evaluates the request on its
//! headers as usual, and neither the path nor the query is logged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::GatewayState;
use super::auth::{Identity, Incoming};
use super::config::Route;
use super::path::{NormalPath, normalize};
use super::proxy::{Admitted, Outcome, admit, internal_token, record};
use super::request::{NoRoute, choose, same_authority};
use crate::http::AppState;
use crate::http::error::ApiError;

pub const PATH: &str = "/v1/forward-auth";

/// The request the proxy asks about.
struct Original {
    method: Method,
    /// As the proxy reports it: what a signature covers.
    raw_path: String,
    /// What is judged.
    path: NormalPath<'static>,
    /// Without the `?`: only a signed request (`hmac`) reads it.
    query: Option<String>,
    host: Option<String>,
    /// A route named by the `route` query parameter, overriding the table.
    route: Option<String>,
}

/// Why the original request cannot be judged; always a 403.
pub type Unjudgeable = &'static str;

/// A header's text: None when absent, refused when present but not text or
/// present twice (an absent header must never stand in for one we could
/// not read).
fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, Unjudgeable> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("ambiguous_original");
    }
    match value.to_str() {
        Ok("") => Ok(None),
        Ok(text) => Ok(Some(text)),
        Err(_) => Err("invalid_original"),
    }
}

/// A request target split as RFC 9112 §3.2 reads one.
#[derive(Debug, PartialEq, Eq)]
struct Target<'a> {
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
}

/// Origin-form (`/p?q`) or absolute-form (`scheme://authority/p?q`), the
/// latter only when the text *starts* with a scheme: a URL inside the
/// query is the query's. The path ends at the first `?` or `#`.
fn split_target(uri: &str) -> Option<Target<'_>> {
    let (authority, rest) = if uri.starts_with('/') {
        (None, uri)
    } else {
        let (scheme, rest) = uri.split_once("://")?;
        let mut chars = scheme.chars();
        let valid_scheme = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if !valid_scheme {
            return None;
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = Some(&rest[..end]).filter(|a| !a.is_empty())?;
        (Some(authority), &rest[end..])
    };
    let rest = rest.split('#').next().unwrap_or("");
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    Some(Target {
        authority,
        path: if path.is_empty() { "/" } else { path },
        query,
    })
}

/// An original URI as forward-auth judges it.
#[derive(Debug)]
pub struct JudgedUri<'a> {
    /// The authority an absolute-form URI names.
    pub authority: Option<&'a str>,
    /// As sent: what a signature covers.
    pub raw_path: &'a str,
    /// Normalized: what routes match.
    pub path: NormalPath<'static>,
    pub query: Option<&'a str>,
}

/// What forward-auth reads of `X-Original-URI` and `X-Forwarded-Uri`
/// (public for the fuzz target).
pub fn judge_uri(uri: &str) -> Result<JudgedUri<'_>, Unjudgeable> {
    let parts = split_target(uri).ok_or("invalid_original")?;
    Ok(JudgedUri {
        authority: parts.authority,
        raw_path: parts.path,
        path: judged_path(parts.path)?,
        query: parts.query,
    })
}

/// The path forward-auth judges. The proxy forwards the raw one, so what
/// an upstream could read two ways is refused rather than merged: a
/// leading `//` (a network-path reference to some parsers) and any other
/// empty segment.
fn judged_path(raw: &str) -> Result<NormalPath<'static>, Unjudgeable> {
    let inner = raw.strip_suffix('/').unwrap_or(raw);
    if inner.contains("//") {
        return Err("invalid_path");
    }
    normalize(raw)
        .map(NormalPath::into_owned)
        .map_err(|_| "invalid_path")
}

fn original(req: &Parts) -> Result<Original, Unjudgeable> {
    let headers = &req.headers;
    let method_from = |name: &str| -> Result<Option<Method>, Unjudgeable> {
        header_text(headers, name)?
            .map(|m| {
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| "invalid_original")
            })
            .transpose()
    };
    // The subrequest's own Host names keygate, unless the proxy passed the
    // client's on: the last resort, never weighed against the URI's.
    let forwarded_host = header_text(headers, "x-forwarded-host")?;
    let host = match forwarded_host {
        Some(h) => Some(h),
        None => header_text(headers, "host")?,
    };
    // Envoy: the original request line, under our path prefix.
    let rest = req.uri.path().strip_prefix(PATH).unwrap_or("");
    if rest.starts_with('/') {
        return Ok(Original {
            method: req.method.clone(),
            raw_path: rest.to_owned(),
            path: judged_path(rest)?,
            query: req.uri.query().map(str::to_owned),
            host: host.map(str::to_owned),
            route: None,
        });
    }
    let route = req.uri.query().and_then(|q| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == "route")
            .map(|(_, v)| v)
    });
    let (uri, method) = match header_text(headers, "x-original-uri")? {
        Some(uri) => (Some(uri), method_from("x-original-method")?),
        None => (
            header_text(headers, "x-forwarded-uri")?,
            method_from("x-forwarded-method")?,
        ),
    };
    let judged = judge_uri(uri.unwrap_or("/"))?;
    Ok(Original {
        method: method.unwrap_or(Method::GET),
        raw_path: judged.raw_path.to_owned(),
        path: judged.path,
        query: judged.query.map(str::to_owned),
        host: one_host(judged.authority, forwarded_host)?
            .or(host)
            .map(str::to_owned),
        route,
    })
}

/// An absolute-form URI's authority, which must agree with the forwarded
/// host when both are given.
fn one_host<'a>(
    target: Option<&'a str>,
    forwarded: Option<&'a str>,
) -> Result<Option<&'a str>, Unjudgeable> {
    let (Some(target), Some(forwarded)) = (target, forwarded) else {
        return Ok(target.or(forwarded));
    };
    let parse = |a: &str| a.parse::<axum::http::uri::Authority>().ok();
    match (parse(target), parse(forwarded)) {
        // Compared as the proxy's own scheme would: a default port of either.
        (Some(t), Some(f)) if same_authority(&t, &f, "http") || same_authority(&t, &f, "https") => {
            Ok(Some(target))
        }
        _ => Err("authority_mismatch"),
    }
}

pub async fn handle(State(app): State<AppState>, req: Request) -> Response {
    let started = Instant::now();
    let request_id = crate::http::request_id_of(req.headers());
    let Some(gateway) = app.gateway.clone() else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "gateway_not_configured",
            "forward-auth needs a [gateway] section with routes",
        )
        .into_response();
    };
    // The original request's scheme is the proxy's to tell, as its method
    // and URI are; this listener's own scheme says nothing about it.
    let gs = GatewayState {
        app,
        gateway,
        scheme: "http",
    };
    let (req, _) = req.into_parts();
    let mut outcome = Outcome::new(None);
    let judged = original(&req).and_then(|orig| {
        let route = route_for(&gs, &orig)?;
        Ok((orig, route))
    });
    let (res, method) = match judged {
        // Nothing matched: deny. A 404 or 405 would turn into a 500 at nginx.
        Err(code) => {
            outcome.failure = Some(code);
            (no_decision(code), req.method.clone())
        }
        Ok((orig, route)) => {
            outcome.route = Some(route.clone());
            let res = decide(&gs, &req, &orig, &route, &mut outcome).await;
            (res, orig.method)
        }
    };
    record(&gs, &outcome, &method, res.status(), started, &request_id);
    res
}

fn no_decision(code: &'static str) -> Response {
    let detail = match code {
        "no_route" | "method_not_allowed" => "no gateway route allows this request",
        "path_params" => "this route does not accept `;` parameters in path segments",
        "authority_mismatch" => "the original URI's host is not the forwarded host",
        _ => "the original request's method, URI or host cannot be judged",
    };
    ApiError::new(StatusCode::FORBIDDEN, code, detail).into_response()
}

fn route_for(gs: &GatewayState, orig: &Original) -> Result<Arc<Route>, Unjudgeable> {
    let table = gs.gateway.table();
    match &orig.route {
        Some(name) => table.by_name(name).cloned().ok_or("no_route"),
        None => {
            choose(&table, orig.host.as_deref(), &orig.path, &orig.method).map_err(NoRoute::code)
        }
    }
}

/// Authenticates and limits the original request as its route says.
async fn decide(
    gs: &GatewayState,
    req: &Parts,
    orig: &Original,
    route: &Route,
    outcome: &mut Outcome,
) -> Response {
    let peer = req
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| gs.app.trusted_proxies.client_ip(c.0.ip(), &req.headers));
    let peer = peer.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let scheme = match header_text(&req.headers, "x-forwarded-proto") {
        Ok(Some(p)) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    let incoming = Incoming {
        headers: &req.headers,
        method: orig.method.as_str(),
        scheme,
        authority: orig.host.as_deref(),
        path: &orig.raw_path,
        query: orig.query.as_deref(),
        has_body: announces_body(&req.headers),
    };
    match admit(gs, route, &incoming, &peer).await {
        Err(refusal) => {
            outcome.failure = Some(refusal.reason);
            outcome.rate_limited = refusal.reason == "rate_limited";
            refusal.into_response()
        }
        // The body never comes here: a signed request's signature and its
        // covered `Content-Digest` header are checked, the body against it
        // is not (the proxy forwards it unseen).
        Ok(admitted) => match allowed(gs, route, admitted) {
            Ok((res, identity)) => {
                outcome.identity = Some(identity);
                res
            }
            Err(e) => e.into_response(),
        },
    }
}

/// 200 with the identity headers and the internal token.
fn allowed(
    gs: &GatewayState,
    route: &Route,
    admitted: Admitted,
) -> Result<(Response, Identity), ApiError> {
    let Admitted {
        identity,
        ratelimit,
        pending_digest: _,
    } = admitted;
    let token = internal_token(gs, route, &identity)?;
    let mut res = StatusCode::OK.into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Every identity header, empty when it does not apply: a proxy that
    // copies the answer's headers onto the request (Envoy) then overwrites
    // one the client forged (`x-keygate-kind: user`) instead of letting it
    // through.
    let mut put = |name: &'static str, value: Option<String>| {
        let v = value.and_then(|v| HeaderValue::from_str(&v).ok());
        h.insert(name, v.unwrap_or(HeaderValue::from_static("")));
    };
    put(
        "x-keygate-subject",
        identity.token_subject().map(str::to_owned),
    );
    put(
        "x-keygate-kind",
        identity.kind.map(|k| k.as_str().to_owned()),
    );
    put("x-keygate-key-id", identity.key_id.clone());
    put("x-keygate-client-id", identity.client_id.clone());
    put("x-keygate-tenant", identity.tenant.clone());
    put(
        "x-keygate-scopes",
        Some(identity.scopes.join(" ")).filter(|s| !s.is_empty()),
    );
    put(
        "x-keygate-roles",
        Some(identity.roles.join(",")).filter(|s| !s.is_empty()),
    );
    put("x-keygate-route", Some(route.name.clone()));
    if let Some(bearer) = token {
        h.insert(header::AUTHORIZATION, bearer);
    }
    if let Some((policy, value)) = ratelimit {
        h.insert("ratelimit-policy", policy);
        h.insert("ratelimit", value);
    }
    Ok((res, identity))
}

/// Whether the original request had a body, as far as its headers tell:
/// a signed one must then cover its `Content-Digest`. Proxies often drop
/// `Content-Length` from the subrequest, so a `Content-Digest` counts too.
fn announces_body(headers: &HeaderMap) -> bool {
    headers.contains_key("content-digest")
        || headers.contains_key(header::TRANSFER_ENCODING)
        || header_text(headers, "content-length")
            .ok()
            .flatten()
            .is_some_and(|n| n.trim() != "0")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parts(uri: &str) -> Option<(Option<&str>, &str, Option<&str>)> {
        split_target(uri).map(|p| (p.authority, p.path, p.query))
    }

    #[test]
    fn a_url_in_the_query_is_the_querys() {
        assert_eq!(
            parts("/admin/secret?next=https://example.com/public"),
            Some((
                None,
                "/admin/secret",
                Some("next=https://example.com/public")
            ))
        );
        assert_eq!(
            parts("/admin#https://example.com/public"),
            Some((None, "/admin", None))
        );
        assert_eq!(parts("/orders#a?b"), Some((None, "/orders", None)));
        assert_eq!(parts("/orders?"), Some((None, "/orders", Some(""))));
    }

    #[test]
    fn absolute_form_only_when_it_starts_with_a_scheme() {
        assert_eq!(
            parts("https://api.example/orders?x"),
            Some((Some("api.example"), "/orders", Some("x")))
        );
        assert_eq!(
            parts("https://api.example"),
            Some((Some("api.example"), "/", None))
        );
        assert_eq!(
            parts("http://a.example?u=http://b/c"),
            Some((Some("a.example"), "/", Some("u=http://b/c")))
        );
        for bad in [
            "",
            "admin",
            "*",
            "1http://a/b",
            "http:///x",
            "://a/b",
            "a b://c/d",
        ] {
            assert_eq!(parts(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn what_the_proxy_forwards_raw_must_be_judgeable() {
        assert_eq!(judged_path("/%61dmin/").unwrap().full(), "/admin/");
        assert!(judged_path("//example.com/admin").is_err());
        assert!(judged_path("/public//admin").is_err());
        assert!(judged_path("/public/../admin").is_err());
    }
}
