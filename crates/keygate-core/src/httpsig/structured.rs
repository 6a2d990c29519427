//! The part of RFC 8941 structured fields that `Signature-Input`,
//! `Signature` and `Content-Digest` use: dictionaries whose members are inner
//! lists or items, with parameters. Strict and bounded: anything the RFC
//! would refuse is refused, and so are duplicate keys (which the RFC lets the
//! last one win: for a signature that hides what a reader sees), decimals
//! (no signature field uses them) and inputs past the limits below.

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};

/// Longest field value accepted, after joining its lines with ", ".
pub const MAX_FIELD_LEN: usize = 8 * 1024;
pub const MAX_MEMBERS: usize = 16;
pub const MAX_INNER_ITEMS: usize = 32;
pub const MAX_PARAMS: usize = 16;
pub const MAX_KEY_LEN: usize = 64;
const MAX_INTEGER_DIGITS: usize = 15;

/// Byte sequences: the standard alphabet, padding optional (RFC 8941 asks
/// parsers not to insist on it), no stray bits.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BareItem {
    Integer(i64),
    String(String),
    Token(String),
    Bytes(Vec<u8>),
    Boolean(bool),
}

pub type Params = Vec<(String, BareItem)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub value: BareItem,
    pub params: Params,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    Item(Item),
    InnerList(Vec<Item>, Params),
}

pub type Dictionary = Vec<(String, Member)>;

