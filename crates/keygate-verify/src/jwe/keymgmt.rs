//! Key management (RFC 7518 §4): recovering the CEK on the recipient's side
//! and producing it on the sender's.
//!
//! RFC 7516 §11.5: when unwrapping or RSA decryption fails, or yields a key
//! of the wrong length, the recipient carries on with a random CEK, so the
//! failure surfaces as the same authentication failure, after the same
//! work, as a tampered ciphertext. Only faults visible in the header (a bad
//! `epk`, a missing `iv`) are told apart, and they tell the sender nothing
//! it did not write itself.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::key_wrap::{AES_128, AES_256, AesKek, KeyWrap};
use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm};
use aws_lc_rs::{agreement, digest, rand};
use serde_json::{Map, Value, json};

use super::algs::{ContentEncryption, KeyManagement};
use super::header::JweHeader;
use super::key::{Curve, DecryptionKey, Private};
use super::recipient::{Public, RecipientKey};
use crate::{Error, b64};

/// The CEK for `header` from `encrypted_key`, or a random one of the right
/// length where the key management itself fails (see the module note).
pub(crate) fn recover_cek(
    key: &DecryptionKey,
    header: &JweHeader,
    encrypted_key: &[u8],
) -> Result<Vec<u8>, Error> {
    let enc = header.enc;
    let recovered = match (&key.private, header.alg) {
        (Private::Symmetric(secret), KeyManagement::Dir) => Some(secret.clone()),
        (Private::Symmetric(kek), alg @ (KeyManagement::A128Kw | KeyManagement::A256Kw)) => {
            unwrap_aes_kw(alg, kek, encrypted_key)
        }
        (Private::Symmetric(kek), alg) if alg.key_kind() == super::algs::KeyKind::Symmetric => {
            let (Some(iv), Some(tag)) = (&header.iv, &header.tag) else {
                return Err(Error::InvalidHeader { name: "iv" });
            };
            if iv.len() != aead::NONCE_LEN || tag.len() != aead::MAX_TAG_LEN {
                return Err(Error::InvalidHeader { name: "tag" });
            }
            unwrap_aes_gcm(kek, iv, tag, encrypted_key)
        }
        (Private::Ec(curve, private), alg) if alg.key_kind() == super::algs::KeyKind::Ec => {
            let z = agree(*curve, private, header)?;
            derive_or_unwrap(alg, enc, &z, header, encrypted_key)
        }
        (Private::Rsa(rsa), alg) => {
            let oaep = match alg {
                KeyManagement::RsaOaep => &OAEP_SHA1_MGF1SHA1,
                KeyManagement::RsaOaep256 => &OAEP_SHA256_MGF1SHA256,
                _ => return Err(Error::KeyAlgorithmMismatch),
            };
            let mut out = vec![0u8; rsa.min_output_size()];
            rsa.decrypt(oaep, encrypted_key, &mut out, None)
                .ok()
                .map(|cek| cek.to_vec())
        }
        _ => return Err(Error::KeyAlgorithmMismatch),
    };
    match recovered {
        Some(cek) if cek.len() == enc.key_len() => Ok(cek),
        _ => random_key(enc.key_len()).ok_or(Error::Decryption),
    }
}

fn unwrap_aes_kw(alg: KeyManagement, kek: &[u8], wrapped: &[u8]) -> Option<Vec<u8>> {
    let cipher = if alg.wrap_key_len() == Some(16) {
        &AES_128
    } else {
        &AES_256
    };
    let kek = AesKek::new(cipher, kek).ok()?;
    let mut out = vec![0u8; wrapped.len()];
    kek.unwrap(wrapped, &mut out).ok().map(|cek| cek.to_vec())
}

fn unwrap_aes_gcm(kek: &[u8], iv: &[u8], tag: &[u8], wrapped: &[u8]) -> Option<Vec<u8>> {
    let key = gcm_kek(kek)?;
    let nonce = Nonce::try_assume_unique_for_key(iv).ok()?;
    let mut in_out = [wrapped, tag].concat();
    key.open_in_place(nonce, Aad::empty(), &mut in_out)
        .ok()
        .map(|cek| cek.to_vec())
}

fn gcm_kek(kek: &[u8]) -> Option<LessSafeKey> {
    let alg = match kek.len() {
        16 => &aead::AES_128_GCM,
        24 => &aead::AES_192_GCM,
        32 => &aead::AES_256_GCM,
        _ => return None,
    };
    UnboundKey::new(alg, kek).ok().map(LessSafeKey::new)
}

