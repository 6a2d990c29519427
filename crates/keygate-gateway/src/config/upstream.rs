//! A route's `upstream` URL and, for https, whom it trusts: the route's
//! `upstream_ca_file`, else the section's, else the system's roots; or no
//! check at all (`upstream_tls_verify = false`), on loopback only.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::http::{HeaderValue, Uri};

use super::{RouteFile, Upstream};
use crate::upstream::Endpoint;
use crate::upstream::tls::{Trust, Trusts};

/// The section's TLS default, checked once for every route.
pub(super) struct GatewayCa {
    pub file: Option<PathBuf>,
    /// It failed to load (reported once, at `gateway.upstream_ca_file`).
    pub broken: bool,
}

/// The route's upstream; None when anything was wrong (every problem is
/// pushed to `err`, with the setting it belongs to).
pub(super) fn parse(
    r: &RouteFile,
    ca: &GatewayCa,
    trusts: &mut Trusts,
    err: &mut impl FnMut(String),
) -> Option<Upstream> {
    let url = parse_url(&r.upstream)
        .map_err(|msg| err(format!("upstream: {msg}")))
        .ok();
    let https = url.as_ref().is_some_and(|u| u.https);
    let trust = trust_of(r, https, url.as_ref().map(|u| u.host.as_str()), ca, err)?;
    let url = url?;
    let endpoint = match trust {
        None => Endpoint::plain(url.address),
        Some(Trust::Bundle(_)) if ca.broken && r.upstream_ca_file.is_none() => return None,
        Some(trust) => match trusts.connect(&url.host, &trust) {
            Ok(tls) => Endpoint::tls(url.address, tls),
            Err(msg) => {
                let at = if r.upstream_ca_file.is_some() {
                    "upstream_ca_file"
                } else {
                    "upstream"
                };
                err(format!("{at}: {msg}"));
                return None;
            }
        },
    };
    Some(Upstream {
        authority: url.authority,
        scheme: if https { "https" } else { "http" },
        endpoint,
        host_header: url.host_header,
        base_path: url.base_path,
    })
}

