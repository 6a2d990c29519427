//! `/v1/forward-auth` on the admin listener: the same routes and checks as
//! the proxy, answered as nginx `auth_request`, Traefik/Caddy `forward_auth`
//! and Envoy `ext_authz` expect. Allowed is exactly 200 with an empty body;
//! a refusal is 401, 403 or 429, never a 5xx (a storage failure is 503,
//! which is no decision).
//!
//! The original URI may carry credential-looking query parameters: keygate
//! never takes credentials from a query, so it evaluates the request on its
//! headers as usual, and neither the path nor the query is logged.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::GatewayState;
use super::auth::Incoming;
use super::config::{AuthMode, ForwardToken};
use super::proxy::{Admitted, Outcome, admit, record};
use super::routes::{Lookup, is_safe_path};
use crate::http::AppState;
use crate::http::error::ApiError;

pub const PATH: &str = "/v1/forward-auth";

/// The request the proxy asks about.
struct Original {
    method: Method,
    path: String,
    /// Without the `?`: only a signed request (`hmac`) reads it.
    query: Option<String>,
    host: Option<String>,
    /// A route named by the `route` query parameter, overriding the table.
    route: Option<String>,
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

fn query_of(uri: &str) -> Option<String> {
    let before_fragment = uri.split('#').next().unwrap_or("");
    before_fragment.split_once('?').map(|(_, q)| q.to_owned())
}

fn path_of(uri: &str) -> String {
    // X-Forwarded-Uri may be absolute; only the path counts.
    let without_scheme = uri
        .split_once("://")
        .map_or(uri, |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
    let path = without_scheme.split(['?', '#']).next().unwrap_or("/");
    if path.is_empty() {
        "/".into()
    } else {
        path.to_owned()
    }
}

fn original(req: &Request) -> Original {
    let headers = req.headers();
    let method_from = |name: &str| {
        header_str(headers, name)
            .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
    };
    let host = header_str(headers, "x-forwarded-host")
        .or_else(|| header_str(headers, "host"))
        .map(str::to_owned);
    // Envoy: the original request line, under our path prefix.
    let rest = req.uri().path().strip_prefix(PATH).unwrap_or("");
    if rest.starts_with('/') {
        return Original {
            method: req.method().clone(),
            path: rest.to_owned(),
            query: req.uri().query().map(str::to_owned),
            host,
            route: None,
        };
    }
    let route = req.uri().query().and_then(|q| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == "route")
            .map(|(_, v)| v)
    });
    if let Some(uri) = header_str(headers, "x-original-uri") {
        return Original {
            method: method_from("x-original-method").unwrap_or(Method::GET),
            path: path_of(uri),
            query: query_of(uri),
            host,
            route,
        };
    }
    let uri = header_str(headers, "x-forwarded-uri");
    Original {
        method: method_from("x-forwarded-method").unwrap_or(Method::GET),
        path: uri.map_or_else(|| "/".into(), path_of),
        query: uri.and_then(query_of),
        host,
        route,
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
    let orig = original(&req);
    let table = gs.gateway.table();
    let found = match &orig.route {
        Some(name) => table.by_name(name).cloned().ok_or("no_route"),
        None if !is_safe_path(&orig.path) => Err("invalid_path"),
        None => match table.find(orig.host.as_deref(), &orig.path, &orig.method) {
            Lookup::Found(route) => Ok(route.clone()),
            Lookup::MethodNotAllowed => Err("method_not_allowed"),
            Lookup::NotFound => Err("no_route"),
        },
    };
    let mut outcome = Outcome::new(None);
    // Nothing matched: deny. A 404 or 405 would turn into a 500 at nginx.
    let res = match found {
        Err(code) => {
            outcome.failure = Some(code);
            ApiError::new(
                StatusCode::FORBIDDEN,
                code,
                "no gateway route allows this request",
            )
            .into_response()
        }
        Ok(route) => {
            outcome.route = Some(route.clone());
            let peer = header_str(req.headers(), "x-forwarded-for")
                .or_else(|| header_str(req.headers(), "x-real-ip"))
                .and_then(|v| v.split(',').next())
                .unwrap_or("unknown")
                .trim()
                .to_owned();
            let scheme = match header_str(req.headers(), "x-forwarded-proto") {
                Some(p) if p.eq_ignore_ascii_case("https") => "https",
                _ => "http",
            };
            let incoming = Incoming {
                headers: req.headers(),
                method: orig.method.as_str(),
                scheme,
                authority: orig.host.as_deref(),
                path: &orig.path,
                query: orig.query.as_deref(),
                has_body: announces_body(req.headers()),
            };
            match admit(&gs, &route, &incoming, &peer).await {
                Err(refusal) => {
                    outcome.failure = Some(refusal.reason);
                    outcome.rate_limited = refusal.reason == "rate_limited";
                    refusal.into_response()
                }
                // The body never comes here: a signed request's signature
                // and its covered `Content-Digest` header are checked, the
                // body against it is not (the proxy forwards it unseen).
                Ok(Admitted {
                    identity,
                    ratelimit,
                    pending_digest: _,
                }) => {
                    let token = match route.forward_token {
                        ForwardToken::Internal if route.auth == AuthMode::None => None,
                        ForwardToken::Internal => {
                            match gs
                                .gateway
                                .internal
                                .bearer(&gs.app.tokens, &route.name, &identity)
                            {
                                Ok(t) => Some(t),
                                Err(e) => {
                                    record(
                                        &gs,
                                        &outcome,
                                        &orig.method,
                                        StatusCode::INTERNAL_SERVER_ERROR,
                                        started,
                                        &request_id,
                                    );
                                    return ApiError::from(e).into_response();
                                }
                            }
                        }
                        _ => None,
                    };
                    let mut res = StatusCode::OK.into_response();
                    let h = res.headers_mut();
                    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    // Every identity header, empty when it does not apply:
                    // a proxy that copies the answer's headers onto the
                    // request (Envoy) then overwrites one the client forged
                    // (`x-keygate-kind: user`) instead of letting it through.
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
                    outcome.identity = Some(identity);
                    res
                }
            }
        }
    };
    record(
        &gs,
        &outcome,
        &orig.method,
        res.status(),
        started,
        &request_id,
    );
    res
}

/// Whether the original request had a body, as far as its headers tell:
/// a signed one must then cover its `Content-Digest`. Proxies often drop
/// `Content-Length` from the subrequest, so a `Content-Digest` counts too.
fn announces_body(headers: &HeaderMap) -> bool {
    headers.contains_key("content-digest")
        || headers.contains_key(header::TRANSFER_ENCODING)
        || header_str(headers, "content-length").is_some_and(|n| n.trim() != "0")
}

#[cfg(test)]
mod tests {
    use super::{path_of, query_of};

    #[test]
    fn the_query_of_an_original_uri_is_kept_for_signatures() {
        assert_eq!(query_of("/orders?id=7&x").as_deref(), Some("id=7&x"));
        assert_eq!(query_of("/orders?").as_deref(), Some(""));
        assert_eq!(query_of("/orders#a?b"), None);
        assert_eq!(query_of("/orders"), None);
    }

    #[test]
    fn only_the_path_of_an_original_uri_counts() {
        assert_eq!(path_of("/orders/1?token=x"), "/orders/1");
        assert_eq!(path_of("https://api.example/orders?x"), "/orders");
        assert_eq!(path_of("https://api.example"), "/");
        assert_eq!(path_of(""), "/");
    }
}
