//! Strict unpadded base64url (RFC 7515 §2): the only decoding of token
//! segments and JWK members.
//!
//! Lenient decoders are how two parties end up disagreeing on what was
//! signed, so anything that is not the one canonical encoding is refused:
//! padding, `+` and `/`, whitespace, any other byte, and non-zero trailing
//! bits (which would let several strings decode to the same bytes).

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use std::borrow::Cow;

const STRICT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Decodes strict unpadded base64url; `None` for anything non-canonical.
/// An empty input decodes to an empty vector: callers decide whether empty is
/// acceptable.
pub(crate) fn decode(input: &str) -> Option<Vec<u8>> {
    // The engine refuses every byte outside the URL-safe alphabet (`=` too,
    // under `RequireNone`); `refuses_every_byte_outside_the_alphabet` holds
    // it to that, so no separate pass over the input is made.
    STRICT.decode(input).ok()
}

/// [`decode`] into `buf` when the result fits, so the common short segment
/// (a signature, a header) costs no allocation; a fresh vector otherwise.
/// The same bytes are accepted and refused either way.
pub(crate) fn decode_buffered<'b>(input: &str, buf: &'b mut [u8]) -> Option<Cow<'b, [u8]>> {
    if base64::decoded_len_estimate(input.len()) > buf.len() {
        return decode(input).map(Cow::Owned);
    }
    let len = STRICT.decode_slice(input, &mut *buf).ok()?;
    buf.get(..len).map(Cow::Borrowed)
}

/// Encodes unpadded base64url (used by tests and by callers building tokens).
#[must_use]
pub fn encode(input: &[u8]) -> String {
    STRICT.encode(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_round_trip() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = encode(&bytes);
            assert_eq!(decode(&text), Some(bytes));
        }
    }

    #[test]
    fn refuses_non_canonical_forms() {
        assert_eq!(decode("Zm9v"), Some(b"foo".to_vec()));
        for bad in [
            "Zm8=", "Zm9v=", "Zg==", "Zm+v", "Zm/v", "Zm9 v", " Zm9v", "Zm9v\n", "Zm\t9v", "Zm9v?",
            // "Zh" has non-zero trailing bits; "Zg" is the canonical "f".
            "Zh", "Zm9", "A",
        ] {
            assert_eq!(decode(bad), None, "{bad:?} must be refused");
        }
        assert_eq!(decode("Zg"), Some(b"f".to_vec()));
        assert_eq!(decode("Zm8"), Some(b"fo".to_vec()));
    }

    /// `decode` relies on the engine for the alphabet: every other
    /// character (each ASCII byte, two-byte and longer UTF-8 sequences), at
    /// every position of every length class, must be refused.
    #[test]
    fn refuses_every_character_outside_the_alphabet() {
        let valid = encode(b"keygate strict base64url!");
        let outside = (0..=u8::MAX)
            .map(char::from)
            .chain(['\u{100}', '\u{20ac}', '\u{fffd}', '\u{10ffff}'])
            .filter(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'));
        for c in outside {
            for len in [1, 2, 3, 4, 5, 8, valid.len()] {
                for at in 0..=len {
                    // Replacing the character at `at`, and inserting before it.
                    let replaced = format!(
                        "{}{c}{}",
                        &valid[..at.min(len - 1)],
                        &valid[at.min(len - 1) + 1..len]
                    );
                    let inserted = format!("{}{c}{}", &valid[..at], &valid[at..len]);
                    for text in [replaced, inserted] {
                        let mut buf = [0u8; 64];
                        assert_eq!(decode(&text), None, "{c:?} in {text:?}");
                        assert_eq!(decode_buffered(&text, &mut buf), None, "{c:?} in {text:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn buffered_matches_plain() {
        let mut small = [0u8; 4];
        let mut large = [0u8; 64];
        for text in [
            "", "Zg", "Zh", "Zm8", "Zm9", "Zm9v", "Zm8=", "A", "Zm9vYmFy", "Zm9vYmE", "Zm9vYmF",
        ] {
            let plain = decode(text);
            assert_eq!(
                decode_buffered(text, &mut small).map(Cow::into_owned),
                plain,
                "{text:?}"
            );
            assert_eq!(
                decode_buffered(text, &mut large).map(Cow::into_owned),
                plain,
                "{text:?}"
            );
        }
    }
}
