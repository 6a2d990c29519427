//! Where `Verifier::verify` spends its time on a keygate-shaped HS256 access
//! token, phase by phase, beside the bare HMAC on the same bytes.
//!
//! `cargo bench -p keygate-verify --bench phases`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use criterion::{Criterion, criterion_group, criterion_main};
use keygate_verify::{Algorithm, JwkSet, Validation, Verifier, VerifyingKey, json};
use serde_json::json;

const ISS: &str = "https://auth.bench.test";
const AUD: &str = "orders";
const NOW: u64 = 1_800_000_000;
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const KID: &str = "k_2026-11-28T01:00:00Z_3f9a1c";

/// A token shaped like the server's access tokens (about 466 bytes).
fn token() -> String {
    let header = json!({"alg": "HS256", "kid": KID, "typ": "at+jwt"});
    let claims = json!({
        "iss": ISS, "sub": "usr_4kR9vXq2LmN8pT3w", "aud": AUD,
        "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 890,
        "jti": "01JDXK8Q5Y3ZP7R2M4N6B8C0V1",
        "roles": ["customer", "beta"], "tenant": "acme",
        "scope": "orders:read orders:write", "plan": "pro",
        "sid": "ses_9TqW2xLm4Kp7Rv3N",
    });
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET);
    format!("{input}.{}", B64.encode(hmac::sign(&key, input.as_bytes())))
}

fn benches(c: &mut Criterion) {
    let token = token();
    let key = VerifyingKey::from_hmac_secret(Algorithm::HS256, SECRET, Some(KID.into())).unwrap();
    let verifier = Verifier::new(
        JwkSet::from_keys(vec![key]).unwrap(),
        Validation::new(ISS, AUD),
    )
    .unwrap();
    assert!(verifier.verify(&token, NOW).is_ok());
    let mut parts = token.split('.');
    let (h, p, s) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let header = B64.decode(h).unwrap();
    let payload = B64.decode(p).unwrap();
    let sig = B64.decode(s).unwrap();
    let input = &token.as_bytes()[..h.len() + 1 + p.len()];
    let hkey = hmac::Key::new(hmac::HMAC_SHA256, SECRET);

    let mut g = c.benchmark_group(format!("phases_{}B", token.len()));
    g.bench_function("bare_hmac", |b| {
        b.iter(|| hmac::verify(&hkey, black_box(input), &sig).is_ok())
    });
    g.bench_function("b64_payload", |b| {
        b.iter(|| B64.decode(black_box(p)).unwrap())
    });
    g.bench_function("json_header", |b| {
        b.iter(|| json::parse_object(black_box(&header)).unwrap())
    });
    g.bench_function("json_claims", |b| {
        b.iter(|| json::parse_object(black_box(&payload)).unwrap())
    });
    g.bench_function("verify_signature", |b| {
        b.iter(|| verifier.verify_signature(black_box(&token)).unwrap())
    });
    g.bench_function("verify", |b| {
        b.iter(|| verifier.verify(black_box(&token), NOW).unwrap())
    });
    g.finish();
}

criterion_group!(group, benches);
criterion_main!(group);
