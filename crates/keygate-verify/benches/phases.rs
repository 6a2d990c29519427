//! Where `Verifier::verify` spends its time on a keygate-shaped HS256 access
//! token, phase by phase, beside the bare HMAC on the same bytes.
//!
//! `cargo bench -p keygate-verify --bench phases`

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::hint::black_box;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use criterion::{Criterion, criterion_group, criterion_main};
use keygate_verify::json;

use common::{NOW, SECRET, hs256_verifier, token};

fn benches(c: &mut Criterion) {
    let token = token();
    let verifier = hs256_verifier();
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
