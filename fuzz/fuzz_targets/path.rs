//! Gateway path normalization (`keygate::gateway::path::normalize`): what
//! routes match and what the gateway forwards.
//!
//! For every input: no panic; an accepted path is normal (normalizing it
//! again changes nothing, in both its forwarded and its matched form), holds
//! no dot segment, empty segment, encoded separator, NUL, escaped escape or
//! lower-case hex, and only bytes a path may hold raw; its matched form has
//! no `;params`. Spelling one of its unreserved characters as an escape
//! gives the same path.

#![no_main]

use keygate::gateway::path::normalize;

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn assert_normal(full: &str) {
    assert!(full.starts_with('/'), "{full:?}");
    assert!(!full.contains("//"), "an empty segment: {full:?}");
    for segment in full.split('/') {
        let name = segment.split(';').next().unwrap_or("");
        assert!(name != "." && name != "..", "a dot segment: {full:?}");
    }
    let bytes = full.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = &bytes[i + 1..i + 3];
            assert!(
                hex.iter()
                    .all(|h| h.is_ascii_digit() || (b'A'..=b'F').contains(h)),
                "escape not in upper-case hex: {full:?}"
            );
            let v = u8::from_str_radix(std::str::from_utf8(hex).unwrap_or("zz"), 16).unwrap_or(0);
            assert!(
                !is_unreserved(v),
                "an unreserved character left escaped: {full:?}"
            );
            assert!(
                !matches!(v, b'/' | b'\\' | 0),
                "a separator or NUL: {full:?}"
            );
            if v == b'%' {
                let next = bytes.get(i + 3..i + 5).unwrap_or(&[]);
                assert!(
                    !(next.len() == 2 && next.iter().all(u8::is_ascii_hexdigit)),
                    "an escaped escape: {full:?}"
                );
            }
            i += 3;
            continue;
        }
        assert!(
            is_unreserved(b) || b"/!$&'()*+,;=:@".contains(&b),
            "a byte that needs escaping: {full:?}"
        );
        i += 1;
    }
}

fn check(data: &[u8]) {
    let (choice, rest) = data.split_first().unwrap_or((&0, &[]));
    let Some(raw) = keygate_fuzz::text(rest) else {
        return;
    };
    let Ok(once) = normalize(raw) else {
        return;
    };
    assert_normal(once.full());
    assert!(
        !once.matched().contains(';'),
        "params in the matched form: {raw:?}"
    );
    let twice = normalize(once.full()).expect("a normal path normalizes");
    assert_eq!(twice.full(), once.full(), "not idempotent: {raw:?}");
    assert_eq!(
        twice.matched(),
        once.matched(),
        "matched form moved: {raw:?}"
    );
    let bare = normalize(once.matched()).expect("the matched form normalizes");
    assert_eq!(bare.full(), once.matched());
    // Respell one unreserved character as an escape: the same path.
    let full = once.full();
    // Characters of their own, not the hex digits of an escape.
    let bytes = full.as_bytes();
    let in_escape = |i: usize| (i >= 1 && bytes[i - 1] == b'%') || (i >= 2 && bytes[i - 2] == b'%');
    let spots: Vec<usize> = (0..bytes.len())
        .filter(|&i| is_unreserved(bytes[i]) && !in_escape(i))
        .collect();
    if let Some(&at) = spots.get(usize::from(*choice) % spots.len().max(1)) {
        let respelled = format!(
            "{}%{:02x}{}",
            &full[..at],
            full.as_bytes()[at],
            &full[at + 1..]
        );
        let again = normalize(&respelled).expect("a respelled normal path normalizes");
        assert_eq!(
            again.full(),
            full,
            "a respelling is another path: {respelled:?}"
        );
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