/// Parses one dictionary field. The error says what is wrong and where.
pub fn parse_dictionary(input: &str) -> Result<Dictionary, String> {
    if input.len() > MAX_FIELD_LEN {
        return Err(format!("longer than {MAX_FIELD_LEN} bytes"));
    }
    let mut p = Parser {
        s: input.as_bytes(),
        i: 0,
    };
    p.skip_sp();
    let mut out: Dictionary = Vec::new();
    if p.at_end() {
        return Ok(out);
    }
    loop {
        let key = p.key()?;
        if out.iter().any(|(k, _)| *k == key) {
            return Err(format!("the key `{key}` appears twice"));
        }
        if out.len() == MAX_MEMBERS {
            return Err(format!("more than {MAX_MEMBERS} members"));
        }
        let member = if p.eat(b'=') {
            if p.peek() == Some(b'(') {
                p.inner_list()?
            } else {
                let value = p.bare_item()?;
                Member::Item(Item {
                    value,
                    params: p.params()?,
                })
            }
        } else {
            Member::Item(Item {
                value: BareItem::Boolean(true),
                params: p.params()?,
            })
        };
        out.push((key, member));
        p.skip_ows();
        if p.at_end() {
            return Ok(out);
        }
        if !p.eat(b',') {
            return Err(p.unexpected("`,` between members"));
        }
        p.skip_ows();
        if p.at_end() {
            return Err("a trailing `,`".into());
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn skip_sp(&mut self) {
        while self.eat(b' ') {}
    }
    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn unexpected(&self, wanted: &str) -> String {
        match self.peek() {
            Some(c) if c.is_ascii_graphic() => {
                format!(
                    "expected {wanted} at byte {}, found `{}`",
                    self.i,
                    char::from(c)
                )
            }
            Some(c) => format!("expected {wanted} at byte {}, found byte 0x{c:02x}", self.i),
            None => format!("expected {wanted}, found the end of the field"),
        }
    }

    fn key(&mut self) -> Result<String, String> {
        let start = self.i;
        match self.peek() {
            Some(c) if c.is_ascii_lowercase() || c == b'*' => self.i += 1,
            _ => return Err(self.unexpected("a key (lowercase letter or `*`)")),
        }
        while let Some(c) = self.peek() {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-.*".contains(&c) {
                self.i += 1;
            } else {
                break;
            }
        }
        if self.i - start > MAX_KEY_LEN {
            return Err(format!("a key longer than {MAX_KEY_LEN} characters"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn inner_list(&mut self) -> Result<Member, String> {
        self.i += 1; // the `(`
        let mut items = Vec::new();
        loop {
            self.skip_sp();
            if self.eat(b')') {
                let params = self.params()?;
                return Ok(Member::InnerList(items, params));
            }
            if items.len() == MAX_INNER_ITEMS {
                return Err(format!(
                    "an inner list of more than {MAX_INNER_ITEMS} items"
                ));
            }
            let value = self.bare_item()?;
            let params = self.params()?;
            items.push(Item { value, params });
            if !matches!(self.peek(), Some(b' ' | b')')) {
                return Err(self.unexpected("a space or `)` in an inner list"));
            }
        }
    }

    fn params(&mut self) -> Result<Params, String> {
        let mut out: Params = Vec::new();
        while self.eat(b';') {
            self.skip_sp();
            let key = self.key()?;
            if out.iter().any(|(k, _)| *k == key) {
                return Err(format!("the parameter `{key}` appears twice"));
            }
            if out.len() == MAX_PARAMS {
                return Err(format!("more than {MAX_PARAMS} parameters"));
            }
            let value = if self.eat(b'=') {
                self.bare_item()?
            } else {
                BareItem::Boolean(true)
            };
            out.push((key, value));
        }
        Ok(out)
    }

    fn bare_item(&mut self) -> Result<BareItem, String> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => self.integer(),
            Some(b'"') => self.string(),
            Some(b':') => self.bytes(),
            Some(b'?') => self.boolean(),
            Some(c) if c.is_ascii_alphabetic() || c == b'*' => Ok(self.token()),
            _ => Err(self.unexpected("an item")),
        }
    }

    fn integer(&mut self) -> Result<BareItem, String> {
        let negative = self.eat(b'-');
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        let digits = &self.s[start..self.i];
        if digits.is_empty() {
            return Err(self.unexpected("a digit"));
        }
        if self.peek() == Some(b'.') {
            return Err("a decimal number, which no signature field uses".into());
        }
        if digits.len() > MAX_INTEGER_DIGITS {
            return Err(format!(
                "an integer of more than {MAX_INTEGER_DIGITS} digits"
            ));
        }
        let value = digits
            .iter()
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
        Ok(BareItem::Integer(if negative { -value } else { value }))
    }

    fn string(&mut self) -> Result<BareItem, String> {
        self.i += 1; // the opening quote
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err("a string without its closing `\"`".into()),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(BareItem::String(out));
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => out.push(char::from(c)),
                        _ => return Err(self.unexpected("`\"` or `\\` after `\\` in a string")),
                    }
                }
                Some(c @ 0x20..=0x7e) => out.push(char::from(c)),
                Some(_) => return Err(self.unexpected("a printable ASCII character in a string")),
            }
            self.i += 1;
        }
    }

    fn token(&mut self) -> BareItem {
        let start = self.i;
        self.i += 1;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&c) {
                self.i += 1;
            } else {
                break;
            }
        }
        BareItem::Token(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn bytes(&mut self) -> Result<BareItem, String> {
        self.i += 1; // the opening colon
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || b"+/=".contains(&c) {
                self.i += 1;
            } else {
                break;
            }
        }
        let text = &self.s[start..self.i];
        if !self.eat(b':') {
            return Err(self.unexpected("base64 and a closing `:` in a byte sequence"));
        }
        BASE64
            .decode(text)
            .map(BareItem::Bytes)
            .map_err(|e| format!("a byte sequence that is not base64: {e}"))
    }

    fn boolean(&mut self) -> Result<BareItem, String> {
        self.i += 1; // the `?`
        let value = match self.peek() {
            Some(b'0') => false,
            Some(b'1') => true,
            _ => return Err(self.unexpected("`0` or `1` after `?`")),
        };
        self.i += 1;
        Ok(BareItem::Boolean(value))
    }
}

/// Writes a bare item in the canonical form (RFC 8941 §4.1).
pub fn write_bare_item(out: &mut String, item: &BareItem) {
    match item {
        BareItem::Integer(n) => out.push_str(&n.to_string()),
        BareItem::String(s) => write_string(out, s),
        BareItem::Token(t) => out.push_str(t),
        BareItem::Bytes(b) => {
            out.push(':');
            out.push_str(&general_purpose::STANDARD.encode(b));
            out.push(':');
        }
        BareItem::Boolean(true) => out.push_str("?1"),
        BareItem::Boolean(false) => out.push_str("?0"),
    }
}

pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

pub fn write_params(out: &mut String, params: &Params) {
    for (key, value) in params {
        out.push(';');
        out.push_str(key);
        if *value != BareItem::Boolean(true) {
            out.push('=');
            write_bare_item(out, value);
        }
    }
}

