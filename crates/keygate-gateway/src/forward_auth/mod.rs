//! The forward-auth decision: the same routes and admission phases as the
//! proxy, for a request a proxy in front (nginx `auth_request`, Traefik and
//! Caddy `forward_auth`, Envoy `ext_authz`) asks about. Request parts in,
//! a `Verdict` out; the HTTP adapter on the admin listener answers it as
//! the three proxies expect (allowed is exactly 200 with an empty body).

mod answer;
mod original;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use keygate_core::clients::PeerCertificate;
use keygate_core::jwt::claims::scope_text;
use keygate_core::keys::apikey::KeyId;
use keygate_core::model::Tenant;
use keygate_core::users::model::Role;

use super::Gateway;
use super::admission::Admitted;
use super::config::Route;
use super::identity::Identity;
use super::refusal::Refusal;
use super::request::{AuthInput, NoRoute, choose};
pub use crate::client_cert::{
    ForwardAuthConfigError, ForwardAuthFile, ProxyCertError, ProxyCertFormat, ProxyCertHeader,
    from_proxy,
};
pub use original::{JudgedUri, Original, judge_uri};

pub const PATH: &str = "/v1/forward-auth";

/// Why the original request cannot be judged; always a 403, never a 404 or
/// 405, which nginx would turn into a 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unjudgeable {
    /// A header that must be one came twice.
    AmbiguousOriginal,
    /// The method, URI or host is not text or not well formed.
    InvalidOriginal,
    /// A path the upstream could read two ways.
    InvalidPath,
    /// The URI's authority is not the forwarded host.
    AuthorityMismatch,
    /// A trusted proxy's client certificate header cannot be read
    /// (`[forward_auth] client_cert_header`).
    ClientCertHeader(ProxyCertError),
    NoRoute(NoRoute),
}

impl Unjudgeable {
    pub fn code(self) -> &'static str {
        match self {
            Unjudgeable::AmbiguousOriginal => "ambiguous_original",
            Unjudgeable::InvalidOriginal => "invalid_original",
            Unjudgeable::InvalidPath => "invalid_path",
            Unjudgeable::AuthorityMismatch => "authority_mismatch",
            Unjudgeable::ClientCertHeader(_) => "invalid_client_cert_header",
            Unjudgeable::NoRoute(why) => why.code(),
        }
    }

    pub fn detail(self) -> &'static str {
        match self {
            Unjudgeable::NoRoute(NoRoute::NotFound | NoRoute::MethodNotAllowed) => {
                "no gateway route allows this request"
            }
            Unjudgeable::NoRoute(NoRoute::PathParams) => {
                "this route does not accept `;` parameters in path segments"
            }
            Unjudgeable::AuthorityMismatch => "the original URI's host is not the forwarded host",
            Unjudgeable::ClientCertHeader(why) => why.detail(),
            _ => "the original request's method, URI or host cannot be judged",
        }
    }
}

/// What forward-auth answers.
pub enum Verdict {
    /// The headers to answer 200 with: the identity, the internal token
    /// and the route's RateLimit fields.
    Allow {
        headers: Box<HeaderMap>,
        identity: Identity,
    },
    Refuse(Refusal),
    Unjudgeable(Unjudgeable),
    /// Keygate could not finish (the internal token): no decision.
    Failed(keygate_core::Error),
}

/// A verdict, with what the log phase records of it.
pub struct Decided {
    /// The route that judged the request, when one did.
    pub route: Option<Arc<Route>>,
    /// The original method once it was read, else the subrequest's.
    pub method: Method,
    pub verdict: Verdict,
    /// The client certificate a trusted proxy passed, when it passed one.
    pub certificate: Option<PeerCertificate>,
}

/// Judges the original request the subrequest `req` describes; `peer` is
/// the proxy's address, behind which `trusted_proxies` may name a client.
pub async fn decide(gateway: &Gateway, req: &Parts, peer: Option<SocketAddr>) -> Decided {
    decide_with(gateway, req, peer, ClientCert::FromHeader, None).await
}

/// Where the client's certificate comes from.
pub enum ClientCert {
    /// The header `[forward_auth] client_cert_header` names, read only
    /// when `peer` is a trusted proxy (the HTTP adapter).
    FromHeader,
    /// Read by the adapter from its own protocol, from a caller it has
    /// already checked against `trusted_proxies` (ext_authz: Envoy's
    /// `source.certificate`); headers are not consulted.
    Given(Option<PeerCertificate>),
}

