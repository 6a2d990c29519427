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
use super::config::{AuthMode, ForwardToken};
use super::proxy::{Outcome, admit, record};
use super::routes::{Lookup, is_safe_path};
use crate::http::AppState;
use crate::http::error::ApiError;

pub const PATH: &str = "/v1/forward-auth";

/// The request the proxy asks about.
struct Original {
    method: Method,
    path: String,
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
            host,
            route,
        };
    }
    Original {
        method: method_from("x-forwarded-method").unwrap_or(Method::GET),
        path: header_str(headers, "x-forwarded-uri").map_or_else(|| "/".into(), path_of),
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
    let gs = GatewayState { app, gateway };
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
    let mut outcome = Outcome {
        route: "unmatched".into(),
        identity: None,
        failure: None,
        rate_limited: false,
    };
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
            outcome.route = route.name.clone();
            let peer = header_str(req.headers(), "x-forwarded-for")
                .or_else(|| header_str(req.headers(), "x-real-ip"))
                .and_then(|v| v.split(',').next())
                .unwrap_or("unknown")
                .trim()
                .to_owned();
            match admit(&gs, &route, req.headers(), &peer).await {
                Err(refusal) => {
                    outcome.failure = Some(refusal.reason);
                    outcome.rate_limited = refusal.reason == "rate_limited";
                    refusal.into_response()
                }
                Ok((identity, ratelimit)) => {
                    let token = match route.forward_token {
                        ForwardToken::Internal if route.auth == AuthMode::None => None,
                        ForwardToken::Internal => {
                            match gs
                                .gateway
                                .internal
                                .token(&gs.app.tokens, &route.name, &identity)
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
                    let mut put = |name: &'static str, value: Option<String>| {
                        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                            h.insert(name, v);
                        }
                    };
                    put(
                        "x-keygate-subject",
                        identity.token_subject().map(str::to_owned),
                    );
                    put("x-keygate-key-id", identity.key_id.clone());
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
                    put("authorization", token.map(|t| format!("Bearer {t}")));
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

#[cfg(test)]
mod tests {
    use super::path_of;

    #[test]
    fn only_the_path_of_an_original_uri_counts() {
        assert_eq!(path_of("/orders/1?token=x"), "/orders/1");
        assert_eq!(path_of("https://api.example/orders?x"), "/orders");
        assert_eq!(path_of("https://api.example"), "/");
        assert_eq!(path_of(""), "/");
    }
}
