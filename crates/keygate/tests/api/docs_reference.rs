//! The reference pages stay true of the code. A running server's metric
//! families are exactly those `docs/reference/metrics.md` lists; the error
//! codes written in the source are exactly those `docs/reference/errors.md`
//! lists; and every relative link (and its `#anchor`) in README.md and the
//! Markdown under `docs/` resolves.
//!
//! The codes come from the source, not the OpenAPI document, which names no
//! codes: the calls that build a problem or an OAuth error with a literal
//! code, and the enums whose codes are computed (`SigCode`, `VerifyCode`,
//! ...). When a refactor renames those calls, the scanner stops finding the
//! anchor codes below and the test says so, rather than passing on nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::helpers::{Backend, spawn_app_with_toml};

fn repo() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The backticked names in the first cell of each table row of a page.
fn first_cell_names(page: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in page.lines().filter(|l| l.starts_with("| `")) {
        let cell = line[1..].split('|').next().unwrap_or("");
        for (i, part) in cell.split('`').enumerate() {
            if i % 2 == 1 {
                names.insert(part.to_owned());
            }
        }
    }
    names
}

fn assert_same(what: &str, page: &str, source: &BTreeSet<String>, doc: &BTreeSet<String>) {
    let undocumented: Vec<_> = source.difference(doc).collect();
    let stale: Vec<_> = doc.difference(source).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "{page} is out of step with the code.\n  {what} missing from the page: {undocumented:?}\n  \
         on the page but not in the code: {stale:?}"
    );
}

// ---- metrics ----

/// A gateway whose requests fill every gateway family: a refused key, an
/// upstream that refuses connections, and a route limit of one.
const GATEWAY: &str = r#"
[gateway]
listen = "127.0.0.1:0"

[[gateway.routes]]
name = "keyed"
match = { path_prefix = "/keyed" }
upstream = "http://127.0.0.1:1"
auth = "api_key"

[[gateway.routes]]
name = "open"
match = { path_prefix = "/open" }
upstream = "http://127.0.0.1:1"
auth = "none"
rate_limit = { limit = 1, period_seconds = 60 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_family_is_in_the_reference() {
    let app = spawn_app_with_toml(Backend::Sqlite, Some(GATEWAY), |_| {})
        .await
        .expect("SQLite is always there");
    let gateway = format!("http://{}", app.gateway_addr.expect("a gateway listener"));
    for (path, status) in [("/keyed", 401), ("/open", 502), ("/open", 429)] {
        let res = app
            .http
            .get(format!("{gateway}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status, "{path}");
    }
    // A family with no series yet is not exposed: count one admin request.
    app.get("/healthz").await;
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    let scraped = exposed_families(&text.text().await.unwrap());
    let registered = registered_families();
    let page = read(&repo().join("docs/reference/metrics.md"));
    let documented = first_cell_names(&page);
    // A counter is exposed as `_total`; the page names it so.
    let missing: Vec<_> = scraped.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "scraped but not in metrics.md: {missing:?}"
    );
    let bases: BTreeSet<String> = documented
        .iter()
        .map(|n| n.strip_suffix("_total").unwrap_or(n).to_owned())
        .collect();
    assert_same(
        "registered families",
        "docs/reference/metrics.md",
        &registered,
        &bases,
    );
}

/// Each `# TYPE` line's family as a scraper sees its samples: a counter
/// with `_total`, anything else by its name.
fn exposed_families(text: &str) -> BTreeSet<String> {
    let families: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| match kind.trim() {
            "counter" if !name.ends_with("_total") => format!("{name}_total"),
            _ => name.to_owned(),
        })
        .collect();
    assert!(
        families.contains("keygate_http_requests_total")
            && families.contains("keygate_gateway_rate_limited_total"),
        "the scrape was not read as expected: {families:?}\n{text}"
    );
    families
}

/// Every family the source registers, whether or not it has series yet:
/// the first literal of each `register(` call, under the registry's prefix.
fn registered_families() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut prefixes = BTreeSet::new();
    for file in rust_sources() {
        let text = read(&file);
        for (call, into) in [
            ("Registry::with_prefix(", &mut prefixes),
            (".register(", &mut names),
        ] {
            for (at, _) in text.match_indices(call) {
                into.extend(leading_literal(&text[at + call.len()..]).map(str::to_owned));
            }
        }
    }
    assert_eq!(prefixes.len(), 1, "one metrics registry: {prefixes:?}");
    let prefix = prefixes.pop_first().unwrap_or_default();
    assert!(names.len() >= 10, "too few registrations found: {names:?}");
    names.into_iter().map(|n| format!("{prefix}_{n}")).collect()
}

