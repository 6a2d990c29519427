//! Validation of the `[gateway]` section, route by route and field by
//! field, in the order of the file: every problem is reported, each with
//! the route it belongs to.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use keygate_core::jwt::AcceptedKinds;
use keygate_core::model::{RateLimitSpec, Scope};
use keygate_core::ratelimit::Unavailable;

use super::upstream::{self, GatewayCa};
use super::{
    AuthMode, DEFAULT_ROUTE_BODY_LIMIT, DEFAULT_TIMEOUT_SECS, ForwardToken, GatewayConfig,
    GatewayFile, PathParams, Route, RouteFile, RouteRateLimitFile,
};
use crate::upstream::tls::{Trust, Trusts};

/// More threads than any machine keygate runs on has cores: a typo, not
/// a plan.
const MAX_WORKERS: usize = 1024;

/// Checks the whole section and answers every problem found, not the first.
pub fn validate(file: &GatewayFile) -> Result<GatewayConfig, Vec<String>> {
    let mut errors = Vec::new();
    let listen = match &file.listen {
        None => None,
        Some(text) => match text.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                errors.push(format!(
                    "gateway.listen: {text:?} is not an address such as 127.0.0.1:8000"
                ));
                None
            }
        },
    };
    let mut defaults = Defaults {
        timeout: file.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECS),
        body_limit: file.body_limit_bytes.unwrap_or(DEFAULT_ROUTE_BODY_LIMIT),
        ca: GatewayCa {
            file: file.upstream_ca_file.clone(),
            broken: false,
        },
    };
    if !(1..=3600).contains(&defaults.timeout) {
        errors.push("gateway.timeout_seconds: between 1 and 3600".into());
    }
    let workers = file.workers.unwrap_or(0);
    if workers > MAX_WORKERS {
        errors.push(format!(
            "gateway.workers: at most {MAX_WORKERS} (0 or absent: one per core)"
        ));
    }
    let mut seen = Seen::default();
    if let Some(file) = &defaults.ca.file
        && let Err(msg) = seen.trusts.check(&Trust::Bundle(file.clone()))
    {
        errors.push(format!("gateway.upstream_ca_file: {msg}"));
        defaults.ca.broken = true;
    }
    let mut routes = Vec::new();
    for (i, r) in file.routes.iter().enumerate() {
        let mut errs = RouteErrors::new(i, r, &mut errors);
        if let Some(route) = validate_route(r, &defaults, &mut seen, &mut errs) {
            routes.push(route);
        }
    }
    if errors.is_empty() {
        Ok(GatewayConfig {
            listen,
            workers,
            routes,
        })
    } else {
        Err(errors)
    }
}

/// What routes inherit from the section.
struct Defaults {
    timeout: u64,
    body_limit: u64,
    ca: GatewayCa,
}

/// What routes share as validation goes: what must be unique across them
/// (names, and host + prefix + methods), and the TLS trusts built so far.
#[derive(Default)]
struct Seen {
    names: HashSet<String>,
    matchers: HashSet<(Option<String>, String, Option<String>)>,
    trusts: Trusts,
}

/// One route's problems, each prefixed with the route it belongs to.
struct RouteErrors<'a> {
    at: String,
    errors: &'a mut Vec<String>,
    found: bool,
}

impl<'a> RouteErrors<'a> {
    fn new(i: usize, r: &RouteFile, errors: &'a mut Vec<String>) -> Self {
        let at = if r.name.is_empty() {
            format!("gateway.routes[{i}]")
        } else {
            format!("route {:?}", r.name)
        };
        Self {
            at,
            errors,
            found: false,
        }
    }

    fn push(&mut self, msg: String) {
        self.errors.push(format!("{}: {msg}", self.at));
        self.found = true;
    }
}

