#![allow(clippy::unwrap_used, clippy::panic)]

use axum::http::Method;
use proptest::prelude::*;

use super::*;
use crate::config::parse_text;
use crate::routes::{Lookup, RouteTable};

fn full(raw: &str) -> String {
    normalize(raw).unwrap().full().to_owned()
}

fn matched(raw: &str) -> String {
    normalize(raw).unwrap().matched().to_owned()
}

#[test]
fn equivalent_spellings_normalize_to_one_path() {
    assert_eq!(full("/%61dmin/secret"), "/admin/secret");
    assert_eq!(full("/%41DMIN/%7euser"), "/ADMIN/~user");
    assert_eq!(full("//admin///secret"), "/admin/secret");
    assert_eq!(full("/a%2cb/%e2%82%ac"), "/a%2Cb/%E2%82%AC");
    assert_eq!(full("/a%20b"), "/a%20b");
    assert_eq!(full("/caf\u{e9}"), "/caf%C3%A9");
    assert_eq!(full("/a b\"<>"), "/a%20b%22%3C%3E");
    assert_eq!(full("/"), "/");
    assert_eq!(full("/orders/"), "/orders/");
    assert_eq!(full("/a:b@c!$&'()*+,=;d"), "/a:b@c!$&'()*+,=;d");
}

#[test]
fn params_are_cut_for_matching_and_kept_for_forwarding() {
    let p = normalize("/admin;jsessionid=1/secret;x").unwrap();
    assert!(p.has_params());
    assert_eq!(p.full(), "/admin;jsessionid=1/secret;x");
    assert_eq!(p.matched(), "/admin/secret");
    assert_eq!(matched("/;x/admin"), "/admin");
    assert_eq!(matched("/admin/;x/"), "/admin/");
    assert_eq!(matched("/;"), "/");
    assert!(!normalize("/admin/secret").unwrap().has_params());
    // An escaped `;` is data, not a parameter.
    assert!(!normalize("/a%3bb").unwrap().has_params());
}

#[test]
fn what_an_upstream_could_resolve_elsewhere_is_refused() {
    use PathError::*;
    for (raw, why) in [
        ("/open/../admin", DotSegment),
        ("/open/..", DotSegment),
        ("/open/./x", DotSegment),
        ("/open/%2e%2E/admin", DotSegment),
        ("/open/.%2e/admin", DotSegment),
        ("/open/..;x/admin", DotSegment),
        ("/open/%2e;/admin", DotSegment),
        ("/open%2fadmin", EncodedSeparator),
        ("/open%5Cadmin", EncodedSeparator),
        ("/open\\..\\admin", EncodedSeparator),
        ("/a%00", BadEscape),
        ("/a%zz", BadEscape),
        ("/a%4", BadEscape),
        ("/a%", BadEscape),
        ("/%252e%252e/admin", DoubleEscape),
        ("/%2561dmin", DoubleEscape),
        ("/%2525", DoubleEscape),
        // Found by the fuzz target: the digits after %25 arrive escaped.
        ("/%25%61a", DoubleEscape),
        ("/%25%34%31", DoubleEscape),
        ("/a\u{1}b", BadEscape),
        ("/a\u{7f}", BadEscape),
        ("relative", NotAbsolute),
        ("", NotAbsolute),
        ("*", NotAbsolute),
    ] {
        assert_eq!(normalize(raw), Err(why), "{raw:?}");
    }
    for good in [
        "/open/a.b",
        "/open/...",
        "/open/.well-known/x",
        "/a..b",
        "/%2E%2E%2E",
    ] {
        assert!(normalize(good).is_ok(), "{good}");
    }
}

#[test]
fn dropping_prefix_segments_skips_params_only_segments() {
    assert_eq!(drop_segments("/orders/7", 1), "/7");
    assert_eq!(drop_segments("/orders", 1), "");
    assert_eq!(drop_segments("/;x/orders;y/7", 1), "/7");
    assert_eq!(drop_segments("/a/b/c", 2), "/c");
    assert_eq!(drop_segments("/a", 0), "/a");
}

fn table() -> RouteTable {
    let cfg = parse_text(
        r#"
        [gateway]
        [[gateway.routes]]
        name = "root"
        match = { path_prefix = "/" }
        upstream = "http://127.0.0.1:1"
        auth = "none"
        [[gateway.routes]]
        name = "admin"
        match = { path_prefix = "/admin" }
        upstream = "http://127.0.0.1:1"
        auth = "api_key"
        [[gateway.routes]]
        name = "case"
        match = { path_prefix = "/Files/Private" }
        upstream = "http://127.0.0.1:1"
        auth = "api_key"
        case_insensitive = true
        [[gateway.routes]]
        name = "encoded"
        match = { path_prefix = "/%7eteam" }
        upstream = "http://127.0.0.1:1"
        auth = "api_key"
        "#,
    )
    .unwrap()
    .unwrap();
    RouteTable::new(cfg.routes)
}

