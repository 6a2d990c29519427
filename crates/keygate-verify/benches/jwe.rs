//! What decrypting a nested JWT costs beside the primitives it is made of:
//! ECDH-ES+A256KW/A256GCM against one P-256 agreement plus an AES-256-GCM
//! open of the same size, RSA-OAEP-256/A256GCM against one RSA-2048 OAEP
//! decryption plus the same open. Ends by printing each ratio, measured in
//! the same run.
//!
//! `cargo bench -p keygate-verify --bench jwe -- --quick`

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::signature::KeyPair as _;
use aws_lc_rs::{agreement, rsa};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use criterion::{Criterion, criterion_group, criterion_main};
use keygate_verify::jwe::{Decrypter, DecryptionKey, Encrypter, RecipientKey};
use keygate_verify::{Encryption, Jwk};
use serde_json::json;

use common::{NOW, hs256_verifier, token};

struct Recipient {
    decrypter: Arc<Decrypter>,
    encrypter: Encrypter,
}

fn ec_recipient() -> (Recipient, agreement::PrivateKey, Vec<u8>) {
    let key = agreement::PrivateKey::generate(&agreement::ECDH_P256).unwrap();
    let pkcs8 = AsDer::<Pkcs8V1Der>::as_der(&key).unwrap();
    let point = key.compute_public_key().unwrap().as_ref().to_vec();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "enc",
        "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])});
    let recipient = Recipient {
        decrypter: Arc::new(
            Decrypter::with_key(
                DecryptionKey::from_der(pkcs8.as_ref(), Some("enc".into())).unwrap(),
            )
            .unwrap(),
        ),
        encrypter: Encrypter::new(
            RecipientKey::from_jwk(&Jwk::from_json(jwk.to_string().as_bytes()).unwrap()).unwrap(),
        ),
    };
    // A second key pair's point, the peer of the bare agreement.
    let peer = agreement::PrivateKey::generate(&agreement::ECDH_P256).unwrap();
    let peer_point = peer.compute_public_key().unwrap().as_ref().to_vec();
    (recipient, key, peer_point)
}

fn rsa_recipient() -> (Recipient, rsa::OaepPrivateDecryptingKey, Vec<u8>) {
    let key = rsa::PrivateDecryptingKey::generate(rsa::KeySize::Rsa2048).unwrap();
    let pkcs8 = key.as_der().unwrap().as_ref().to_vec();
    let pair = rsa::KeyPair::from_pkcs8(&pkcs8).unwrap();
    let public = rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
    let jwk =
        json!({"kty": "RSA", "kid": "enc", "n": B64.encode(&public.n), "e": B64.encode(&public.e)});
    let oaep_public = rsa::OaepPublicEncryptingKey::new(key.public_key()).unwrap();
    let mut ciphertext = vec![0u8; oaep_public.ciphertext_size()];
    let ciphertext = oaep_public
        .encrypt(
            &rsa::OAEP_SHA256_MGF1SHA256,
            &[7u8; 32],
            &mut ciphertext,
            None,
        )
        .unwrap()
        .to_vec();
    let recipient = Recipient {
        decrypter: Arc::new(
            Decrypter::with_key(DecryptionKey::from_der(&pkcs8, Some("enc".into())).unwrap())
                .unwrap(),
        ),
        encrypter: Encrypter::new(
            RecipientKey::from_jwk(&Jwk::from_json(jwk.to_string().as_bytes()).unwrap()).unwrap(),
        ),
    };
    (
        recipient,
        rsa::OaepPrivateDecryptingKey::new(key).unwrap(),
        ciphertext,
    )
}

/// AES-256-GCM open of `len` bytes (a fresh copy each time, as the
/// decrypter makes one).
fn gcm_open_fn(len: usize) -> impl Fn() {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[9u8; 32]).unwrap());
    let mut sealed = vec![0u8; len];
    let nonce = [1u8; 12];
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(b"aad"),
        &mut sealed,
    )
    .unwrap();
    move || {
        let mut in_out = sealed.clone();
        key.open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(b"aad"),
            &mut in_out,
        )
        .unwrap();
    }
}

