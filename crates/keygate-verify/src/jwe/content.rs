//! Content encryption (RFC 7518 §5): AES-GCM, and AES-CBC with HMAC-SHA-2
//! in the composite construction of §5.2.
//!
//! The composite is written here because aws-lc-rs has its parts but not
//! the whole: the MAC covers `AAD || IV || ciphertext || AL`, is compared
//! in constant time, and only then is CBC decrypted, so a padding error is
//! only ever seen for a ciphertext the sender really produced (no padding
//! oracle). Every failure is the one [`Error::Decryption`].

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    self, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey,
    UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::{constant_time, hmac, rand};

use super::algs::ContentEncryption;
use crate::Error;

/// The output of [`encrypt`].
pub(crate) struct Sealed {
    pub iv: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub tag: Vec<u8>,
}

/// Decrypts and authenticates; the lengths of `cek`, `iv` and `tag` were
/// checked by the caller, and are checked again here so no primitive ever
/// sees a wrong one.
pub(crate) fn decrypt(
    enc: ContentEncryption,
    cek: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Vec<u8>, Error> {
    if cek.len() != enc.key_len() || iv.len() != enc.iv_len() || tag.len() != enc.tag_len() {
        return Err(Error::Decryption);
    }
    if enc.is_gcm() {
        let key = gcm_key(enc, cek)?;
        let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| Error::Decryption)?;
        let mut in_out = Vec::with_capacity(ciphertext.len() + tag.len());
        in_out.extend_from_slice(ciphertext);
        in_out.extend_from_slice(tag);
        let plaintext = key
            .open_in_place(nonce, Aad::from(aad), &mut in_out)
            .map_err(|_| Error::Decryption)?;
        let len = plaintext.len();
        in_out.truncate(len);
        return Ok(in_out);
    }
    let (mac_key, enc_key, hmac_alg, block_alg) = cbc_parts(enc, cek)?;
    let mac = cbc_mac(hmac_alg, mac_key, aad, iv, ciphertext);
    let expected = mac.as_ref().get(..tag.len()).ok_or(Error::Decryption)?;
    constant_time::verify_slices_are_equal(expected, tag).map_err(|_| Error::Decryption)?;
    let iv: [u8; 16] = iv.try_into().map_err(|_| Error::Decryption)?;
    let key = UnboundCipherKey::new(block_alg, enc_key).map_err(|_| Error::Decryption)?;
    let key = PaddedBlockDecryptingKey::cbc_pkcs7(key).map_err(|_| Error::Decryption)?;
    let mut in_out = ciphertext.to_vec();
    let len = key
        .decrypt(&mut in_out, DecryptionContext::Iv128(FixedLength::from(iv)))
        .map_err(|_| Error::Decryption)?
        .len();
    in_out.truncate(len);
    Ok(in_out)
}

/// Encrypts under a fresh random IV.
pub(crate) fn encrypt(
    enc: ContentEncryption,
    cek: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Sealed, Error> {
    let failed = || Error::Encryption("content encryption failed");
    if cek.len() != enc.key_len() {
        return Err(failed());
    }
    let mut iv = vec![0u8; enc.iv_len()];
    rand::fill(&mut iv).map_err(|_| failed())?;
    if enc.is_gcm() {
        let key = gcm_key(enc, cek).map_err(|_| failed())?;
        let nonce = Nonce::try_assume_unique_for_key(&iv).map_err(|_| failed())?;
        let mut ciphertext = plaintext.to_vec();
        let tag = key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut ciphertext)
            .map_err(|_| failed())?;
        return Ok(Sealed {
            iv,
            ciphertext,
            tag: tag.as_ref().to_vec(),
        });
    }
    let (mac_key, enc_key, hmac_alg, block_alg) = cbc_parts(enc, cek).map_err(|_| failed())?;
    let iv_block: [u8; 16] = iv.as_slice().try_into().map_err(|_| failed())?;
    let key = UnboundCipherKey::new(block_alg, enc_key).map_err(|_| failed())?;
    let key = PaddedBlockEncryptingKey::cbc_pkcs7(key).map_err(|_| failed())?;
    let mut ciphertext = plaintext.to_vec();
    key.less_safe_encrypt(
        &mut ciphertext,
        EncryptionContext::Iv128(FixedLength::from(iv_block)),
    )
    .map_err(|_| failed())?;
    let mac = cbc_mac(hmac_alg, mac_key, aad, &iv, &ciphertext);
    let tag = mac
        .as_ref()
        .get(..enc.tag_len())
        .ok_or_else(failed)?
        .to_vec();
    Ok(Sealed {
        iv,
        ciphertext,
        tag,
    })
}