/// One route, checked field by field in the order of the file; None when
/// anything was wrong (every problem is in `err`).
fn validate_route(
    r: &RouteFile,
    defaults: &Defaults,
    seen: &mut Seen,
    err: &mut RouteErrors<'_>,
) -> Option<Route> {
    check_name(&r.name, &mut seen.names, err);
    let prefix = normalize_prefix(&r.matcher.path_prefix)
        .map_err(|msg| err.push(format!("match.path_prefix: {msg}")))
        .ok();
    let host = parse_host(r.matcher.host.as_deref(), err);
    let methods = parse_methods(r.matcher.methods.as_deref(), err);
    let upstream = upstream::parse(r, &defaults.ca, &mut seen.trusts, &mut |m| err.push(m));
    let auth = parse_auth(&r.auth, err);
    let jwt_subjects = parse_jwt_subjects(r, auth, &mut |m| err.push(m));
    check_audience(r, auth, err);
    let scopes = parse_scopes(&r.scopes, err);
    if let Some(mode) = auth {
        check_mode_fits(r, mode, &scopes, err);
    }
    check_roles(&r.roles, err);
    let limit = parse_rate_limit(r.rate_limit.as_ref(), err);
    let forward_token = parse_forward_token(r.forward_token.as_deref(), err);
    let encryption = parse_encryption(r, forward_token, err);
    let path_params = parse_path_params(r.path_params.as_deref(), err);
    let timeout = check_upstream_limits(r, defaults, err);
    if let Some(p) = &prefix {
        check_matcher_unique(host.clone(), p, methods.as_deref(), seen, err);
    }
    if err.found {
        return None;
    }
    Some(Route {
        name: r.name.clone(),
        host,
        path_prefix: prefix?,
        methods,
        upstream: upstream?,
        auth: auth?,
        jwt_subjects,
        audience: r.audience.clone(),
        scopes,
        roles: r.roles.clone(),
        rate_limit: limit.spec,
        rate_limit_burst: limit.burst,
        on_limiter_unavailable: limit.on_unavailable,
        forward_token: forward_token?,
        strip_prefix: r.strip_prefix,
        timeout: Duration::from_secs(timeout),
        body_limit: r.body_limit_bytes.unwrap_or(defaults.body_limit),
        case_insensitive: r.case_insensitive,
        path_params: path_params?,
        websocket: r.websocket,
        max_connections: r.max_connections,
        hmac_cover_content_headers: r.hmac_cover_content_headers,
        internal_token_encryption: encryption,
        metrics: Arc::default(),
    })
}

/// A route's `audience` applies to the JWTs it takes, and is as long as
/// an audience may be. Whether keygate issues tokens for it is `[jwt]`'s
/// business, which a reload of the routes does not read: a route naming
/// an audience keygate does not issue for admits no JWT.
fn check_audience(r: &RouteFile, auth: Option<AuthMode>, err: &mut RouteErrors<'_>) {
    let Some(audience) = &r.audience else { return };
    if audience.is_empty() || audience.len() > 256 || audience.contains('\0') {
        err.push("audience: 1 to 256 characters".into());
    }
    if auth.is_some_and(|mode| !mode.takes_jwts()) {
        err.push("audience: only for routes that take JWTs".into());
    }
}

/// The route's `internal_token_encryption`, which needs an internal token
/// to encrypt.
fn parse_encryption(
    r: &RouteFile,
    forward_token: Option<ForwardToken>,
    err: &mut RouteErrors<'_>,
) -> Option<Arc<super::TokenEncryption>> {
    let file = r.internal_token_encryption.as_ref()?;
    if forward_token.is_some_and(|f| f != ForwardToken::Internal) {
        err.push("internal_token_encryption: needs forward_token = \"internal\"".into());
        return None;
    }
    super::encryption::parse(file)
        .map_err(|msg| err.push(format!("internal_token_encryption: {msg}")))
        .ok()
}

/// The route's upstream timeout (its own or the section's), and its cap on
/// requests in flight.
fn check_upstream_limits(r: &RouteFile, defaults: &Defaults, err: &mut RouteErrors<'_>) -> u64 {
    let timeout = r.timeout_seconds.unwrap_or(defaults.timeout);
    if !(1..=3600).contains(&timeout) {
        err.push("timeout_seconds: between 1 and 3600".into());
    }
    if r.max_connections == Some(0) {
        err.push("max_connections: at least 1".into());
    }
    timeout
}

