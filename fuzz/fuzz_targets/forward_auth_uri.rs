//! Forward-auth's reading of an original URI (`X-Original-URI`,
//! `X-Forwarded-Uri`): `keygate::gateway::forward_auth::judge_uri`.
//!
//! For every input: no panic; an accepted URI's path is normal and judged
//! as the gateway would judge it, with no empty segment (the proxy forwards
//! it raw); the raw path is the URI's own text, ends before any `?` or `#`,
//! and an origin-form URI names no authority; a URI whose path is origin-form
//! keeps it whatever its query holds (a URL in the query is query).

#![no_main]

use keygate::gateway::forward_auth::judge_uri;
use keygate::gateway::path::normalize;

fn check(data: &[u8]) {
    let Some(uri) = keygate_fuzz::text(data) else {
        return;
    };
    let Ok(judged) = judge_uri(uri) else {
        return;
    };
    let full = judged.path.full();
    assert_eq!(
        normalize(full).map(|p| p.full().to_owned()).ok().as_deref(),
        Some(full)
    );
    assert_eq!(
        normalize(judged.raw_path)
            .map(|p| p.full().to_owned())
            .ok()
            .as_deref(),
        Some(full),
        "judged otherwise than the gateway would: {uri:?}"
    );
    let inner = judged.raw_path.strip_suffix('/').unwrap_or(judged.raw_path);
    assert!(!inner.contains("//"), "an empty segment passed: {uri:?}");
    assert!(!judged.raw_path.contains(['?', '#']), "{uri:?}");
    if judged.raw_path != "/" {
        assert!(uri.contains(judged.raw_path), "{uri:?}");
    }
    if uri.starts_with('/') {
        assert!(judged.authority.is_none(), "{uri:?}");
        let path_end = uri.find(['?', '#']).unwrap_or(uri.len());
        assert_eq!(judged.raw_path, &uri[..path_end], "{uri:?}");
        // The same path with a URL in its query: the same judgement.
        let with_url = format!("{}?next=https://example.com/other", &uri[..path_end]);
        let again = judge_uri(&with_url).expect("a query does not change the path");
        assert_eq!(again.path.full(), full);
        assert!(again.authority.is_none());
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
