//! The RFC 9421 known answer (Appendix B.2.5) and the protocol alone.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::httpsig::base::{SignatureParams, sign_hmac_sha256, signature_base, verify_hmac_sha256};
use crate::httpsig::{HeaderLookup, RequestView, SigCode, UrlParts};

const B15_SECRET: &str =
    "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==";

/// The request of RFC 9421 Appendix B.2, with the B.2.5 signature.
fn b2_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Host", "example.com"),
        ("Date", "Tue, 20 Apr 2021 02:07:55 GMT"),
        ("Content-Type", "application/json"),
        (
            "Content-Digest",
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
        ),
        ("Content-Length", "18"),
        (
            "Signature-Input",
            r#"sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret""#,
        ),
        (
            "Signature",
            "sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:",
        ),
    ]
}

fn b2_view(headers: &dyn HeaderLookup) -> RequestView<'_> {
    RequestView {
        method: "POST",
        scheme: "https",
        authority: "example.com",
        path: "/foo",
        query: Some("param=Value&Pet=dog"),
        headers,
    }
}

#[test]
fn rfc_9421_b_2_5_known_answer() {
    let headers = b2_headers();
    let view = b2_view(&headers);
    let secret = STANDARD.decode(B15_SECRET).unwrap();
    let params = verify_hmac_sha256(&view, Some("sig-b25"), &secret).unwrap();
    assert_eq!(
        signature_base(&view, &params).unwrap(),
        "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\
         \"@authority\": example.com\n\
         \"content-type\": application/json\n\
         \"@signature-params\": (\"date\" \"@authority\" \"content-type\");created=1618884473;keyid=\"test-shared-secret\""
    );
    // The signer reproduces the RFC's fields byte for byte.
    let (input, signature) = sign_hmac_sha256(&view, "sig-b25", &params, &secret).unwrap();
    assert_eq!(input, headers[5].1);
    assert_eq!(signature, headers[6].1);
    // One flipped bit of the secret, or of a covered value, and it fails.
    let mut wrong = secret.clone();
    wrong[0] ^= 1;
    let err = verify_hmac_sha256(&view, None, &wrong).unwrap_err();
    assert_eq!(err.code, SigCode::SignatureInvalid);
}

#[test]
fn derived_components_follow_the_rfc_examples() {
    let headers: Vec<(&str, &str)> = vec![];
    let view = RequestView {
        method: "POST",
        scheme: "HTTPS",
        authority: "WWW.Example.com:443",
        path: "/path",
        query: Some("param=value&foo=bar&baz=bat%2Dman"),
        headers: &headers,
    };
    let params = SignatureParams {
        components: [
            "@method",
            "@scheme",
            "@authority",
            "@path",
            "@query",
            "@request-target",
            "@target-uri",
        ]
        .map(String::from)
        .to_vec(),
        params: vec![],
    };
    let base = signature_base(&view, &params).unwrap();
    let lines: Vec<&str> = base.lines().collect();
    assert_eq!(lines[0], "\"@method\": POST");
    assert_eq!(lines[1], "\"@scheme\": https");
    assert_eq!(lines[2], "\"@authority\": www.example.com");
    assert_eq!(lines[3], "\"@path\": /path");
    assert_eq!(lines[4], "\"@query\": ?param=value&foo=bar&baz=bat%2Dman");
    assert_eq!(
        lines[5],
        "\"@request-target\": /path?param=value&foo=bar&baz=bat%2Dman"
    );
    assert_eq!(
        lines[6],
        "\"@target-uri\": https://www.example.com/path?param=value&foo=bar&baz=bat%2Dman"
    );
    let no_query = RequestView {
        query: None,
        path: "",
        authority: "[::1]:8443",
        ..view
    };
    let base = signature_base(&no_query, &params).unwrap();
    assert!(base.contains("\"@query\": ?\n"));
    assert!(base.contains("\"@path\": /\n"));
    assert!(base.contains("\"@authority\": [::1]:8443\n"));
    assert!(base.contains("\"@request-target\": /\n"));
}

#[test]
fn header_values_are_trimmed_and_joined() {
    let headers = vec![("X-Multi", "  a  "), ("x-multi", "b,c"), ("X-Empty", "")];
    let view = b2_view(&headers);
    let params = SignatureParams {
        components: vec!["x-multi".into(), "x-empty".into()],
        params: vec![],
    };
    let base = signature_base(&view, &params).unwrap();
    assert!(
        base.starts_with("\"x-multi\": a, b,c\n\"x-empty\": \n"),
        "{base}"
    );
}

#[test]
fn covered_component_errors_are_precise() {
    let headers: Vec<(&str, &str)> = vec![("x", "1\r\nInjected: 2")];
    let view = b2_view(&headers);
    let case = |c: &[&str]| {
        let p = SignatureParams {
            components: c.iter().map(|s| (*s).to_owned()).collect(),
            params: vec![],
        };
        signature_base(&view, &p).unwrap_err()
    };
    assert_eq!(case(&["absent"]).code, SigCode::SignatureInvalid);
    assert!(case(&["@method", "@method"]).detail.contains("twice"));
    assert!(case(&["@status"]).detail.contains("not supported"));
    assert!(
        case(&["@signature-params"])
            .detail
            .contains("cannot be covered")
    );
    assert!(case(&["Content-Type"]).detail.contains("lowercase"));
    assert!(case(&["signature"]).detail.contains("cannot be covered"));
    assert!(case(&["x"]).detail.contains("ASCII"));
}

#[test]
fn codes_are_stable_and_urls_parse_strictly() {
    let codes: Vec<&str> = SigCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(codes.len(), 10);
    assert!(
        codes
            .iter()
            .all(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'))
    );
    assert!(UrlParts::parse("ftp://x/").is_err());
    assert!(UrlParts::parse("https://u:p@x/").is_err());
    let u = UrlParts::parse("https://Host:8443?a=b#frag").unwrap();
    assert_eq!((u.path.as_str(), u.query.as_deref()), ("/", Some("a=b")));
}