/// ECDH with the header's `epk`, which must be a valid point on the key's
/// own curve: a point off the curve (the invalid-curve attack) or on
/// another curve is refused before any agreement.
fn agree(
    curve: Curve,
    private: &agreement::PrivateKey,
    header: &JweHeader,
) -> Result<Vec<u8>, Error> {
    let bad = Error::InvalidHeader { name: "epk" };
    let epk = header.epk.as_ref().ok_or(bad.clone())?;
    if epk.crv.as_deref() != Some(curve.name()) || epk.kty != curve.kty() {
        return Err(bad);
    }
    let (_, peer) = curve.public_of(epk).map_err(|_| bad.clone())?;
    agreement::agree(private, peer, bad, |z| Ok(z.to_vec()))
}

fn derive_or_unwrap(
    alg: KeyManagement,
    enc: ContentEncryption,
    z: &[u8],
    header: &JweHeader,
    encrypted_key: &[u8],
) -> Option<Vec<u8>> {
    if alg == KeyManagement::EcdhEs {
        return Some(concat_kdf(
            z,
            enc.name(),
            &header.apu,
            &header.apv,
            enc.key_len(),
        ));
    }
    let kek_len = alg.wrap_key_len()?;
    let kek = concat_kdf(z, alg.name(), &header.apu, &header.apv, kek_len);
    let wrap = if kek_len == 16 {
        KeyManagement::A128Kw
    } else {
        KeyManagement::A256Kw
    };
    unwrap_aes_kw(wrap, &kek, encrypted_key)
}

/// The Concat KDF of NIST SP 800-56A as profiled by RFC 7518 §4.6.2, over
/// SHA-256. aws-lc-rs has no such KDF; it is a few digest rounds.
pub(crate) fn concat_kdf(z: &[u8], alg_id: &str, apu: &[u8], apv: &[u8], len: usize) -> Vec<u8> {
    let field = |bytes: &[u8]| {
        let mut out = u32::try_from(bytes.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(bytes);
        out
    };
    let key_bits = u32::try_from(len * 8).unwrap_or(u32::MAX);
    let mut other_info = field(alg_id.as_bytes());
    other_info.extend(field(apu));
    other_info.extend(field(apv));
    other_info.extend_from_slice(&key_bits.to_be_bytes());
    let mut out = Vec::with_capacity(len + digest::SHA256_OUTPUT_LEN);
    let mut counter: u32 = 1;
    while out.len() < len {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&counter.to_be_bytes());
        ctx.update(z);
        ctx.update(&other_info);
        out.extend_from_slice(ctx.finish().as_ref());
        counter += 1;
    }
    out.truncate(len);
    out
}

fn random_key(len: usize) -> Option<Vec<u8>> {
    let mut key = vec![0u8; len];
    rand::fill(&mut key).ok()?;
    Some(key)
}

/// What the sender's key management produced: the CEK, the JWE Encrypted
/// Key, and header members to add (`epk`).
pub(crate) struct Wrapped {
    pub cek: Vec<u8>,
    pub encrypted_key: Vec<u8>,
    pub header: Map<String, Value>,
}

/// A fresh CEK for `enc`, delivered to `recipient`.
pub(crate) fn wrap_new_cek(
    recipient: &RecipientKey,
    enc: ContentEncryption,
) -> Result<Wrapped, Error> {
    let failed = |what| Error::Encryption(what);
    let alg = recipient.alg();
    match &recipient.public {
        Public::Rsa(key) => {
            let oaep: &'static OaepAlgorithm = match alg {
                KeyManagement::RsaOaep => &OAEP_SHA1_MGF1SHA1,
                _ => &OAEP_SHA256_MGF1SHA256,
            };
            let cek = random_key(enc.key_len()).ok_or(failed("no randomness"))?;
            let mut out = vec![0u8; key.ciphertext_size()];
            let encrypted_key = key
                .encrypt(oaep, &cek, &mut out, None)
                .map_err(|_| failed("RSA-OAEP encryption failed"))?
                .to_vec();
            Ok(Wrapped {
                cek,
                encrypted_key,
                header: Map::new(),
            })
        }
        Public::Ec(curve, point) => ecdh_sender(*curve, point, alg, enc),
    }
}

/// The ephemeral public key as the header's `epk`: `x` and `y` of the
/// uncompressed point for EC, the 32 bytes as `x` for X25519.
fn epk_jwk(curve: Curve, public: &[u8]) -> Option<serde_json::Value> {
    if curve == Curve::X25519 {
        return Some(json!({"kty": "OKP", "crv": "X25519", "x": b64::encode(public)}));
    }
    let coord = curve.coord_len();
    let (x, y) = (public.get(1..=coord)?, public.get(1 + coord..)?);
    Some(json!({"kty": "EC", "crv": curve.name(), "x": b64::encode(x), "y": b64::encode(y)}))
}

