//! The common case of [`super::parse_members`] without serde: a flat object
//! of plain strings, small non-negative integers, literals and flat arrays of
//! those, which is every header and claims set keygate issues.
//!
//! It never refuses anything. It accepts a strict subset of what the serde
//! path accepts, hands the sink exactly the members that path would (same
//! names, same values, same order), and answers `None` at the first byte
//! outside the subset (an escape, a fraction, a sign, a nested object, a
//! repeated name, anything malformed) so the caller parses the whole input
//! again the strict way, which then finds the same members or reports the
//! error it always did.

use serde_json::Value;

use super::Members;

/// Parses `bytes` into `members` if it is in the subset; `None` otherwise
/// (the sink may then hold part of the input and must be discarded).
pub(super) fn parse<'de, M: Members<'de>>(bytes: &'de [u8], members: &mut M) -> Option<()> {
    // Outside strings an accepted document is ASCII, so the whole being UTF-8
    // is the same as each string being UTF-8 (what serde_json checks), and
    // one pass is cheaper than one per string.
    let text = std::str::from_utf8(bytes).ok()?;
    let mut at = Cursor {
        text,
        bytes,
        pos: 0,
    };
    at.ws();
    at.eat(b'{')?;
    at.ws();
    if at.peek()? == b'}' {
        at.pos += 1;
    } else {
        loop {
            let name = at.string()?;
            at.ws();
            at.eat(b':')?;
            at.ws();
            let value = at.value(true)?;
            // A duplicate: the strict path reports it.
            members.try_put(name, value)?;
            at.ws();
            match at.next()? {
                b',' => at.ws(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    at.ws();
    (at.pos == bytes.len()).then_some(())
}

struct Cursor<'de> {
    text: &'de str,
    /// `text` as bytes.
    bytes: &'de [u8],
    pos: usize,
}

impl<'de> Cursor<'de> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn eat(&mut self, expected: u8) -> Option<()> {
        (self.next()? == expected).then_some(())
    }

    /// JSON whitespace (RFC 8259 §2), exactly serde_json's set.
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'de str> {
        self.eat(b'"')?;
        let start = self.pos;
        let len = string_end(self.bytes.get(start..)?)?;
        if self.bytes.get(start + len) != Some(&b'"') {
            return None;
        }
        self.pos = start + len + 1;
        // Both ends are next to an ASCII quote, so on character boundaries.
        self.text.get(start..start + len)
    }

    /// A string, an integer in `0..10^19` (so it fits `u64`: serde_json
    /// reads larger ones as floats), `true`, `false`, `null` or, at the top
    /// level only, a flat array of those.
    fn value(&mut self, array_allowed: bool) -> Option<Value> {
        match self.peek()? {
            b'"' => Some(Value::String(self.string()?.to_owned())),
            b'0'..=b'9' => self.integer(),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            b'[' if array_allowed => self.array(),
            _ => None,
        }
    }

    fn integer(&mut self) -> Option<Value> {
        let rest = self.bytes.get(self.pos..)?;
        let len = rest
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(rest.len());
        // A leading zero (serde_json refuses "01"), a fraction, an exponent
        // or more digits than surely fit: the strict path decides.
        if len == 0 || len > 19 || (len > 1 && rest.first() == Some(&b'0')) {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = rest.get(len) {
            return None;
        }
        let mut value: u64 = 0;
        for &digit in rest.get(..len)? {
            value = value * 10 + u64::from(digit - b'0');
        }
        self.pos += len;
        Some(Value::from(value))
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Option<Value> {
        if self.bytes.get(self.pos..)?.starts_with(word) {
            self.pos += word.len();
            Some(value)
        } else {
            None
        }
    }

    fn array(&mut self) -> Option<Value> {
        self.eat(b'[')?;
        self.ws();
        let mut items = Vec::new();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(Value::Array(items));
        }
        loop {
            items.push(self.value(false)?);
            self.ws();
            match self.next()? {
                b',' => self.ws(),
                b']' => return Some(Value::Array(items)),
                _ => return None,
            }
        }
    }
}

/// Whether a byte ends the plain part of a string: a quote, a backslash or a
/// control character (which JSON forbids unescaped).
fn ends_string(byte: u8) -> bool {
    byte == b'"' || byte == b'\\' || byte < 0x20
}

/// The index of the first byte for which [`ends_string`] holds, eight bytes
/// at a time: in each word, the lowest byte flagged by any of the three
/// tests is exact (a test can only misflag bytes above one it rightly flags).
fn string_end(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let zero = |word: u64| word.wrapping_sub(ONES) & !word;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let found = (zero(word ^ (ONES * u64::from(b'"')))
            | zero(word ^ (ONES * u64::from(b'\\')))
            | (word.wrapping_sub(ONES * 0x20) & !word))
            & HIGH;
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let tail = chunks.remainder();
    tail.iter()
        .position(|&b| ends_string(b))
        .map(|i| offset + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn strict(bytes: &[u8]) -> Result<Map<String, Value>, crate::Error> {
        let mut map = Map::new();
        super::super::parse_members_strict(bytes, &mut map).map(|()| map)
    }

    fn simple(bytes: &[u8]) -> Option<Map<String, Value>> {
        let mut map = Map::new();
        parse(bytes, &mut map).map(|()| map)
    }

    /// What the simple path accepts, the strict path accepts with the same
    /// members. Returns whether the simple path took it.
    fn agree(bytes: &[u8]) -> bool {
        match simple(bytes) {
            Some(fast) => {
                assert_eq!(
                    strict(bytes),
                    Ok(fast),
                    "{:?}",
                    String::from_utf8_lossy(bytes)
                );
                true
            }
            None => false,
        }
    }

    const HEADER: &str = r#"{"alg":"HS256","kid":"k_2026-11-28T01:00:00Z_3f9a1c","typ":"at+jwt"}"#;
    const CLAIMS: &str = r#"{"iss":"https://auth.example.com","sub":"usr_4k","aud":["api","x"],"iat":1800000000,"exp":1800000900,"roles":["customer","beta"],"ok":true,"no":false,"n":null,"e":[],"z":0,"u":"é€"}"#;

    #[test]
    fn string_end_finds_the_first_special_byte() {
        for filler in [
            b'a',
            b' ',
            0x21,
            0x7f,
            0x80,
            0xff,
            0x01 + 0x20,
            b'"' + 1,
            b'\\' + 1,
        ] {
            for len in 0..24 {
                for at in 0..len {
                    for byte in 0..=u8::MAX {
                        let mut bytes = vec![filler; len];
                        bytes[at] = byte;
                        // A second special byte later must not matter.
                        if at + 2 < len {
                            bytes[at + 2] = b'"';
                        }
                        let naive = bytes.iter().position(|&b| ends_string(b));
                        assert_eq!(string_end(&bytes), naive, "{bytes:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn keygate_shapes_take_the_simple_path() {
        for doc in [
            HEADER,
            CLAIMS,
            "{}",
            " { } ",
            "\t{\r\n\"a\" : [ 1 , \"b\" , true ] ,\n\"c\":\"\"}\n",
            r#"{"max":9999999999999999999}"#,
            "{\"del\":\"\u{7f}\"}",
        ] {
            assert!(agree(doc.as_bytes()), "{doc}");
        }
    }

    #[test]
    fn leaves_everything_else_to_the_strict_path() {
        for doc in [
            r#"{"a\u0062":1}"#,
            r#"{"a":"\n"}"#,
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            r#"{"a":1E3}"#,
            r#"{"a":-1}"#,
            r#"{"a":01}"#,
            r#"{"a":10000000000000000000}"#,
            r#"{"a":18446744073709551616}"#,
            r#"{"a":{"b":1}}"#,
            r#"{"a":[[1]]}"#,
            r#"{"a":[{"b":1}]}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":1} x"#,
            r#"{"a":1}{}"#,
            r#"{"a" 1}"#,
            r#"{"a":tru}"#,
            r#"{"a":nulll}"#,
            r#"{"a":1"#,
            r#"{"a":"#,
            r#"{"a"#,
            "{\"a\":\"\u{1}\"}",
            "{\"a\":\"x\u{0}\"}",
            "\u{feff}{}",
            "{\"a\":1}\u{b}",
            "[]",
            "1",
            "",
        ] {
            assert_eq!(simple(doc.as_bytes()), None, "{doc}");
        }
        assert_eq!(simple(b"{\"a\":\"\xff\"}"), None);
        assert_eq!(simple(b"{\"\xc3\":1}"), None);
    }

    #[test]
    fn every_single_byte_change_agrees() {
        for doc in [HEADER, CLAIMS] {
            let doc = doc.as_bytes();
            for at in 0..=doc.len() {
                for byte in 0..=u8::MAX {
                    let mut inserted = doc.to_vec();
                    inserted.insert(at, byte);
                    agree(&inserted);
                    if at < doc.len() {
                        let mut replaced = doc.to_vec();
                        replaced[at] = byte;
                        agree(&replaced);
                    }
                }
                if at < doc.len() {
                    let mut removed = doc.to_vec();
                    removed.remove(at);
                    agree(&removed);
                }
            }
        }
    }
}
