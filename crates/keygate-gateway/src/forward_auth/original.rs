//! The request a proxy asks forward-auth about, read from the subrequest:
//! nginx's `X-Original-URI` / `X-Original-Method`, Traefik's and Caddy's
//! `X-Forwarded-Uri` / `X-Forwarded-Method`, Envoy's request line under
//! our path. What cannot be read one way only is refused, never guessed.
//!
//! The original URI may carry credential-looking query parameters: keygate
//! never takes credentials from a query, so it evaluates the request on its
//! headers as usual, and neither the path nor the query is logged.

use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};

use super::{PATH, Unjudgeable};
use crate::path::{NormalPath, normalize};
use crate::request::same_authority;

/// The request the proxy asks about.
pub struct Original {
    pub method: Method,
    /// As the proxy reports it: what a signature covers.
    pub raw_path: String,
    /// What is judged.
    pub path: NormalPath<'static>,
    /// Without the `?`: only a signed request (`hmac`) reads it.
    pub query: Option<String>,
    pub host: Option<String>,
    /// A route named by the `route` query parameter, overriding the table.
    pub route: Option<String>,
}

/// A header's text: None when absent, refused when present but not text or
/// present twice (an absent header must never stand in for one we could
/// not read).
pub(super) fn header_text<'a>(
    headers: &'a HeaderMap,
    name: &str,
) -> Result<Option<&'a str>, Unjudgeable> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Unjudgeable::AmbiguousOriginal);
    }
    match value.to_str() {
        Ok("") => Ok(None),
        Ok(text) => Ok(Some(text)),
        Err(_) => Err(Unjudgeable::InvalidOriginal),
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
    let parts = split_target(uri).ok_or(Unjudgeable::InvalidOriginal)?;
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
        return Err(Unjudgeable::InvalidPath);
    }
    normalize(raw)
        .map(NormalPath::into_owned)
        .map_err(|_| Unjudgeable::InvalidPath)
}

pub(super) fn original(req: &Parts) -> Result<Original, Unjudgeable> {
    let headers = &req.headers;
    let method_from = |name: &str| -> Result<Option<Method>, Unjudgeable> {
        header_text(headers, name)?
            .map(|m| {
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| Unjudgeable::InvalidOriginal)
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
        _ => Err(Unjudgeable::AuthorityMismatch),
    }
}

/// Whether the original request had a body, as far as its headers tell:
/// a signed one must then cover its `Content-Digest`. Proxies often drop
/// `Content-Length` from the subrequest, so a `Content-Digest` counts too.
pub(super) fn announces_body(headers: &HeaderMap) -> bool {
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