/// As [`decide`], with the client certificate taken as `cert` says, and
/// the route named by `route` when the adapter's protocol names one (the
/// proxy's configuration, as `?route=` is over HTTP: ext_authz's
/// `context_extensions`), over any the request names.
pub async fn decide_with(
    gateway: &Gateway,
    req: &Parts,
    peer: Option<SocketAddr>,
    cert: ClientCert,
    route: Option<String>,
) -> Decided {
    let judged = original::original(req).and_then(|mut orig| {
        if route.is_some() {
            orig.route = route;
        }
        let route = route_for(gateway, &orig)?;
        let certificate = match cert {
            ClientCert::FromHeader => from_proxy(
                &gateway.deps.client_cert_header,
                &gateway.deps.trusted_proxies,
                peer.map(|p| p.ip()),
                &req.headers,
            )
            .map_err(Unjudgeable::ClientCertHeader)?,
            ClientCert::Given(certificate) => certificate,
        };
        Ok((orig, route, certificate))
    });
    let (orig, route, certificate) = match judged {
        Ok(judged) => judged,
        Err(why) => {
            return Decided {
                route: None,
                method: req.method.clone(),
                verdict: Verdict::Unjudgeable(why),
                certificate: None,
            };
        }
    };
    let peer = peer.map(|p| gateway.deps.trusted_proxies.client_ip(p.ip(), &req.headers));
    let peer = peer.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let verdict = admit(gateway, req, &orig, &route, &peer, certificate.as_ref()).await;
    Decided {
        route: Some(route),
        method: orig.method,
        verdict,
        certificate,
    }
}

/// The route phase for forward-auth: the route the proxy named, or the
/// table's choice for the original request.
fn route_for(gateway: &Gateway, orig: &Original) -> Result<Arc<Route>, Unjudgeable> {
    let table = gateway.table();
    match &orig.route {
        Some(name) => table
            .by_name(name)
            .cloned()
            .ok_or(Unjudgeable::NoRoute(NoRoute::NotFound)),
        None => choose(&table, orig.host.as_deref(), &orig.path, &orig.method)
            .map_err(Unjudgeable::NoRoute),
    }
}

/// Authenticate, limit and mint for the original request. The body never
/// comes here: a signed request's signature and its covered
/// `Content-Digest` header are checked, the body against it is not (the
/// proxy forwards it unseen).
async fn admit(
    gateway: &Gateway,
    req: &Parts,
    orig: &Original,
    route: &Route,
    peer: &str,
    certificate: Option<&PeerCertificate>,
) -> Verdict {
    // The original request's scheme is the proxy's to tell, as its method
    // and URI are; this listener's own scheme says nothing about it.
    let scheme = match original::header_text(&req.headers, "x-forwarded-proto") {
        Ok(Some(p)) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    let incoming = AuthInput {
        headers: &req.headers,
        method: orig.method.as_str(),
        scheme,
        authority: orig.host.as_deref(),
        path: &orig.raw_path,
        query: orig.query.as_deref(),
        has_body: original::announces_body(&req.headers),
        certificate,
    };
    let Admitted {
        identity,
        ratelimit,
        pending_digest: _,
    } = match gateway.admit(route, &incoming, peer).await {
        Ok(admitted) => admitted,
        Err(refusal) => return Verdict::Refuse(refusal),
    };
    let token = match gateway.mint(route, &identity) {
        Ok(token) => token,
        Err(e) => return Verdict::Failed(e),
    };
    let mut headers = identity_headers(route, &identity);
    if let Some(bearer) = token {
        headers.insert(header::AUTHORIZATION, bearer);
    }
    if let Some(fields) = ratelimit {
        fields.insert_into(&mut headers);
    }
    Verdict::Allow {
        headers: Box::new(headers),
        identity,
    }
}

/// Every identity header, empty when it does not apply: a proxy that
/// copies the answer's headers onto the request (Envoy) then overwrites
/// one the client forged (`x-keygate-kind: user`) instead of letting it
/// through.
fn identity_headers(route: &Route, identity: &Identity) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let mut put = |name: &'static str, value: Option<&str>| {
        let v = value.and_then(|v| HeaderValue::from_str(v).ok());
        h.insert(name, v.unwrap_or(HeaderValue::from_static("")));
    };
    put("x-keygate-subject", identity.token_subject());
    put("x-keygate-kind", identity.kind.map(|k| k.as_str()));
    put(
        "x-keygate-key-id",
        identity.key_id.as_ref().map(KeyId::as_str),
    );
    put(
        "x-keygate-client-id",
        identity
            .client_id
            .as_ref()
            .map(keygate_core::jwt::ClientRef::as_str),
    );
    put(
        "x-keygate-tenant",
        identity.tenant.as_ref().map(Tenant::as_str),
    );
    let scopes = scope_text(&identity.scopes);
    put(
        "x-keygate-scopes",
        Some(scopes.as_str()).filter(|s| !s.is_empty()),
    );
    let roles: Vec<&str> = identity.roles.iter().map(Role::as_str).collect();
    let roles = roles.join(",");
    put(
        "x-keygate-roles",
        Some(roles.as_str()).filter(|s| !s.is_empty()),
    );
    put("x-keygate-route", Some(route.name.as_str()));
    h
}