fn ecdh_sender(
    curve: Curve,
    point: &[u8],
    alg: KeyManagement,
    enc: ContentEncryption,
) -> Result<Wrapped, Error> {
    let failed = || Error::Encryption("ECDH-ES failed");
    let rng = rand::SystemRandom::new();
    let ephemeral =
        agreement::EphemeralPrivateKey::generate(curve.agreement(), &rng).map_err(|_| failed())?;
    let epk_point = ephemeral.compute_public_key().map_err(|_| failed())?;
    let epk = epk_jwk(curve, epk_point.as_ref()).ok_or_else(failed)?;
    let peer = agreement::UnparsedPublicKey::new(curve.agreement(), point);
    // A small-order X25519 key makes the secret all zeros: aws-lc refuses.
    let z = agreement::agree_ephemeral(ephemeral, peer, failed(), |z| Ok(z.to_vec()))?;
    let mut header = Map::new();
    header.insert("epk".into(), epk);
    if alg == KeyManagement::EcdhEs {
        let cek = concat_kdf(&z, enc.name(), &[], &[], enc.key_len());
        return Ok(Wrapped {
            cek,
            encrypted_key: Vec::new(),
            header,
        });
    }
    let kek_len = alg.wrap_key_len().ok_or_else(failed)?;
    let kek = concat_kdf(&z, alg.name(), &[], &[], kek_len);
    let cipher = if kek_len == 16 { &AES_128 } else { &AES_256 };
    let cek = random_key(enc.key_len()).ok_or_else(failed)?;
    let kek = AesKek::new(cipher, &kek).map_err(|_| failed())?;
    let mut out = vec![0u8; cek.len() + 8];
    let encrypted_key = kek.wrap(&cek, &mut out).map_err(|_| failed())?.to_vec();
    Ok(Wrapped {
        cek,
        encrypted_key,
        header,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7518 Appendix C: the ECDH-ES key agreement example, whose
    /// derived A128GCM key is `VqqN6vgjbSBcIijNcacQGg`.
    #[test]
    fn rfc7518_appendix_c_concat_kdf() {
        let alice_d = b64::decode("0_NxaRPUMQoAJt50Gz8YiTr8gRTwyEaCumd-MToTmIo").unwrap();
        let bob_x = b64::decode("weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ").unwrap();
        let bob_y = b64::decode("e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck").unwrap();
        let alice =
            agreement::PrivateKey::from_private_key(&agreement::ECDH_P256, &alice_d).unwrap();
        let bob = Curve::P256.point(&bob_x, &bob_y).unwrap();
        let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, &bob);
        let z = agreement::agree(&alice, peer, (), |z| Ok(z.to_vec())).unwrap();
        let key = concat_kdf(&z, "A128GCM", b"Alice", b"Bob", 16);
        assert_eq!(b64::encode(&key), "VqqN6vgjbSBcIijNcacQGg");
    }

    /// RFC 7516 §11.5: a failed unwrap is not an error here but a random
    /// CEK of the right length, so the failure shows up later as the same
    /// tag mismatch as any tampering.
    #[test]
    fn a_failed_unwrap_continues_with_a_random_cek() {
        use crate::jwe::algs::JwePolicy;
        use crate::jwe::header;
        let jwk =
            crate::Jwk::from_json(br#"{"kty":"oct","k":"GawgguFyGrWKav7AX4VKUg","alg":"A128KW"}"#)
                .unwrap();
        let key = DecryptionKey::from_jwk(&jwk).unwrap();
        let header = header::parse(
            br#"{"alg":"A128KW","enc":"A128CBC-HS256"}"#,
            &JwePolicy::all(),
        )
        .unwrap();
        let garbage = [0x5au8; 40];
        let first = recover_cek(&key, &header, &garbage).unwrap();
        let second = recover_cek(&key, &header, &garbage).unwrap();
        assert_eq!(first.len(), 32);
        assert_ne!(first, second, "a fresh random CEK each time");
        // A wrapped key of the wrong length too.
        assert_eq!(
            recover_cek(&key, &header, &garbage[..17]).unwrap().len(),
            32
        );
    }

    #[test]
    fn kdf_output_longer_than_one_round() {
        let long = concat_kdf(b"z", "A256CBC-HS512", &[], &[], 64);
        assert_eq!(long.len(), 64);
        assert_ne!(long[..32], long[32..]);
    }
}