/// Whether `s` can travel as a structured-field string.
pub fn is_sf_string(s: &str) -> bool {
    s.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn inner(m: &Member) -> (&[Item], &Params) {
        match m {
            Member::InnerList(items, params) => (items, params),
            Member::Item(_) => panic!("not an inner list"),
        }
    }

    #[test]
    fn parses_signature_input_and_round_trips() {
        let text = r#"sig1=("@method" "content-digest";sf);created=1618884473;keyid="k";alg="hmac-sha256";t=?0, sig2=();x"#;
        let dict = parse_dictionary(text).unwrap();
        assert_eq!(dict.len(), 2);
        let (items, params) = inner(&dict[0].1);
        assert_eq!(items[0].value, BareItem::String("@method".into()));
        assert_eq!(
            items[1].params,
            vec![("sf".into(), BareItem::Boolean(true))]
        );
        assert_eq!(
            params[0],
            ("created".into(), BareItem::Integer(1_618_884_473))
        );
        assert_eq!(params[3], ("t".into(), BareItem::Boolean(false)));
        let mut out = String::new();
        write_params(&mut out, params);
        assert_eq!(
            out,
            r#";created=1618884473;keyid="k";alg="hmac-sha256";t=?0"#
        );
        assert_eq!(inner(&dict[1].1).0.len(), 0);
    }

    #[test]
    fn byte_sequences_strings_and_tokens() {
        let dict = parse_dictionary(r#"a=:AQID:, b="q\"\\", c=tok/en:1, d=?1, e=-12"#).unwrap();
        let item = |i: usize| match &dict[i].1 {
            Member::Item(item) => item.value.clone(),
            Member::InnerList(..) => panic!(),
        };
        assert_eq!(item(0), BareItem::Bytes(vec![1, 2, 3]));
        assert_eq!(item(1), BareItem::String("q\"\\".into()));
        assert_eq!(item(2), BareItem::Token("tok/en:1".into()));
        assert_eq!(item(3), BareItem::Boolean(true));
        assert_eq!(item(4), BareItem::Integer(-12));
        let mut s = String::new();
        write_bare_item(&mut s, &item(1));
        assert_eq!(s, r#""q\"\\""#);
        assert!(parse_dictionary("a=:AQI:").is_ok(), "unpadded accepted");
    }

    #[test]
    fn malformed_inputs_are_refused_precisely() {
        for (bad, why) in [
            ("a=1,", "trailing"),
            ("a=1,,b=2", "expected a key"),
            ("A=1", "expected a key"),
            ("a=1 b=2", "`,` between members"),
            ("a=1, a=2", "appears twice"),
            ("a=();x;x", "appears twice"),
            ("a=(\"x\"\"y\")", "a space or `)`"),
            ("a=(\"x\"", "a space or `)`"),
            ("a=\"unterminated", "closing"),
            ("a=\"bad\\n\"", "after `\\`"),
            ("a=\"tab\there\"", "printable"),
            ("a=1.5", "decimal"),
            ("a=1234567890123456", "15 digits"),
            ("a=:AQID", "closing `:`"),
            ("a=:A:", "not base64"),
            ("a=?2", "`0` or `1`"),
            ("a=-", "a digit"),
            ("a=@", "an item"),
        ] {
            let err = parse_dictionary(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn limits_are_enforced() {
        let long = format!("a=\"{}\"", "x".repeat(MAX_FIELD_LEN));
        assert!(parse_dictionary(&long).unwrap_err().contains("longer than"));
        let many: Vec<String> = (0..=MAX_MEMBERS).map(|i| format!("k{i}=1")).collect();
        assert!(
            parse_dictionary(&many.join(", "))
                .unwrap_err()
                .contains("members")
        );
        let items = vec!["\"x\""; MAX_INNER_ITEMS + 1].join(" ");
        assert!(
            parse_dictionary(&format!("a=({items})"))
                .unwrap_err()
                .contains("inner list")
        );
        let params: String = (0..=MAX_PARAMS).map(|i| format!(";p{i}")).collect();
        assert!(
            parse_dictionary(&format!("a=1{params}"))
                .unwrap_err()
                .contains("parameters")
        );
        let key = "k".repeat(MAX_KEY_LEN + 1);
        assert!(
            parse_dictionary(&format!("{key}=1"))
                .unwrap_err()
                .contains("key longer")
        );
        assert_eq!(parse_dictionary("  ").unwrap(), Vec::new());
    }
}
