//! Strict unpadded base64url (RFC 7515 §2): the only decoding of token
//! segments and JWK members.
//!
//! Lenient decoders are how two parties end up disagreeing on what was
//! signed, so anything that is not the one canonical encoding is refused:
//! padding, `+` and `/`, whitespace, any other byte, and non-zero trailing
//! bits (which would let several strings decode to the same bytes).

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

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
    // The engine already refuses every byte outside the alphabet; the explicit
    // check documents the rule and makes it independent of engine defaults.
    if !input
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    STRICT.decode(input).ok()
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
}
