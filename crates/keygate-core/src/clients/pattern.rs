//! Name patterns a client is registered under, and the names they match.
//!
//! Exact names, plus two wildcards that cannot be read two ways:
//!
//! - SPIFFE ID: `spiffe://<trust domain>/<path>/*` matches any ID strictly
//!   below the prefix, in whole path segments: `spiffe://a/ns/*` matches
//!   `spiffe://a/ns/x` and `spiffe://a/ns/x/y`, never `spiffe://a/ns` nor
//!   `spiffe://a/nsx/y`. `*` anywhere else is refused.
//! - DNS: `*.<name>` matches exactly one more leftmost label (RFC 6125):
//!   `*.svc.example` matches `api.svc.example`, not `svc.example` nor
//!   `a.b.svc.example`. The rest must have two labels at least (`*.com` is
//!   refused). Names compare in lowercase.
//! - Subject: exact only, as keygate renders a subject (`CN=api, O=Example`:
//!   short attribute names in the certificate's order, `, ` between). A
//!   certificate whose subject values hold `,` `=` `+` `\` or control
//!   characters has no subject name here, so one subject cannot pass for
//!   another.
//!
//! Lookups never scan patterns: a certificate's names expand to the few
//! patterns that could match them (`candidates`), looked up exactly.

use std::fmt;

use crate::error::Error;

const MAX_PATTERN: usize = 2048;

/// Which certificate name a pattern applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NameKind {
    /// A `spiffe://` URI SAN (a SPIFFE X.509-SVID has exactly one).
    SpiffeId,
    /// A DNS SAN.
    Dns,
    /// The subject distinguished name.
    Subject,
}

impl NameKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NameKind::SpiffeId => "spiffe_id",
            NameKind::Dns => "dns",
            NameKind::Subject => "subject",
        }
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "spiffe_id" => Ok(NameKind::SpiffeId),
            "dns" => Ok(NameKind::Dns),
            "subject" => Ok(NameKind::Subject),
            _ => Err(Error::invalid("kind", "one of spiffe_id, dns, subject")),
        }
    }
}

/// A validated pattern of one kind.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NamePattern {
    kind: NameKind,
    text: String,
}

impl fmt::Debug for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.text)
    }
}

fn invalid(kind: NameKind, reason: impl Into<String>) -> Error {
    let field = match kind {
        NameKind::SpiffeId => "spiffe_id",
        NameKind::Dns => "dns",
        NameKind::Subject => "subject",
    };
    Error::invalid(field, reason)
}

impl NamePattern {
    pub fn parse(kind: NameKind, s: &str) -> Result<Self, Error> {
        if s.is_empty() || s.len() > MAX_PATTERN {
            return Err(invalid(kind, format!("must be 1-{MAX_PATTERN} characters")));
        }
        let text = match kind {
            NameKind::SpiffeId => spiffe_pattern(s)?,
            NameKind::Dns => dns_pattern(s)?,
            NameKind::Subject => subject_pattern(s)?,
        };
        Ok(Self { kind, text })
    }

    pub fn kind(&self) -> NameKind {
        self.kind
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_wildcard(&self) -> bool {
        matches!(self.kind, NameKind::SpiffeId | NameKind::Dns) && self.text.contains('*')
    }

    /// Whether `name` (as read from a certificate) matches.
    pub fn matches(&self, name: &str) -> bool {
        candidates(self.kind, name).iter().any(|c| c == &self.text)
    }
}

/// Every pattern that matches `name`, most specific first: the name itself,
/// then its wildcards from the narrowest. Empty when `name` is not a valid
/// name of the kind (such a name matches nothing).
pub fn candidates(kind: NameKind, name: &str) -> Vec<String> {
    match kind {
        NameKind::SpiffeId => spiffe_candidates(name),
        NameKind::Dns => dns_candidates(name),
        NameKind::Subject => subject_pattern(name).map(|s| vec![s]).unwrap_or_default(),
    }
}

/// `(trust domain, path segments)` of a SPIFFE ID, or why it is not one.
fn spiffe_parts(s: &str) -> Result<(&str, Vec<&str>), &'static str> {
    let rest = s
        .strip_prefix("spiffe://")
        .ok_or("a SPIFFE ID starts with spiffe://")?;
    let (domain, path) = rest.split_once('/').unwrap_or((rest, ""));
    let domain_ok = !domain.is_empty()
        && domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b));
    if !domain_ok {
        return Err("the trust domain is lowercase letters, digits, - . _");
    }
    if rest.len() > domain.len() && path.is_empty() {
        return Err("no trailing /");
    }
    let segments: Vec<&str> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('/').collect()
    };
    for seg in &segments {
        let ok = !seg.is_empty()
            && *seg != "."
            && *seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
        if !ok {
            return Err("path segments are non-empty letters, digits, - . _ (not . or ..)");
        }
    }
    Ok((domain, segments))
}