// ---- error codes ----

/// A call that writes a code as a string literal: the text before its
/// arguments, and whether a status comes before the code.
const CODE_CALLS: &[(&str, bool)] = &[
    ("ApiError::new(", true),
    ("ApiError::bad_request(", false),
    ("ApiError::unauthorized(", false),
    // The extractors of ids in paths.
    ("id_in_path(", false),
    ("OAuthError::new(", true),
    // The constructors' own helpers (`forbidden`, `internal`, ...).
    ("Self::new(", true),
    // The canned 503 of a full listener.
    ("const CODE: &str = ", false),
    // keygate-verify's extractor.
    ("code: ", false),
    // Forward-auth's reasons for not judging a request.
    ("Err(", false),
    ("ok_or(", false),
    ("|_| ", false),
];

/// Enums whose codes a function computes: `impl <type>` and the function.
const CODE_FNS: &[(&str, &str)] = &[
    ("impl SigCode ", "fn as_str("),
    ("impl VerifyCode ", "fn as_str("),
    ("impl NoRoute ", "fn code("),
    ("impl Error ", "fn code("),
    ("impl RemoteError ", "fn code("),
    ("impl CredentialError ", "fn code("),
    ("impl Unjudgeable ", "fn code("),
    ("impl ClientRefusal ", "fn code("),
];

/// Codes the scanner must find, one for each way of writing them: if it
/// misses one, the source has changed shape and `CODE_CALLS`/`CODE_FNS`
/// need to follow.
const ANCHORS: &[&str] = &[
    "storage_unavailable",
    "internal_error",
    "not_found",
    "invalid_credentials",
    "invalid_path",
    "signature_nonce_quota",
    "invalid_client",
    "temporarily_unavailable",
    "too_many_connections",
    "missing_token",
    "authority_mismatch",
    "signature_replayed",
    "VALID",
    "path_params",
    "bad_signature",
    "keys_unavailable",
    "mtls_unknown_client",
];

#[test]
fn every_error_code_is_in_the_reference() {
    let mut codes = BTreeSet::new();
    for file in rust_sources() {
        let text = read(&file);
        codes.extend(literal_codes(&text));
        codes.extend(enum_codes(&text));
    }
    let lost: Vec<_> = ANCHORS.iter().filter(|a| !codes.contains(**a)).collect();
    assert!(
        lost.is_empty(),
        "the scanner no longer finds {lost:?}: update CODE_CALLS or CODE_FNS to where the \
         source now writes its codes"
    );
    let page = read(&repo().join("docs/reference/errors.md"));
    assert_same(
        "codes",
        "docs/reference/errors.md",
        &codes,
        &first_cell_names(&page),
    );
}

/// Every `.rs` file under `crates/*/src`: wherever code moves between
/// crates, it is still read.
fn rust_sources() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for krate in std::fs::read_dir(repo().join("crates")).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            walk(&src, "rs", &mut out);
        }
    }
    assert!(out.len() > 50, "too few sources found: {out:?}");
    out
}

fn walk(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

fn is_code(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The string literal `text` starts with (after whitespace), if any.
fn leading_literal(text: &str) -> Option<&str> {
    let rest = text.trim_start().strip_prefix('"')?;
    rest.split_once('"').map(|(lit, _)| lit)
}

/// The codes written as literals at the calls of `CODE_CALLS`.
fn literal_codes(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for &(call, status_first) in CODE_CALLS {
        for (at, _) in text.match_indices(call) {
            let mut args = &text[at + call.len()..];
            if status_first {
                // `Self::new(` builds many things; only a status makes it ours.
                if call == "Self::new(" && !args.trim_start().starts_with("StatusCode::") {
                    continue;
                }
                match args.split_once(',') {
                    Some((_, after)) => args = after,
                    None => continue,
                }
            }
            if let Some(code) = leading_literal(args).filter(|c| is_code(c)) {
                out.push(code.to_owned());
            }
        }
    }
    out
}

/// The literals in the body of each `CODE_FNS` function found in `text`.
fn enum_codes(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for &(impl_of, func) in CODE_FNS {
        for (at, _) in text.match_indices(impl_of) {
            let Some(body) = text[at..].find(func).and_then(|f| fn_body(&text[at + f..])) else {
                continue;
            };
            let literals = body.split('"').skip(1).step_by(2);
            out.extend(literals.filter(|l| is_code(l)).map(str::to_owned));
        }
    }
    out
}

/// From a function's signature to the end of its body (braces balanced).
fn fn_body(text: &str) -> Option<&str> {
    let open = text.find('{')?;
    let mut depth = 0usize;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[open..=open + i]);
                }
            }
            _ => {}
        }
    }
    None
}

