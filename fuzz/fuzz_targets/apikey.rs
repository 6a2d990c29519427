//! API keys (`kg_<env>_<secret><check>`) and key ids (`key_<16 base62>`).
//!
//! The checksum is recomputed here from DESIGN.md's contract (CRC32 of the
//! rest, 6 base62 digits, big-endian) independently of keygate-core's code,
//! so the fuzzer also reaches the keys that pass, and the two must agree.

#![no_main]

use keygate_core::{ApiKey, KeyEnv, KeyId};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SECRET_CHARS: usize = 43;

fn check_digits(head: &str) -> String {
    let mut crc = u64::from(crc32fast::hash(head.as_bytes()));
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(crc % 62) as usize];
        crc /= 62;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

fn check(data: &[u8]) {
    if let Some(text) = keygate_fuzz::text(data) {
        parsed_key_is_the_input(text);
        parsed_id_is_the_input(text);
    }
    well_formed_key_parses(data);
}

/// Whatever parses re-serializes to the input, and every entry point agrees.
fn parsed_key_is_the_input(text: &str) {
    let parsed = ApiKey::parse(text);
    assert_eq!(parsed.is_ok(), ApiKey::check(text).is_ok());
    let Ok(key) = parsed else { return };
    assert_eq!(key.expose(), text);
    assert_eq!(ApiKey::check_shape(text).ok(), Some(key.env()));
    let head = format!("kg_{}_", key.env().as_str());
    assert!(text.starts_with(&head));
    assert!(text.starts_with(&key.display_prefix()));
    // The display prefix must never hold more than a few secret characters.
    assert!(key.display_prefix().len() <= head.len() + 4);
    assert!(!format!("{key:?}").contains(&text[head.len()..]));
    // The checksum is the independent one: a key with a wrong one never parses.
    let (rest, check) = text.split_at(text.len() - 6);
    assert_eq!(check, check_digits(rest));
}

fn parsed_id_is_the_input(text: &str) {
    if let Ok(id) = KeyId::parse(text) {
        assert_eq!(id.as_str(), text);
        assert_eq!(id.to_string(), text);
        assert_eq!(text.len(), 20);
    }
}

/// Builds a key that meets the contract from the input bytes (base62 digits
/// chosen by the bytes): it must parse, and any one changed character of its
/// secret must make it fail.
fn well_formed_key_parses(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let env = if first & 1 == 0 {
        KeyEnv::Live
    } else {
        KeyEnv::Test
    };
    let mut text = format!("kg_{}_", env.as_str());
    let secret_start = text.len();
    text.extend(
        (0..SECRET_CHARS)
            .map(|i| char::from(ALPHABET[usize::from(*rest.get(i).unwrap_or(&0)) % 62])),
    );
    text.push_str(&check_digits(&text));
    let key = ApiKey::parse(&text).unwrap_or_else(|e| panic!("a well-formed key is refused: {e}"));
    assert_eq!(key.env(), env);
    assert_eq!(key.expose(), text);

    let at = secret_start + usize::from(first >> 1) % SECRET_CHARS;
    let mut bytes = text.into_bytes();
    let old = bytes[at];
    bytes[at] = ALPHABET
        [(ALPHABET.iter().position(|&c| c == old).unwrap_or(0) + 1 + usize::from(first) % 61) % 62];
    let changed = String::from_utf8(bytes).unwrap_or_default();
    assert!(
        ApiKey::parse(&changed).is_err(),
        "a key with a changed character parses"
    );
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