fn spiffe_pattern(s: &str) -> Result<String, Error> {
    let kind = NameKind::SpiffeId;
    let (id, wildcard) = match s.strip_suffix("/*") {
        Some(prefix) => (prefix, true),
        None => (s, false),
    };
    if id.contains('*') {
        return Err(invalid(
            kind,
            "* is allowed only as the whole last segment: .../*",
        ));
    }
    spiffe_parts(id).map_err(|r| invalid(kind, r))?;
    Ok(if wildcard {
        format!("{id}/*")
    } else {
        id.to_owned()
    })
}

fn spiffe_candidates(name: &str) -> Vec<String> {
    let Ok((domain, segments)) = spiffe_parts(name) else {
        return Vec::new();
    };
    let mut out = vec![name.to_owned()];
    // Narrowest first: the parent of the last segment, up to the domain.
    for k in (0..segments.len()).rev() {
        let mut p = format!("spiffe://{domain}");
        for seg in &segments[..k] {
            p.push('/');
            p.push_str(seg);
        }
        p.push_str("/*");
        out.push(p);
    }
    out
}

/// The lowercase labels of a DNS name, or why it is not one.
fn dns_labels(s: &str) -> Result<Vec<String>, &'static str> {
    if s.len() > 253 {
        return Err("a DNS name is at most 253 characters");
    }
    let lower = s.to_ascii_lowercase();
    let labels: Vec<String> = lower.split('.').map(str::to_owned).collect();
    for l in &labels {
        let ok = !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err("labels are 1-63 letters, digits or -, not starting or ending with -");
        }
    }
    Ok(labels)
}

fn dns_pattern(s: &str) -> Result<String, Error> {
    let kind = NameKind::Dns;
    let (rest, wildcard) = match s.strip_prefix("*.") {
        Some(rest) => (rest, true),
        None => (s, false),
    };
    if rest.contains('*') {
        return Err(invalid(
            kind,
            "* is allowed only as the whole leftmost label: *.example.com",
        ));
    }
    let labels = dns_labels(rest).map_err(|r| invalid(kind, r))?;
    if wildcard && labels.len() < 2 {
        return Err(invalid(
            kind,
            "a wildcard needs two labels after it at least (*.example.com)",
        ));
    }
    let name = labels.join(".");
    Ok(if wildcard { format!("*.{name}") } else { name })
}

fn dns_candidates(name: &str) -> Vec<String> {
    let Ok(labels) = dns_labels(name) else {
        return Vec::new();
    };
    let mut out = vec![labels.join(".")];
    if labels.len() >= 3 {
        out.push(format!("*.{}", labels[1..].join(".")));
    }
    out
}