fn benches(c: &mut Criterion) {
    let inner = token();
    let verifier = hs256_verifier();
    let (ec, ec_private, peer_point) = ec_recipient();
    let (rsa_r, rsa_private, rsa_ciphertext) = rsa_recipient();
    let ec_token = ec.encrypter.encrypt_nested(&inner).unwrap();
    let rsa_token = rsa_r.encrypter.encrypt_nested(&inner).unwrap();
    let ec_verifier = verifier
        .clone()
        .with_decryption(Arc::clone(&ec.decrypter), Encryption::Required);
    assert!(ec_verifier.verify(&ec_token, NOW).is_ok());
    let gcm_open = gcm_open_fn(inner.len());

    let ecdh = || {
        let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, &peer_point);
        agreement::agree(&ec_private, peer, (), |z| Ok(z[0])).unwrap()
    };
    let oaep = || {
        let mut out = vec![0u8; rsa_private.min_output_size()];
        rsa_private
            .decrypt(
                &rsa::OAEP_SHA256_MGF1SHA256,
                &rsa_ciphertext,
                &mut out,
                None,
            )
            .unwrap()
            .len()
    };

    let mut g = c.benchmark_group(format!("jwe_{}B_inner", inner.len()));
    g.bench_function("bare_ecdh_p256", |b| b.iter(|| black_box(ecdh())));
    g.bench_function("bare_rsa2048_oaep256_decrypt", |b| {
        b.iter(|| black_box(oaep()))
    });
    g.bench_function("bare_aes256gcm_open", |b| b.iter(&gcm_open));
    g.bench_function("verify_plain_jws", |b| {
        b.iter(|| verifier.verify(black_box(&inner), NOW).unwrap())
    });
    g.bench_function("decrypt_ecdh_es_a256kw_a256gcm", |b| {
        b.iter(|| ec.decrypter.decrypt_nested(black_box(&ec_token)).unwrap())
    });
    g.bench_function("decrypt_rsa_oaep_256_a256gcm", |b| {
        b.iter(|| {
            rsa_r
                .decrypter
                .decrypt_nested(black_box(&rsa_token))
                .unwrap()
        })
    });
    g.bench_function("decrypt_and_verify_ecdh_es", |b| {
        b.iter(|| ec_verifier.verify(black_box(&ec_token), NOW).unwrap())
    });
    g.bench_function("encrypt_ecdh_es_a256kw_a256gcm", |b| {
        b.iter(|| ec.encrypter.encrypt_nested(black_box(&inner)).unwrap())
    });
    g.finish();

    // Ratios measured here, in one run, so machine noise hits both sides.
    let ecdh_gcm = median_ns(|| {
        black_box(ecdh());
        gcm_open();
    });
    let oaep_gcm = median_ns(|| {
        black_box(oaep());
        gcm_open();
    });
    let ec_decrypt = median_ns(|| {
        black_box(ec.decrypter.decrypt_nested(&ec_token).unwrap());
    });
    let rsa_decrypt = median_ns(|| {
        black_box(rsa_r.decrypter.decrypt_nested(&rsa_token).unwrap());
    });
    println!(
        "ECDH-ES+A256KW/A256GCM decrypt {:.1} us vs ECDH + AES-GCM open {:.1} us: {:.2}x",
        ec_decrypt / 1e3,
        ecdh_gcm / 1e3,
        ec_decrypt / ecdh_gcm
    );
    println!(
        "RSA-OAEP-256/A256GCM decrypt {:.1} us vs RSA-OAEP decrypt + AES-GCM open {:.1} us: {:.2}x",
        rsa_decrypt / 1e3,
        oaep_gcm / 1e3,
        rsa_decrypt / oaep_gcm
    );
}

/// Median over 7 batches of the time per call, in nanoseconds.
fn median_ns(f: impl Fn()) -> f64 {
    let mut runs: Vec<f64> = (0..7)
        .map(|_| {
            let start = Instant::now();
            let mut n = 0u32;
            while start.elapsed() < Duration::from_millis(150) {
                f();
                n += 1;
            }
            start.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[3]
}

criterion_group!(group, benches);
criterion_main!(group);