fn check_name(name: &str, names: &mut HashSet<String>, err: &mut RouteErrors<'_>) {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        err.push("name: 1-64 letters, digits or - _ . (it becomes the internal token's audience and a metric label)".into());
    } else if !names.insert(name.to_owned()) {
        err.push("name: another route has the same name".into());
    }
}

/// Lower case; no port and no scheme.
fn parse_host(host: Option<&str>, err: &mut RouteErrors<'_>) -> Option<String> {
    let host = host.map(str::to_ascii_lowercase);
    if let Some(h) = &host
        && (h.is_empty() || h.contains(['/', ' ', ':']))
    {
        err.push(format!(
            "match.host: {h:?} is not a host name (no port, no scheme)"
        ));
    }
    host
}

fn parse_methods(list: Option<&[String]>, err: &mut RouteErrors<'_>) -> Option<Vec<Method>> {
    match list {
        None => None,
        Some([]) => {
            err.push("match.methods: leave it out to allow every method, or list some".into());
            None
        }
        Some(list) => {
            let mut out = Vec::new();
            for m in list {
                match Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
                    Ok(method) => out.push(method),
                    Err(_) => err.push(format!("match.methods: {m:?} is not an HTTP method")),
                }
            }
            Some(out)
        }
    }
}

fn parse_auth(text: &str, err: &mut RouteErrors<'_>) -> Option<AuthMode> {
    match text {
        "api_key" => Some(AuthMode::ApiKey),
        "jwt" => Some(AuthMode::Jwt),
        "api_key_or_jwt" => Some(AuthMode::ApiKeyOrJwt),
        "api_key_and_jwt" => Some(AuthMode::ApiKeyAndJwt),
        "none" => Some(AuthMode::None),
        "hmac" => Some(AuthMode::Hmac),
        "mtls" => Some(AuthMode::Mtls),
        "mtls_and_jwt" => Some(AuthMode::MtlsAndJwt),
        other => {
            err.push(format!(
                "auth: {other:?} is not one of api_key, jwt, api_key_or_jwt, api_key_and_jwt, hmac, none"
            ));
            None
        }
    }
}

fn parse_scopes(list: &[String], err: &mut RouteErrors<'_>) -> Vec<Scope> {
    let mut scopes = Vec::new();
    for s in list {
        match Scope::parse(s) {
            Ok(scope) => scopes.push(scope),
            Err(e) => err.push(format!("scopes: {e}")),
        }
    }
    scopes
}

/// Settings that only some auth modes read: set on another, they would
/// look like protection that is never applied.
fn check_mode_fits(r: &RouteFile, mode: AuthMode, scopes: &[Scope], err: &mut RouteErrors<'_>) {
    if !scopes.is_empty() && !mode.takes_keys() {
        err.push(format!(
            "scopes: a {} route takes no API key, so its scopes could never be checked; \
             use roles for JWTs, or an auth mode with api_key",
            mode.as_str()
        ));
    }
    if !r.roles.is_empty() && !mode.takes_jwts() {
        err.push(format!(
            "roles: a {} route takes no JWT, so its roles could never be checked",
            mode.as_str()
        ));
    }
    if r.hmac_cover_content_headers.is_some() && mode != AuthMode::Hmac {
        err.push(format!(
            "hmac_cover_content_headers: a {} route takes no signature",
            mode.as_str()
        ));
    }
}

fn check_roles(roles: &[String], err: &mut RouteErrors<'_>) {
    for role in roles {
        if role.is_empty() || role.len() > 64 || role.chars().any(|c| c.is_control() || c == ',') {
            err.push(format!("roles: {role:?} is not a role name"));
        }
    }
}

/// A route's rate limit as validated.
struct RouteLimit {
    spec: Option<RateLimitSpec>,
    burst: u32,
    on_unavailable: Option<Unavailable>,
}

