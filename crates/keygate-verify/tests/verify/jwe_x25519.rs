//! ECDH-ES with X25519 recipients (`kty: "OKP"`, RFC 8037 §3.2): the
//! round trip, RFC 7748's key pair imported whole, and the refusals that
//! apply to it (small-order points, a `y`, an epk of another type, Ed25519).

use aws_lc_rs::agreement;
use aws_lc_rs::encoding::{AsBigEndian, Curve25519SeedBin};
use keygate_verify::jwe::{Decrypter, DecryptionKey, Encrypter, RecipientKey};
use keygate_verify::{Error, Jwk, base64url_encode as b64};
use serde_json::{Value, json};

use crate::jwe_common::{header_of, with_header};

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn jwk(value: &Value) -> Jwk {
    Jwk::from_json(value.to_string().as_bytes()).unwrap()
}

/// A fresh X25519 pair: the private JWK and the public one.
fn pair() -> (Value, Value) {
    let key = agreement::PrivateKey::generate(&agreement::X25519).unwrap();
    let d = AsBigEndian::<Curve25519SeedBin>::as_be_bytes(&key).unwrap();
    let x = key.compute_public_key().unwrap().as_ref().to_vec();
    let public = json!({"kty": "OKP", "crv": "X25519", "kid": "x1", "x": b64(&x)});
    let mut private = public.clone();
    private["d"] = b64(d.as_ref()).into();
    (private, public)
}

fn decrypter(private: &Value) -> Decrypter {
    Decrypter::with_key(DecryptionKey::from_jwk(&jwk(private)).unwrap()).unwrap()
}

#[test]
fn a_nested_token_to_an_x25519_key_round_trips() {
    let (private, public) = pair();
    let recipient = RecipientKey::from_jwk(&jwk(&public)).unwrap();
    assert_eq!(recipient.alg().name(), "ECDH-ES+A256KW");
    let token = Encrypter::new(recipient).encrypt_nested("a.b.c").unwrap();
    let header = header_of(&token);
    assert_eq!(header["epk"]["kty"], "OKP");
    assert_eq!(header["epk"]["crv"], "X25519");
    assert!(header["epk"].get("y").is_none());
    let decrypter = decrypter(&private);
    assert_eq!(decrypter.decrypt_nested(&token).unwrap(), "a.b.c");
    // Direct key agreement (ECDH-ES) too.
    let mut direct = public.clone();
    direct["alg"] = "ECDH-ES".into();
    let token = Encrypter::new(RecipientKey::from_jwk(&jwk(&direct)).unwrap())
        .encrypt_nested("a.b.c")
        .unwrap();
    assert_eq!(decrypter.decrypt_nested(&token).unwrap(), "a.b.c");
    // Another X25519 key cannot open it.
    let (other, _) = pair();
    assert!(self::decrypter(&other).decrypt_nested(&token).is_err());
}

/// RFC 7748 §6.1's Bob: `d` must produce exactly the published `x`.
#[test]
fn rfc_7748s_key_pair_imports_and_a_mismatch_does_not() {
    let d = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    let x = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    let private = json!({"kty": "OKP", "crv": "X25519", "x": b64(&x), "d": b64(&d)});
    let key = DecryptionKey::from_jwk(&jwk(&private)).unwrap();
    let public = json!({"kty": "OKP", "crv": "X25519", "x": b64(&x)});
    let token = Encrypter::new(RecipientKey::from_jwk(&jwk(&public)).unwrap())
        .encrypt_nested("a.b.c")
        .unwrap();
    let decrypter = Decrypter::with_key(key).unwrap();
    assert_eq!(decrypter.decrypt_nested(&token).unwrap(), "a.b.c");
    // Alice's public key beside Bob's private one.
    let alice = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    let mismatch = json!({"kty": "OKP", "crv": "X25519", "x": b64(&alice), "d": b64(&d)});
    assert!(DecryptionKey::from_jwk(&jwk(&mismatch)).is_err());
}

#[test]
fn what_does_not_fit_x25519_is_refused() {
    let (private, public) = pair();
    // A recipient of small order: the shared secret would be all zeros.
    let zero = json!({"kty": "OKP", "crv": "X25519", "x": b64(&[0u8; 32])});
    let encrypted =
        RecipientKey::from_jwk(&jwk(&zero)).map(|r| Encrypter::new(r).encrypt_nested("a.b.c"));
    assert!(
        !matches!(encrypted, Ok(Ok(_))),
        "a token to a small-order key"
    );
    // Ed25519 signs; a `y`, or the wrong length, is not X25519.
    let mut ed = public.clone();
    ed["crv"] = "Ed25519".into();
    let mut with_y = public.clone();
    with_y["y"] = public["x"].clone();
    let short = json!({"kty": "OKP", "crv": "X25519", "x": b64(&[9u8; 31])});
    for bad in [ed, with_y, short] {
        assert!(RecipientKey::from_jwk(&jwk(&bad)).is_err(), "{bad}");
    }
    // On the recipient's side: a small-order epk, or one of another type.
    let decrypter = decrypter(&private);
    let token = Encrypter::new(
        RecipientKey::from_jwk(&jwk(&json!({
            "kty": "OKP", "crv": "X25519", "x": public["x"].clone()
        })))
        .unwrap(),
    )
    .encrypt_nested("a.b.c")
    .unwrap();
    assert_eq!(decrypter.decrypt_nested(&token).unwrap(), "a.b.c");
    let mut header = header_of(&token);
    header["epk"]["x"] = b64(&[0u8; 32]).into();
    assert!(decrypter.decrypt(&with_header(&token, &header)).is_err());
    let mut header = header_of(&token);
    header["epk"]["kty"] = "EC".into();
    assert_eq!(
        decrypter.decrypt(&with_header(&token, &header)).err(),
        Some(Error::InvalidHeader { name: "epk" })
    );
}
