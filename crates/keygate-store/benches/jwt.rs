//! JWTs: issuing and verifying with each algorithm keygate signs with, each
//! beside the bare aws-lc-rs primitive on the same bytes, plus a token seen
//! before (the verified-token cache).
//!
//! `cargo bench -p keygate-store --bench jwt`
//!
//! "keygate verify" is keygate-verify's `Verifier::verify`, what a
//! downstream service runs: length cap, strict base64url and JSON, header
//! rules, key selection by kid, signature, claims. "server verify" is the
//! server's `TokenService::verify` with its cache off (adds the cache digest
//! and the revocation hook). Targets: keygate verify within 1.15x of the
//! primitive for ES256, EdDSA and RS256, under 2 us for HS256; a token seen
//! before under 1 us.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture;

use std::hint::black_box;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, UnparsedPublicKey};
use aws_lc_rs::{hmac, rsa};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use criterion::{Criterion, criterion_group};
use keygate_core::jwt::{JwtConfig, SigningAlg, TokenKind, TokenRequest, TokenService};
use keygate_core::sealed::MasterKey;
use keygate_core::{MillisClock, SystemClock};
use keygate_verify::{ImportOptions, JwkSet, Validation, Verifier};
use serde_json::{Map, Value, json};

const ISSUER: &str = "https://auth.bench.test";
const AUDIENCE: &str = "orders";

fn config(alg: SigningAlg, cache: usize) -> JwtConfig {
    JwtConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        algorithm: alg,
        access_token_ttl: 900,
        client_token_ttl: 300,
        internal_token_ttl: 60,
        audiences: Vec::new(),
        rotation_period: 30 * 86_400,
        jwks_max_age: 300,
        leeway: 30,
        verified_cache_capacity: cache,
    }
}

/// A typical access token's claims: roles, tenant, scope, one custom claim.
fn request() -> TokenRequest {
    let mut claims = Map::new();
    claims.insert("roles".into(), json!(["customer", "beta"]));
    claims.insert("tenant".into(), json!("acme"));
    claims.insert("scope".into(), json!("orders:read orders:write"));
    claims.insert("plan".into(), json!("pro"));
    TokenRequest {
        kind: TokenKind::User,
        subject: "usr_4kR9vXq2LmN8pT3w".into(),
        audience: AUDIENCE.into(),
        ttl: 900,
        not_issued_before: None,
        claims,
    }
}

/// The bare primitive's verification of `token`'s signature, from the public
/// JWK keygate publishes (or the HMAC secret, which is not published).
enum Bare {
    Public(UnparsedPublicKey<Vec<u8>>),
    Rsa(rsa::PublicKeyComponents<Vec<u8>>),
}

fn bare_verifier(alg: SigningAlg, jwk: &Value) -> Option<Bare> {
    let field = |name: &str| B64.decode(jwk[name].as_str().unwrap()).unwrap();
    match alg {
        SigningAlg::ES256 => {
            let mut point = vec![4u8];
            point.extend(field("x"));
            point.extend(field("y"));
            Some(Bare::Public(UnparsedPublicKey::new(
                &signature::ECDSA_P256_SHA256_FIXED,
                point,
            )))
        }
        SigningAlg::EdDSA => Some(Bare::Public(UnparsedPublicKey::new(
            &signature::ED25519,
            field("x"),
        ))),
        SigningAlg::RS256 => Some(Bare::Rsa(rsa::PublicKeyComponents {
            n: field("n"),
            e: field("e"),
        })),
        SigningAlg::HS256 => None,
    }
}

fn bare_verify(bare: &Bare, input: &[u8], sig: &[u8]) -> bool {
    match bare {
        Bare::Public(key) => key.verify(input, sig).is_ok(),
        Bare::Rsa(key) => key
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, input, sig)
            .is_ok(),
    }
}

type SignFn = Box<dyn Fn(&[u8]) -> usize>;