fn parse_rate_limit(file: Option<&RouteRateLimitFile>, err: &mut RouteErrors<'_>) -> RouteLimit {
    let spec = file.map(|f| RateLimitSpec {
        limit: f.limit,
        period_seconds: f.period_seconds,
    });
    if let Some(spec) = spec
        && let Err(e) = spec.validate()
    {
        err.push(format!("{e}"));
    }
    let burst = file.and_then(|f| f.burst);
    if let (Some(b), Some(spec)) = (burst, spec)
        && (b == 0 || b > spec.limit)
    {
        err.push(format!(
            "rate_limit.burst: {b} must be between 1 and the limit ({})",
            spec.limit
        ));
    }
    let on_unavailable = file.and_then(|f| f.on_limiter_unavailable.as_deref());
    let parsed = on_unavailable.and_then(Unavailable::parse);
    if let (Some(v), None) = (on_unavailable, parsed) {
        err.push(format!(
            "rate_limit.on_limiter_unavailable: {v:?} is not one of local_share, deny, allow"
        ));
    }
    RouteLimit {
        spec,
        burst: burst.or(spec.map(|s| s.limit)).unwrap_or(1),
        on_unavailable: parsed,
    }
}

fn parse_forward_token(text: Option<&str>, err: &mut RouteErrors<'_>) -> Option<ForwardToken> {
    match text.unwrap_or("internal") {
        "internal" => Some(ForwardToken::Internal),
        "passthrough" => Some(ForwardToken::Passthrough),
        "none" => Some(ForwardToken::None),
        other => {
            err.push(format!(
                "forward_token: {other:?} is not one of internal, passthrough, none"
            ));
            None
        }
    }
}

fn parse_path_params(text: Option<&str>, err: &mut RouteErrors<'_>) -> Option<PathParams> {
    match text.unwrap_or("refuse") {
        "refuse" => Some(PathParams::Refuse),
        "keep" => Some(PathParams::Keep),
        other => {
            err.push(format!("path_params: {other:?} is not one of refuse, keep"));
            None
        }
    }
}

/// Two routes with the same host, prefix and methods: the second could
/// never be chosen.
fn check_matcher_unique(
    host: Option<String>,
    prefix: &str,
    methods: Option<&[Method]>,
    seen: &mut Seen,
    err: &mut RouteErrors<'_>,
) {
    let methods_key = methods.map(|m| {
        let mut v: Vec<String> = m.iter().map(ToString::to_string).collect();
        v.sort();
        v.join(",")
    });
    if !seen.matchers.insert((host, prefix.to_owned(), methods_key)) {
        err.push(format!(
            "match: another route already matches the same host, prefix {prefix:?} and methods"
        ));
    }
}

/// `jwt_subjects`: meaningful only where a JWT is read. The user half of
/// `api_key_and_jwt` names the user, so only `users` fits it.
fn parse_jwt_subjects(
    r: &RouteFile,
    auth: Option<AuthMode>,
    err: &mut impl FnMut(String),
) -> AcceptedKinds {
    let Some(text) = r.jwt_subjects.as_deref() else {
        return AcceptedKinds::Users;
    };
    let Some(kinds) = AcceptedKinds::parse(text) else {
        err(format!(
            "jwt_subjects: {text:?} is not one of users, clients, any"
        ));
        return AcceptedKinds::Users;
    };
    match auth {
        Some(mode) if !mode.takes_jwts() => err(format!(
            "jwt_subjects: a {} route takes no JWT",
            mode.as_str()
        )),
        Some(mode @ (AuthMode::ApiKeyAndJwt | AuthMode::MtlsAndJwt))
            if kinds != AcceptedKinds::Users =>
        {
            err(format!(
                "jwt_subjects: the JWT of {} names the user; only \"users\" fits",
                mode.as_str()
            ))
        }
        _ => {}
    }
    kinds
}

