//! `Content-Digest` (RFC 9530, keygate-core httpsig::digest).
//!
//! The input is a header value and a body split at the first newline. The
//! streamed check agrees with the one-shot check however the body is cut;
//! the signer's own header always matches its body, also beside the fuzzed
//! members, and never matches a body changed by one byte.

#![no_main]

use keygate_core::httpsig::{BodyDigest, check_content_digest, content_digest_sha256};

fn check(data: &[u8]) {
    let (value, body) = keygate_fuzz::split2(data, b'\n');
    let Some(value) = keygate_fuzz::text(value) else {
        return;
    };
    let headers = vec![("content-digest", value)];
    let whole = check_content_digest(&headers, body);
    let cut = body.len() / 3;
    let streamed = BodyDigest::from_headers(&headers).and_then(|mut d| {
        d.update(&body[..cut]);
        d.update(&[]);
        d.update(&body[cut..]);
        d.finish()
    });
    assert_eq!(
        whole.as_ref().err().map(|e| e.code),
        streamed.as_ref().err().map(|e| e.code)
    );

    let own = content_digest_sha256(body);
    let headers = vec![("content-digest", own.as_str())];
    assert!(
        check_content_digest(&headers, body).is_ok(),
        "the signer's digest is refused"
    );
    if let Some((&first, rest)) = body.split_first() {
        let mut changed = vec![first ^ 0x20];
        changed.extend_from_slice(rest);
        assert!(
            check_content_digest(&headers, &changed).is_err(),
            "a changed body matches"
        );
    }
    // The fuzzed members beside the signer's: a wrong sha-512 or a second
    // sha-256 may refuse it, but nothing may make a wrong body pass.
    let both = format!("{own}, {value}");
    let headers = vec![("content-digest", both.as_str())];
    if check_content_digest(&headers, body).is_ok() && !body.is_empty() {
        let mut changed = body.to_vec();
        changed[0] ^= 0x20;
        assert!(
            check_content_digest(&headers, &changed).is_err(),
            "a changed body matches"
        );
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