/// Subjects compare as written, once they are free of characters that
/// could make two renderings read the same.
fn subject_pattern(s: &str) -> Result<String, Error> {
    let kind = NameKind::Subject;
    let mut any = false;
    for part in s.split(", ") {
        let Some((attr, value)) = part.split_once('=') else {
            return Err(invalid(
                kind,
                "a subject reads ATTR=value, ATTR=value (e.g. CN=api, O=Example)",
            ));
        };
        let attr_ok =
            !attr.is_empty() && attr.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.');
        let value_ok = !value.is_empty()
            && !value
                .chars()
                .any(|c| c.is_control() || ",=+\\*".contains(c));
        if !attr_ok || !value_ok {
            return Err(invalid(
                kind,
                "values may not hold , = + \\ * or control characters (no wildcards in subjects)",
            ));
        }
        any = true;
    }
    if !any {
        return Err(invalid(kind, "must not be empty"));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(kind: NameKind, s: &str) -> NamePattern {
        NamePattern::parse(kind, s).unwrap()
    }

    #[test]
    fn a_spiffe_wildcard_matches_whole_segments_below_its_prefix() {
        let w = p(NameKind::SpiffeId, "spiffe://a/ns/*");
        assert!(w.is_wildcard());
        assert!(w.matches("spiffe://a/ns/x"));
        assert!(w.matches("spiffe://a/ns/x/y"));
        assert!(!w.matches("spiffe://a/ns"));
        assert!(!w.matches("spiffe://a/nsx/y"));
        assert!(!w.matches("spiffe://a/nsx"));
        assert!(!w.matches("spiffe://b/ns/x"));
        assert!(!w.matches("spiffe://a/ns/"));
        assert!(!w.matches("spiffe://a/ns/../x"));
        assert!(p(NameKind::SpiffeId, "spiffe://a/*").matches("spiffe://a/x"));
        assert!(!p(NameKind::SpiffeId, "spiffe://a/*").matches("spiffe://a"));
    }

    #[test]
    fn an_exact_spiffe_id_matches_only_itself() {
        let e = p(NameKind::SpiffeId, "spiffe://a/ns/api");
        assert!(!e.is_wildcard());
        assert!(e.matches("spiffe://a/ns/api"));
        assert!(!e.matches("spiffe://a/ns/api/x"));
        assert!(!e.matches("spiffe://a/ns/apix"));
    }

    #[test]
    fn ambiguous_or_malformed_spiffe_patterns_are_refused() {
        for bad in [
            "spiffe://a/ns*",
            "spiffe://a/*/x",
            "spiffe://a/ns/**",
            "spiffe://*/x",
            "spiffe://a/ns/",
            "spiffe://a//x",
            "spiffe://a/./x",
            "spiffe://a/../x",
            "spiffe://A/x",
            "spiffe://",
            "https://a/x",
            "spiffe://a/x?y",
        ] {
            assert!(
                NamePattern::parse(NameKind::SpiffeId, bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_dns_wildcard_matches_one_leftmost_label() {
        let w = p(NameKind::Dns, "*.svc.Example");
        assert_eq!(w.as_str(), "*.svc.example");
        assert!(w.matches("api.svc.example"));
        assert!(w.matches("API.SVC.example"));
        assert!(!w.matches("svc.example"));
        assert!(!w.matches("a.b.svc.example"));
        assert!(!w.matches("apisvc.example"));
        assert!(p(NameKind::Dns, "api.example").matches("Api.Example"));
    }

    #[test]
    fn ambiguous_or_malformed_dns_patterns_are_refused() {
        for bad in [
            "*.com",
            "*",
            "a*.example.com",
            "*.*.example.com",
            "api.*.com",
            "-a.example",
            "a..b",
            "a.example.",
        ] {
            assert!(NamePattern::parse(NameKind::Dns, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subjects_match_exactly_and_refuse_what_could_be_read_two_ways() {
        let s = p(NameKind::Subject, "CN=api, O=Example Corp");
        assert!(s.matches("CN=api, O=Example Corp"));
        assert!(!s.matches("CN=api, O=Example"));
        assert!(!s.matches("CN=api"));
        for bad in ["CN=a*", "CN=a,b", "CN=", "api", "CN=a\\, O=b", "CN=a+OU=b"] {
            assert!(NamePattern::parse(NameKind::Subject, bad).is_err(), "{bad}");
        }
    }
}
