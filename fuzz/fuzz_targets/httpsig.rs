//! `Signature-Input`, `Signature` and the RFC 8941 dictionaries under them
//! (keygate-core httpsig).
//!
//! The input is two field values split at the first newline. What parses
//! re-serializes to a value that parses to the same thing; every signature
//! keygate reads, signed again by keygate over a fixed request, verifies
//! with the same parameters (signer and verifier agree on every byte of the
//! base and of `@signature-params`).

#![no_main]

use keygate_core::httpsig::base::received_signatures;
use keygate_core::httpsig::structured::{
    BareItem, Dictionary, Item, Member, parse_dictionary, write_bare_item, write_params,
};
use keygate_core::httpsig::{RequestView, sign_hmac_sha256, signature_base, verify_hmac_sha256};

const SECRET: &[u8] = b"a shared secret of at least 32 bytes";

fn check(data: &[u8]) {
    let (input, signature) = keygate_fuzz::split2(data, b'\n');
    let (Some(input), Some(signature)) = (keygate_fuzz::text(input), keygate_fuzz::text(signature))
    else {
        return;
    };
    dictionary_round_trip(input);
    dictionary_round_trip(signature);
    let headers = request_headers(input, signature);
    let req = request(&headers);
    let _ = verify_hmac_sha256(&req, None, SECRET);
    if let Ok(sigs) = received_signatures(&headers) {
        for sig in sigs {
            if signature_base(&req, &sig.params).is_ok() {
                resign_and_verify(&sig.label, &sig.params);
            }
        }
    }
}

fn request_headers(input: &str, signature: &str) -> Vec<(String, String)> {
    [
        ("host", "api.example"),
        ("content-type", "application/json"),
        (
            "content-digest",
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
        ),
        ("x-two", "a"),
        ("x-two", "b"),
        ("signature-input", input),
        ("signature", signature),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .collect()
}

fn request(headers: &Vec<(String, String)>) -> RequestView<'_> {
    RequestView {
        method: "POST",
        scheme: "https",
        authority: "API.example:443",
        path: "/v1/items/%41",
        query: Some("a=1&b"),
        headers,
    }
}

fn resign_and_verify(label: &str, params: &keygate_core::httpsig::SignatureParams) {
    let plain = request_headers("", "");
    let (input, signature) =
        sign_hmac_sha256(&request(&plain), label, params, SECRET).expect("a base that built signs");
    let headers = request_headers(&input, &signature);
    let verified = verify_hmac_sha256(&request(&headers), Some(label), SECRET);
    match params.param("alg") {
        None => {}
        Some(BareItem::String(a)) if a == "hmac-sha256" => {}
        Some(_) => {
            assert!(verified.is_err(), "a signature naming another alg verifies");
            return;
        }
    }
    let verified = verified.unwrap_or_else(|e| panic!("keygate's own signature is refused: {e}"));
    assert_eq!(
        &verified, params,
        "the parameters changed through a round trip"
    );
}

fn dictionary_round_trip(input: &str) {
    let Ok(dict) = parse_dictionary(input) else {
        return;
    };
    let text = write_dictionary(&dict);
    let again = parse_dictionary(&text)
        .unwrap_or_else(|e| panic!("a serialized dictionary does not parse: {e}: {text}"));
    assert_eq!(again, dict, "{text}");
}

/// RFC 8941 §4.1.2, the serializer the fuzzer holds the parser to.
fn write_dictionary(dict: &Dictionary) -> String {
    let mut out = String::new();
    for (i, (key, member)) in dict.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(key);
        match member {
            Member::Item(Item {
                value: BareItem::Boolean(true),
                params,
            }) => {
                write_params(&mut out, params);
            }
            Member::Item(item) => {
                out.push('=');
                write_item(&mut out, item);
            }
            Member::InnerList(items, params) => {
                out.push_str("=(");
                for (j, item) in items.iter().enumerate() {
                    if j > 0 {
                        out.push(' ');
                    }
                    write_item(&mut out, item);
                }
                out.push(')');
                write_params(&mut out, params);
            }
        }
    }
    out
}

fn write_item(out: &mut String, item: &Item) {
    write_bare_item(out, &item.value);
    write_params(out, &item.params);
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