const HS256_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// HS256 keys are never published, so keygate-verify's own cost is measured
/// on a token with the same header and claims, signed here with a known
/// secret, and a verifier holding that secret.
fn hs256_fixture(server_token: &str) -> (String, Verifier) {
    let mut parts = server_token.split('.');
    let (header, claims) = (parts.next().unwrap(), parts.next().unwrap());
    let input = format!("{header}.{claims}");
    let key = hmac::Key::new(hmac::HMAC_SHA256, HS256_SECRET);
    let token = format!("{input}.{}", B64.encode(hmac::sign(&key, input.as_bytes())));
    let header: Value = serde_json::from_slice(&B64.decode(header).unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap().to_owned();
    let vk = keygate_verify::VerifyingKey::from_hmac_secret(
        keygate_verify::Algorithm::HS256,
        HS256_SECRET,
        Some(kid),
    )
    .unwrap();
    let set = JwkSet::from_keys(vec![vk]).unwrap();
    (
        token,
        Verifier::new(set, Validation::new(ISSUER, AUDIENCE)).unwrap(),
    )
}

/// A second key of the same kind, for the bare signing baseline.
fn bare_sign(alg: SigningAlg) -> SignFn {
    match alg {
        SigningAlg::ES256 => {
            let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
            let rng = SystemRandom::new();
            Box::new(move |m| pair.sign(&rng, m).unwrap().as_ref().len())
        }
        SigningAlg::EdDSA => {
            let pair = Ed25519KeyPair::generate().unwrap();
            Box::new(move |m| pair.sign(m).as_ref().len())
        }
        SigningAlg::RS256 => {
            let pair = rsa::KeyPair::generate(rsa::KeySize::Rsa2048).unwrap();
            let rng = SystemRandom::new();
            Box::new(move |m| {
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, m, &mut out)
                    .unwrap();
                out.len()
            })
        }
        SigningAlg::HS256 => {
            let key = hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32]);
            Box::new(move |m| hmac::sign(&key, m).as_ref().len())
        }
    }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = rt.block_on(fixture::load(dir.path(), 1, &fixture::pepper()));
    let store: Arc<dyn keygate_core::store::Store> = Arc::new(store);
    let master = Arc::new(MasterKey::generate().unwrap().0);
    let clock: Arc<dyn MillisClock> = Arc::new(SystemClock);
    let mut summary = Vec::new();

    for alg in [
        SigningAlg::ES256,
        SigningAlg::EdDSA,
        SigningAlg::RS256,
        SigningAlg::HS256,
    ] {
        // A fresh database per algorithm: the first key is made at start.
        let dir = tempfile::tempdir().unwrap();
        let (alg_store, _) = rt.block_on(fixture::load(dir.path(), 1, &fixture::pepper()));
        let alg_store: Arc<dyn keygate_core::store::Store> = Arc::new(alg_store);
        let uncached = rt
            .block_on(TokenService::start(
                alg_store.clone(),
                master.clone(),
                clock.clone(),
                config(alg, 0),
            ))
            .unwrap();
        let cached = rt
            .block_on(TokenService::start(
                alg_store,
                master.clone(),
                clock.clone(),
                config(alg, 100_000),
            ))
            .unwrap();
        let token = uncached.issue(request()).unwrap().token;
        let server_token = token.clone();
        // Read per algorithm: RSA key generation and the benches before take
        // long enough to matter for `nbf`.
        let now = u64::try_from(clock.now_secs()).unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = B64.decode(sig).unwrap();
        let jwks: Value = serde_json::from_str(&uncached.jwks_json()).unwrap();
        let (hs_token, hs_verifier) = match alg {
            SigningAlg::HS256 => {
                let (t, v) = hs256_fixture(&token);
                (Some(t), Some(v))
            }
            _ => (None, None),
        };
        let (token, input, sig) = match &hs_token {
            Some(t) => {
                let (input, sig) = t.rsplit_once('.').unwrap();
                (t.clone(), input, B64.decode(sig).unwrap())
            }
            None => (token.clone(), input, sig),
        };
        let verifier = if let Some(verifier) = hs_verifier {
            Some(verifier)
        } else {
            let set = JwkSet::from_json(uncached.jwks_json().as_bytes(), &ImportOptions::remote())
                .unwrap();
            Some(Verifier::new(set, Validation::new(ISSUER, AUDIENCE)).unwrap())
        };
        // Measure successes only.
        assert!(
            rt.block_on(uncached.verify(&server_token, AUDIENCE))
                .is_ok()
        );
        if let Some(v) = &verifier {
            assert!(v.verify(&token, now).is_ok());
        }
        let bare = bare_verifier(alg, &jwks["keys"][0]);
        let hs_key = hmac::Key::new(hmac::HMAC_SHA256, HS256_SECRET);
        let sign = bare_sign(alg);
        let name = alg.as_str();

        let mut g = c.benchmark_group(format!("jwt_{name}"));
        g.bench_function("bare_sign", |b| {
            b.iter(|| black_box(sign(black_box(input.as_bytes()))))
        });
        g.bench_function("keygate_issue", |b| {
            b.iter(|| black_box(uncached.issue(request()).unwrap()))
        });
        if let Some(bare) = &bare {
            g.bench_function("bare_verify", |b| {
                b.iter(|| black_box(bare_verify(bare, black_box(input.as_bytes()), &sig)))
            });
        } else {
            g.bench_function("bare_hmac_verify", |b| {
                b.iter(|| {
                    black_box(hmac::verify(&hs_key, black_box(input.as_bytes()), &sig).is_ok())
                })
            });
        }
        if let Some(verifier) = &verifier {
            g.bench_function("keygate_verify", |b| {
                b.iter(|| black_box(verifier.verify(black_box(&token), now).unwrap()))
            });
        }
        g.bench_function("server_verify_uncached", |b| {
            b.iter(|| {
                black_box(fixture::now_or_never(
                    uncached.verify(black_box(&server_token), AUDIENCE),
                ))
            })
        });
        // Warm the cache, then measure a hit.
        rt.block_on(cached.verify(&server_token, AUDIENCE)).unwrap();
        g.bench_function("server_verify_seen_before", |b| {
            b.iter(|| {
                let v = fixture::now_or_never(cached.verify(black_box(&server_token), AUDIENCE))
                    .expect("a hit never waits");
                black_box(v.unwrap())
            })
        });
        g.finish();

        // The ratios, from medians measured here in this run.
        let (rounds, per) = if alg == SigningAlg::HS256 {
            (51, 2000)
        } else {
            (31, 50)
        };
        let bare_v = Some(match &bare {
            Some(bare) => fixture::median_ns(rounds, per, |_| {
                black_box(bare_verify(bare, black_box(input.as_bytes()), &sig));
            }),
            None => fixture::median_ns(rounds, per, |_| {
                black_box(hmac::verify(&hs_key, black_box(input.as_bytes()), &sig).is_ok());
            }),
        });
        let kg_v = verifier.as_ref().map(|v| {
            fixture::median_ns(rounds, per, |_| {
                black_box(v.verify(black_box(&token), now).is_ok());
            })
        });
        let server_v = fixture::median_ns(rounds, per, |_| {
            black_box(fixture::now_or_never(
                uncached.verify(black_box(&server_token), AUDIENCE),
            ));
        });
        let hit = fixture::median_ns(51, 2000, |_| {
            black_box(fixture::now_or_never(
                cached.verify(black_box(&server_token), AUDIENCE),
            ));
        });
        let bare_s = fixture::median_ns(rounds, per, |_| {
            black_box(sign(black_box(input.as_bytes())));
        });
        let issue = fixture::median_ns(rounds, per, |_| {
            black_box(uncached.issue(request()).is_ok());
        });
        summary.push((
            name,
            token.len(),
            bare_s,
            issue,
            bare_v,
            kg_v,
            server_v,
            hit,
        ));
    }
    drop(store);

    println!("\nsummary (medians in ns; token length in bytes):");
    println!(
        "  {:<6} {:>5} {:>10} {:>10} {:>10} {:>10} {:>7} {:>10} {:>8}",
        "alg", "len", "bare sign", "issue", "bare vfy", "keygate", "ratio", "server", "seen"
    );
    for (name, len, bare_s, issue, bare_v, kg_v, server_v, hit) in summary {
        let (bare_v, kg_v, ratio) = match (bare_v, kg_v) {
            (Some(b), Some(k)) => (
                format!("{b:.0}"),
                format!("{k:.0}"),
                format!("{:.3}x", k / b),
            ),
            _ => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "  {name:<6} {len:>5} {bare_s:>10.0} {issue:>10.0} {bare_v:>10} {kg_v:>10} {ratio:>7} \
             {server_v:>10.0} {hit:>8.0}"
        );
    }
    println!(
        "  targets: keygate/bare <= 1.15x (ES256, EdDSA, RS256); HS256 keygate verify < 2000 ns; \
         seen before < 1000 ns (the server's extra over keygate: the cache digest, revocation)"
    );

    // What a login costs: one argon2id verification at keygate's parameters.
    let stored = keygate_core::users::password::hash_now(b"correct horse battery staple").unwrap();
    let argon = fixture::median_ns(5, 3, |_| {
        let ok =
            keygate_core::users::password::verify_now(b"correct horse battery staple", &stored)
                .unwrap();
        black_box(ok);
    });
    println!(
        "\nargon2id (m = 19456 KiB, t = 2, p = 1): {:.1} ms per login on one core",
        argon / 1e6
    );
}

criterion_group!(group, benches);

fn main() {
    group();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