fn gcm_key(enc: ContentEncryption, cek: &[u8]) -> Result<LessSafeKey, Error> {
    let alg = match enc {
        ContentEncryption::A128Gcm => &aead::AES_128_GCM,
        ContentEncryption::A192Gcm => &aead::AES_192_GCM,
        ContentEncryption::A256Gcm => &aead::AES_256_GCM,
        _ => return Err(Error::Decryption),
    };
    let key = UnboundKey::new(alg, cek).map_err(|_| Error::Decryption)?;
    Ok(LessSafeKey::new(key))
}

type CbcParts<'k> = (
    &'k [u8],
    &'k [u8],
    hmac::Algorithm,
    &'static cipher::Algorithm,
);

/// RFC 7518 §5.2.2.1: the first half of the CEK is the MAC key, the second
/// the encryption key.
fn cbc_parts(enc: ContentEncryption, cek: &[u8]) -> Result<CbcParts<'_>, Error> {
    let (hmac_alg, block_alg) = match enc {
        ContentEncryption::A128CbcHs256 => (hmac::HMAC_SHA256, &cipher::AES_128),
        ContentEncryption::A192CbcHs384 => (hmac::HMAC_SHA384, &cipher::AES_192),
        ContentEncryption::A256CbcHs512 => (hmac::HMAC_SHA512, &cipher::AES_256),
        _ => return Err(Error::Decryption),
    };
    let (mac_key, enc_key) = cek.split_at(cek.len() / 2);
    Ok((mac_key, enc_key, hmac_alg, block_alg))
}

fn cbc_mac(
    alg: hmac::Algorithm,
    mac_key: &[u8],
    aad: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
) -> hmac::Tag {
    let key = hmac::Key::new(alg, mac_key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(aad);
    ctx.update(iv);
    ctx.update(ciphertext);
    // AL: the AAD's length in bits, as a 64-bit big-endian number.
    let aad_bits = (aad.len() as u64).wrapping_mul(8);
    ctx.update(&aad_bits.to_be_bytes());
    ctx.sign()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_any_change_fails() {
        for enc in ContentEncryption::ALL {
            let cek: Vec<u8> = (0..enc.key_len()).map(|i| i as u8).collect();
            let sealed = encrypt(enc, &cek, b"aad", b"claims").unwrap();
            assert_eq!(sealed.tag.len(), enc.tag_len());
            let open =
                |iv: &[u8], aad: &[u8], ct: &[u8], tag: &[u8]| decrypt(enc, &cek, iv, aad, ct, tag);
            assert_eq!(
                open(&sealed.iv, b"aad", &sealed.ciphertext, &sealed.tag).unwrap(),
                b"claims"
            );
            let mut tag = sealed.tag.clone();
            tag[0] ^= 1;
            assert_eq!(
                open(&sealed.iv, b"aad", &sealed.ciphertext, &tag),
                Err(Error::Decryption)
            );
            assert_eq!(
                open(&sealed.iv, b"aae", &sealed.ciphertext, &sealed.tag),
                Err(Error::Decryption)
            );
            let short = &sealed.tag[..sealed.tag.len() - 1];
            assert_eq!(
                open(&sealed.iv, b"aad", &sealed.ciphertext, short),
                Err(Error::Decryption)
            );
        }
    }

    /// RFC 7518 Appendix B.1: AES_128_CBC_HMAC_SHA_256 known answer.
    #[test]
    fn rfc7518_b1_known_answer() {
        let cek: Vec<u8> = (0u8..32).collect();
        let plaintext = b"A cipher system must not be required to be secret, and it must be able to fall into the hands of the enemy without inconvenience";
        let aad = b"The second principle of Auguste Kerckhoffs";
        let iv = [
            0x1a, 0xf3, 0x8c, 0x2d, 0xc2, 0xb9, 0x6f, 0xfd, 0xd8, 0x66, 0x94, 0x09, 0x23, 0x41,
            0xbc, 0x04,
        ];
        let tag = [
            0x65, 0x2c, 0x3f, 0xa3, 0x6b, 0x0a, 0x7c, 0x5b, 0x32, 0x19, 0xfa, 0xb3, 0xa3, 0x0b,
            0xc1, 0xc4,
        ];
        let mut ciphertext = plaintext.to_vec();
        let key = UnboundCipherKey::new(&cipher::AES_128, &cek[16..]).unwrap();
        PaddedBlockEncryptingKey::cbc_pkcs7(key)
            .unwrap()
            .less_safe_encrypt(
                &mut ciphertext,
                EncryptionContext::Iv128(FixedLength::from(iv)),
            )
            .unwrap();
        let opened = decrypt(
            ContentEncryption::A128CbcHs256,
            &cek,
            &iv,
            aad,
            &ciphertext,
            &tag,
        )
        .unwrap();
        assert_eq!(opened, plaintext);
    }
}