/// Whom an https upstream's certificate must chain to; None for http.
fn trust_of(
    r: &RouteFile,
    https: bool,
    host: Option<&str>,
    ca: &GatewayCa,
    err: &mut impl FnMut(String),
) -> Option<Option<Trust>> {
    if !https {
        let mut ok = true;
        for (set, name) in [
            (r.upstream_ca_file.is_some(), "upstream_ca_file"),
            (r.upstream_tls_verify.is_some(), "upstream_tls_verify"),
        ] {
            if set && host.is_some() {
                err(format!("{name}: only for an https upstream"));
                ok = false;
            }
        }
        return ok.then_some(None);
    }
    if r.upstream_tls_verify != Some(false) {
        let file = r.upstream_ca_file.clone().or_else(|| ca.file.clone());
        return Some(Some(file.map_or(Trust::System, Trust::Bundle)));
    }
    let mut ok = true;
    if !host.is_some_and(is_loopback) {
        err(
            "upstream_tls_verify: false is allowed only for a loopback upstream \
             (localhost, 127.0.0.0/8, ::1): elsewhere anyone on the path could answer"
                .into(),
        );
        ok = false;
    }
    if r.upstream_ca_file.is_some() {
        err("upstream_ca_file: unused with upstream_tls_verify = false; remove one".into());
        ok = false;
    }
    ok.then_some(Some(Trust::Unverified))
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// An upstream URL taken apart.
struct Url {
    https: bool,
    authority: String,
    /// As the URL spells it (an IPv6 address in brackets).
    host: String,
    address: Arc<str>,
    host_header: HeaderValue,
    base_path: String,
}

fn parse_url(text: &str) -> Result<Url, String> {
    if text.contains('@') {
        // Not quoted: the part before `@` may be a password.
        return Err("the URL must not carry a user name or password".into());
    }
    let uri: Uri = text
        .parse()
        .map_err(|_| format!("{text:?} is not a URL such as http://127.0.0.1:9001"))?;
    let (https, default_port) = match uri.scheme_str() {
        Some("http") => (false, 80),
        Some("https") => (true, 443),
        _ => return Err(format!("{text:?} must start with http:// or https://")),
    };
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .filter(|a| !a.is_empty() && !a.contains('@'))
        .ok_or_else(|| format!("{text:?} needs a host (and no user name or password)"))?;
    if uri.query().is_some() || text.contains('#') {
        return Err(format!("{text:?} must not carry a query or fragment"));
    }
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().unwrap_or(default_port);
    // As an HTTP client would send it: the scheme's default port left out.
    let host_header = if port == default_port {
        HeaderValue::from_str(host)
    } else {
        HeaderValue::from_str(&authority)
    }
    .map_err(|_| format!("{text:?} has a host that cannot be sent in a Host header"))?;
    Ok(Url {
        https,
        address: Arc::from(format!("{host}:{port}")),
        host: host.to_owned(),
        authority,
        host_header,
        base_path: uri.path().trim_end_matches('/').to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_upstream_without_a_port_is_reached_on_its_schemes() {
        for (url, address, host) in [
            (
                "http://backend.internal/v1",
                "backend.internal:80",
                "backend.internal",
            ),
            ("http://[::1]:9001", "[::1]:9001", "[::1]:9001"),
            ("http://[::1]", "[::1]:80", "[::1]"),
            ("http://backend:80/", "backend:80", "backend"),
            ("https://backend", "backend:443", "backend"),
            ("https://backend:443", "backend:443", "backend"),
            ("https://backend:8443", "backend:8443", "backend:8443"),
        ] {
            let u = parse_url(url).unwrap();
            assert_eq!(&*u.address, address, "{url}");
            assert_eq!(u.host_header, host, "{url}");
        }
    }

    #[test]
    fn loopback_is_localhost_or_a_loopback_address() {
        for host in ["localhost", "LOCALHOST", "127.0.0.1", "127.8.0.1", "[::1]"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "localhost.example",
            "10.0.0.1",
            "[::2]",
            "backend",
            "0.0.0.0",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    fn route(upstream: &str, extra: &str) -> String {
        format!(
            "[[gateway.routes]]\nname = \"r\"\nmatch = {{ path_prefix = \"/\" }}\n\
             upstream = \"{upstream}\"\nauth = \"none\"\n{extra}\n"
        )
    }

    fn parsed(text: &str) -> Result<crate::config::GatewayConfig, String> {
        crate::config::parse_text(&format!("[gateway]\n{text}"))
            .map(Option::unwrap)
            .map_err(|e| e.join("\n"))
    }

    #[test]
    fn skipping_verification_is_refused_unless_the_upstream_is_loopback() {
        for host in ["backend.internal", "10.0.0.5", "localhost.example"] {
            let err = parsed(&route(
                &format!("https://{host}:8443"),
                "upstream_tls_verify = false",
            ))
            .unwrap_err();
            assert!(
                err.contains("upstream_tls_verify: false is allowed only for a loopback upstream"),
                "{host}: {err}"
            );
        }
        for host in ["localhost", "127.0.0.1", "[::1]"] {
            let cfg = parsed(&route(
                &format!("https://{host}:8443"),
                "upstream_tls_verify = false",
            ))
            .unwrap();
            let up = &cfg.routes[0].upstream;
            assert_eq!(up.scheme, "https");
            assert!(up.endpoint.is_tls(), "{host}");
        }
    }

    #[test]
    fn tls_settings_fit_only_https_upstreams() {
        for extra in [
            "upstream_tls_verify = true",
            "upstream_ca_file = \"/x.pem\"",
        ] {
            let err = parsed(&route("http://127.0.0.1:9", extra)).unwrap_err();
            assert!(err.contains("only for an https upstream"), "{extra}: {err}");
        }
        let err = parsed(&route(
            "https://127.0.0.1:9",
            "upstream_tls_verify = false\nupstream_ca_file = \"/x.pem\"",
        ))
        .unwrap_err();
        assert!(err.contains("upstream_ca_file: unused"), "{err}");
    }

    #[test]
    fn a_bundle_that_cannot_load_is_a_configuration_error_naming_it() {
        let missing = "/nonexistent/keygate-ca.pem";
        let err = parsed(&route(
            "https://127.0.0.1:9",
            &format!("upstream_ca_file = \"{missing}\""),
        ))
        .unwrap_err();
        assert!(
            err.contains(&format!(
                "route \"r\": upstream_ca_file: cannot read {missing}"
            )),
            "{err}"
        );
        // The section's bundle is reported once, not with every route.
        let two = format!(
            "upstream_ca_file = \"{missing}\"\n{}{}",
            route("https://127.0.0.1:9", ""),
            route("https://127.0.0.1:10", "")
                .replace("\"r\"", "\"s\"")
                .replace("\"/\"", "\"/s\"")
        );
        let err = parsed(&two).unwrap_err();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("gateway.upstream_ca_file: cannot read"),
            "{err}"
        );
        // An http route does not read the section's bundle.
        assert!(parsed(&route("http://127.0.0.1:9", "")).is_ok());
    }
}