/// A prefix is matched against normalized paths, so it must be one itself
/// (`/%61dmin` is stored as `/admin`); `;params` and wildcards are refused.
fn normalize_prefix(prefix: &str) -> Result<String, String> {
    if prefix.is_empty() {
        return Err("must not be empty; use \"/\" to match every path".into());
    }
    if prefix.contains(['?', '#', ' ', '*', ';']) || prefix.contains("//") {
        return Err(format!(
            "{prefix:?} is a plain path (no query, wildcard, `;params` or empty segment)"
        ));
    }
    let normal =
        crate::path::normalize(prefix).map_err(|e| format!("{prefix:?}: {}", e.detail()))?;
    let trimmed = normal.full().trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::parse_text;

    fn errors(text: &str) -> Vec<String> {
        parse_text(text).unwrap_err()
    }

    #[test]
    fn workers_default_to_one_per_core_and_a_typo_is_refused() {
        let workers = |line: &str| parse_text(&format!("[gateway]\n{line}\n"));
        assert_eq!(workers("").unwrap().unwrap().workers, 0);
        assert_eq!(workers("workers = 3").unwrap().unwrap().workers, 3);
        let e = workers("workers = 100000").unwrap_err();
        assert!(e[0].starts_with("gateway.workers"), "{e:?}");
    }

    #[test]
    fn a_full_route_parses() {
        let cfg = parse_text(
            r#"
            [gateway]
            listen = "127.0.0.1:0"
            [[gateway.routes]]
            name = "orders"
            match = { path_prefix = "/orders/", methods = ["get", "POST"], host = "API.example" }
            upstream = "http://127.0.0.1:9001/base/"
            auth = "api_key_and_jwt"
            scopes = ["orders:read"]
            roles = ["customer"]
            rate_limit = { limit = 100, period_seconds = 60 }
            "#,
        )
        .unwrap()
        .unwrap();
        let r = &cfg.routes[0];
        assert_eq!(r.path_prefix, "/orders");
        assert_eq!(r.host.as_deref(), Some("api.example"));
        assert_eq!(r.upstream.base_path, "/base");
        assert_eq!(&*r.upstream.endpoint.address, "127.0.0.1:9001");
        assert_eq!(r.upstream.host_header, "127.0.0.1:9001");
        assert_eq!(r.forward_token, ForwardToken::Internal);
        assert_eq!(r.timeout, Duration::from_secs(30));
    }

    #[test]
    fn jwt_subjects_default_to_users_and_fit_only_jwt_modes() {
        let route = |auth: &str, subjects: Option<&str>| {
            let line = subjects.map_or(String::new(), |s| format!("jwt_subjects = \"{s}\""));
            format!(
                "[gateway]\n[[gateway.routes]]\nname = \"r\"\nmatch = {{ path_prefix = \"/\" }}\n\
                 upstream = \"http://127.0.0.1:1\"\nauth = \"{auth}\"\n{line}\n"
            )
        };
        let kinds = |auth: &str, subjects: Option<&str>| {
            parse_text(&route(auth, subjects)).unwrap().unwrap().routes[0].jwt_subjects
        };
        assert_eq!(kinds("jwt", None), AcceptedKinds::Users);
        assert_eq!(kinds("jwt", Some("clients")), AcceptedKinds::Clients);
        assert_eq!(kinds("api_key_or_jwt", Some("any")), AcceptedKinds::Any);
        assert_eq!(
            kinds("api_key_and_jwt", Some("users")),
            AcceptedKinds::Users
        );
        assert_eq!(kinds("mtls_and_jwt", None), AcceptedKinds::Users);
        let mtls = parse_text(&route("mtls", None)).unwrap().unwrap();
        assert_eq!(mtls.routes[0].auth, AuthMode::Mtls);
        assert!(mtls.routes[0].auth.takes_certificates() && mtls.routes[0].auth.takes_keys());
        for (auth, subjects, needle) in [
            ("jwt", "everyone", "is not one of users, clients, any"),
            ("api_key", "any", "a api_key route takes no JWT"),
            ("api_key_and_jwt", "clients", "only \"users\" fits"),
            (
                "mtls_and_jwt",
                "any",
                "the JWT of mtls_and_jwt names the user",
            ),
            ("mtls", "clients", "a mtls route takes no JWT"),
        ] {
            let all = errors(&route(auth, Some(subjects))).join("\n");
            assert!(all.contains(needle), "{auth} {subjects}: {all}");
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_route() {
        let errs = errors(
            r#"
            [gateway]
            [[gateway.routes]]
            name = "a"
            match = { path_prefix = "" }
            upstream = "ftp://x"
            auth = "magic"
            [[gateway.routes]]
            name = "a"
            match = { path_prefix = "/a" }
            upstream = "http://127.0.0.1:1"
            auth = "jwt"
            scopes = ["x"]
            "#,
        );
        let all = errs.join("\n");
        for needle in [
            "route \"a\": match.path_prefix: must not be empty",
            "route \"a\": upstream: \"ftp://x\" must start with http:// or https://",
            "route \"a\": auth: \"magic\" is not one of",
            "route \"a\": name: another route has the same name",
            "route \"a\": scopes: a jwt route takes no API key",
        ] {
            assert!(all.contains(needle), "{needle} not in\n{all}");
        }
    }

    #[test]
    fn hmac_routes_take_scopes_and_limits_but_no_roles() {
        let route = |extra: &str| {
            format!(
                "[gateway]\n[[gateway.routes]]\nname = \"signed\"\nmatch = {{ path_prefix = \"/s\" }}\nupstream = \"http://h:1\"\nauth = \"hmac\"\n{extra}"
            )
        };
        let cfg = parse_text(&route(
            "scopes = [\"orders:write\"]\nrate_limit = { limit = 5, period_seconds = 60 }\n",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(cfg.routes[0].auth, AuthMode::Hmac);
        assert_eq!(cfg.routes[0].scopes[0].as_str(), "orders:write");
        let errs = errors(&route("roles = [\"customer\"]\n"));
        assert!(
            errs[0].contains("roles: a hmac route takes no JWT"),
            "{errs:?}"
        );
    }

    #[test]
    fn syntax_errors_do_not_quote_the_file() {
        let errs = errors("pepper = \"s3cr3t-pepper-value\" oops\n[gateway]\n");
        assert!(errs[0].contains("line 1"), "{errs:?}");
        assert!(!errs[0].contains("s3cr3t"), "{errs:?}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let errs = errors(
            "[gateway]\n[[gateway.routes]]\nname = \"a\"\nmatch = { path_prefix = \"/\" }\nupstream = \"http://h:1\"\nauth = \"none\"\nscope = [\"x\"]\n",
        );
        assert!(errs[0].contains("unknown field `scope`"), "{errs:?}");
    }

    #[test]
    fn a_rate_limit_burst_defaults_to_the_limit_and_is_bounded() {
        let route = |limit: &str| {
            format!(
                "[gateway]\n[[gateway.routes]]\nname = \"a\"\nmatch = {{ path_prefix = \"/\" }}\n\
                 upstream = \"http://h:1\"\nauth = \"api_key\"\nrate_limit = {limit}\n"
            )
        };
        let parsed = |limit: &str| parse_text(&route(limit)).unwrap().unwrap().routes[0].clone();
        assert_eq!(
            parsed("{ limit = 100, period_seconds = 60 }").rate_limit_burst,
            100
        );
        assert_eq!(
            parsed("{ limit = 100, period_seconds = 60, burst = 1 }").rate_limit_burst,
            1
        );
        for bad in ["0", "101"] {
            let errs = errors(&route(&format!(
                "{{ limit = 100, period_seconds = 60, burst = {bad} }}"
            )));
            assert!(errs.iter().any(|e| e.contains("burst")), "{errs:?}");
        }
    }

    #[test]
    fn on_limiter_unavailable_is_one_of_three_policies() {
        let route = |extra: &str| {
            format!(
                "[gateway]\n[[gateway.routes]]\nname = \"a\"\nmatch = {{ path_prefix = \"/\" }}\n\
                 upstream = \"http://h:1\"\nauth = \"api_key\"\n\
                 rate_limit = {{ limit = 10, period_seconds = 60{extra} }}\n"
            )
        };
        let parsed = |extra: &str| {
            parse_text(&route(extra)).unwrap().unwrap().routes[0].on_limiter_unavailable
        };
        assert_eq!(parsed(""), None);
        assert_eq!(
            parsed(", on_limiter_unavailable = \"deny\""),
            Some(Unavailable::Deny)
        );
        assert_eq!(
            parsed(", on_limiter_unavailable = \"allow\""),
            Some(Unavailable::Allow)
        );
        assert_eq!(
            parsed(", on_limiter_unavailable = \"local_share\""),
            Some(Unavailable::LocalShare)
        );
        let errs = errors(&route(", on_limiter_unavailable = \"open\""));
        assert!(
            errs.iter().any(|e| e.contains("on_limiter_unavailable")),
            "{errs:?}"
        );
    }
}