fn route_of(t: &RouteTable, path: &str) -> String {
    match t.find(None, path, &Method::GET) {
        Lookup::Found(r) => r.name.clone(),
        Lookup::MethodNotAllowed => "405".into(),
        Lookup::NotFound => "404".into(),
    }
}

#[test]
fn equivalent_paths_reach_the_guarded_route() {
    let t = table();
    for raw in [
        "/admin/secret",
        "/%61dmin/secret",
        "//admin/secret",
        "/admin;x/secret",
        "/;x/admin/secret",
        "/admin//secret",
    ] {
        assert_eq!(
            route_of(&t, normalize(raw).unwrap().matched()),
            "admin",
            "{raw}"
        );
    }
    assert_eq!(route_of(&t, &matched("/files/PRIVATE/x")), "case");
    assert_eq!(route_of(&t, &matched("/FILES/private")), "case");
    assert_eq!(route_of(&t, &matched("/files/privatex")), "root");
    assert_eq!(route_of(&t, &matched("/ADMIN/secret")), "root");
    // A prefix written with escapes is stored normalized.
    assert_eq!(route_of(&t, &matched("/~team/x")), "encoded");
    assert_eq!(route_of(&t, &matched("/%7Eteam")), "encoded");
}

fn raw_path() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("/".to_owned()),
        Just("//".to_owned()),
        Just("admin".to_owned()),
        Just("ADMIN".to_owned()),
        Just("%61".to_owned()),
        Just("%2e".to_owned()),
        Just("%2E".to_owned()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just(";x".to_owned()),
        Just(";".to_owned()),
        Just("%2f".to_owned()),
        Just("%3b".to_owned()),
        Just("%c3%a9".to_owned()),
        Just("\u{e9}".to_owned()),
        Just("%7E".to_owned()),
        Just("files".to_owned()),
        Just("Private".to_owned()),
        Just("secret".to_owned()),
        Just("%".to_owned()),
        Just("\\".to_owned()),
        "[a-zA-Z0-9%;=~._-]{1,4}",
    ];
    proptest::collection::vec(token, 0..8).prop_map(|parts| format!("/{}", parts.concat()))
}

proptest! {
    #[test]
    fn normalizing_is_idempotent(raw in raw_path()) {
        if let Ok(once) = normalize(&raw) {
            let twice = normalize(once.full()).unwrap();
            prop_assert_eq!(twice.full(), once.full());
            prop_assert_eq!(twice.matched(), once.matched());
            // The matched form is a normal path without params.
            let bare = normalize(once.matched()).unwrap();
            prop_assert_eq!(bare.full(), once.matched());
            prop_assert!(!bare.has_params());
        }
    }

    #[test]
    fn a_path_and_its_normal_form_choose_one_route(raw in raw_path()) {
        let t = table();
        if let Ok(once) = normalize(&raw) {
            let again = normalize(once.full()).unwrap();
            prop_assert_eq!(route_of(&t, once.matched()), route_of(&t, again.matched()));
        }
    }
}

/// A plain path, and the same path spelled with escapes for some of its
/// unreserved characters (lower or upper hex) and doubled slashes.
fn respelled() -> impl Strategy<Value = (String, String)> {
    let segment = prop_oneof![
        Just("admin".to_owned()),
        Just("files".to_owned()),
        Just("Private".to_owned()),
        Just("~team".to_owned()),
        "[a-zA-Z0-9._~-]{1,6}",
    ];
    proptest::collection::vec((segment, any::<u64>()), 1..5).prop_map(|segs| {
        let mut plain = String::new();
        let mut spelled = String::new();
        for (seg, bits) in segs {
            plain.push('/');
            spelled.push_str(if bits & 1 == 1 { "//" } else { "/" });
            for (i, c) in seg.chars().enumerate() {
                plain.push(c);
                match (bits >> (i + 1)) & 3 {
                    1 => spelled.push_str(&format!("%{:02x}", c as u32)),
                    2 => spelled.push_str(&format!("%{:02X}", c as u32)),
                    _ => spelled.push(c),
                }
            }
        }
        (plain, spelled)
    })
}

proptest! {
    #[test]
    fn a_respelled_path_is_the_same_path(pair in respelled()) {
        let (plain, spelled) = pair;
        match (normalize(&plain), normalize(&spelled)) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(a.full(), b.full());
                let t = table();
                prop_assert_eq!(route_of(&t, a.matched()), route_of(&t, b.matched()));
            }
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "{:?} vs {:?}", a, b),
        }
    }
}