// ---- links ----

/// Written by the configuration generator (issue 11, item 8), which lands
/// on its own branch. A link to it is exempt only while it does not exist.
const GENERATED_ELSEWHERE: &[&str] = &["docs/reference/configuration.md"];

#[test]
fn relative_links_in_the_docs_resolve() {
    let root = repo();
    let mut pages = vec![
        root.join("README.md"),
        root.join("crates/keygate-verify/README.md"),
    ];
    walk(&root.join("docs"), "md", &mut pages);
    assert!(pages.len() > 10, "too few pages found: {pages:?}");
    let mut broken = Vec::new();
    for page in &pages {
        for link in relative_links(&read(page)) {
            if let Err(why) = check_link(&root, page, &link) {
                broken.push(format!("{}: ({link}): {why}", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The targets of `[text](target)` links outside code blocks, except
/// absolute URLs.
fn relative_links(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose_lines(page) {
        for (at, _) in line.match_indices("](") {
            let rest = &line[at + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = &rest[..end];
            if !target.contains("://") && !target.starts_with("mailto:") {
                out.push(target.to_owned());
            }
        }
    }
    out
}

/// The lines outside fenced code blocks.
fn prose_lines(page: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in page.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push(line);
        }
    }
    out
}

fn check_link(root: &Path, page: &Path, link: &str) -> Result<(), String> {
    let (path, anchor) = match link.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (link, None),
    };
    let target = if path.is_empty() {
        page.to_path_buf()
    } else {
        page.parent().unwrap().join(path)
    };
    if !target.exists() {
        let exempt = GENERATED_ELSEWHERE
            .iter()
            .any(|g| same_file(&target, &root.join(g)));
        return if exempt && anchor.is_none() {
            Ok(())
        } else {
            Err("no such file".to_owned())
        };
    }
    match anchor {
        Some(anchor) if target.extension().is_some_and(|e| e == "md") => {
            let slugs = heading_slugs(&read(&target));
            if slugs.contains(anchor) {
                Ok(())
            } else {
                Err(format!(
                    "no heading with anchor #{anchor}; there are {slugs:?}"
                ))
            }
        }
        _ => Ok(()),
    }
}

/// Two paths that name the same place, compared without touching the disk
/// (the file need not exist).
fn same_file(a: &Path, b: &Path) -> bool {
    let normal = |p: &Path| {
        let mut parts: Vec<std::ffi::OsString> = Vec::new();
        for c in p.components() {
            match c {
                std::path::Component::ParentDir => {
                    parts.pop();
                }
                std::path::Component::CurDir => {}
                other => parts.push(other.as_os_str().to_owned()),
            }
        }
        parts
    };
    normal(a) == normal(b)
}

/// GitHub's anchors for a page's headings: lower case, spaces to `-`,
/// punctuation other than `-` and `_` dropped.
fn heading_slugs(page: &str) -> BTreeSet<String> {
    prose_lines(page)
        .into_iter()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| l.trim_start_matches('#').trim())
        .map(|title| {
            title
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

#[test]
fn the_link_checker_sees_a_broken_link_and_a_broken_anchor() {
    let root = repo();
    let page = root.join("docs/security.md");
    assert!(check_link(&root, &page, "guides/keys.md#lifecycle").is_ok());
    assert!(check_link(&root, &page, "guides/no-such-page.md").is_err());
    assert!(check_link(&root, &page, "guides/keys.md#no-such-heading").is_err());
    assert_eq!(
        relative_links("see [a](x.md) and [b](https://e.example/)\n```\n[c](y.md)\n```\n"),
        vec!["x.md"]
    );
}
