//! Strict JSON for headers, claims and keys.
//!
//! `serde_json::Value` silently keeps the last of two members with the same
//! name, so `{"alg":"ES256","alg":"none"}` means different things to different
//! parsers. RFC 7515 §5.2 and RFC 7519 §4 let a verifier refuse such input,
//! and we do, at every depth. Nesting is bounded so hostile input cannot make
//! the parser recurse deeply.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

use crate::Error;

/// Deepest nesting accepted (the top-level object counts as one).
pub const MAX_DEPTH: usize = 32;

/// Parses `bytes` as one JSON value, refusing duplicate member names anywhere,
/// nesting deeper than [`MAX_DEPTH`], numbers outside `f64`, and trailing data.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut problem = None;
    let value = Strict {
        depth: 0,
        problem: &mut problem,
    }
    .deserialize(&mut de);
    let value = match (value, problem) {
        (_, Some(found)) => return Err(found),
        (Err(_), None) => return Err(Error::MalformedToken("invalid JSON")),
        (Ok(value), None) => value,
    };
    de.end()
        .map_err(|_| Error::MalformedToken("trailing data after JSON"))?;
    Ok(value)
}

/// Parses a JSON object strictly (see [`parse_strict`]).
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, Error> {
    match parse_strict(bytes)? {
        Value::Object(map) => Ok(map),
        _ => Err(Error::MalformedToken("JSON is not an object")),
    }
}

/// A seed carrying the current depth; the first structural problem found is
/// recorded in `problem` so the caller reports it precisely rather than as a
/// generic serde error.
struct Strict<'p> {
    depth: usize,
    problem: &'p mut Option<Error>,
}

impl Strict<'_> {
    fn fail<E: de::Error>(&mut self, error: Error) -> E {
        if self.problem.is_none() {
            *self.problem = Some(error);
        }
        E::custom("refused")
    }

    fn nested(&mut self) -> Strict<'_> {
        Strict {
            depth: self.depth + 1,
            problem: self.problem,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(mut self, v: f64) -> Result<Value, E> {
        match serde_json::Number::from_f64(v) {
            Some(n) => Ok(Value::Number(n)),
            None => Err(self.fail(Error::MalformedToken("non-finite number"))),
        }
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        if self.depth + 1 > MAX_DEPTH {
            return Err(self.fail(Error::JsonTooDeep));
        }
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.nested())? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut access: A) -> Result<Value, A::Error> {
        if self.depth + 1 > MAX_DEPTH {
            return Err(self.fail(Error::JsonTooDeep));
        }
        let mut map = Map::new();
        // Keys arrive unescaped, so `"alg"` and `"\u0061lg"` collide as they should.
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(self.fail(Error::DuplicateJsonMember));
            }
            let value = access.next_value_seed(self.nested())?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_objects() {
        let v = parse_object(br#"{"a":1,"b":[1,2,{"c":null}],"d":1.5,"e":"x"}"#).unwrap();
        assert_eq!(v.len(), 4);
    }

    #[test]
    fn refuses_duplicates_at_any_depth() {
        for input in [
            r#"{"alg":"ES256","alg":"none"}"#,
            r#"{"alg":"ES256","\u0061lg":"none"}"#,
            r#"{"a":{"b":1,"b":1}}"#,
            r#"{"a":[{"b":1},{"c":2,"c":3}]}"#,
        ] {
            assert_eq!(
                parse_strict(input.as_bytes()),
                Err(Error::DuplicateJsonMember),
                "{input}"
            );
        }
    }

    #[test]
    fn bounds_nesting() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_strict(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(parse_strict(deep.as_bytes()), Err(Error::JsonTooDeep));
        // Far beyond serde_json's own recursion limit: still a clean error.
        let very = format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
        assert_eq!(parse_strict(very.as_bytes()), Err(Error::JsonTooDeep));
    }

    #[test]
    fn refuses_trailing_data_and_bad_numbers() {
        assert!(parse_strict(b"{} {}").is_err());
        assert!(parse_strict(b"{\"exp\":1e400}").is_err());
        assert!(parse_strict(b"\xff").is_err());
        assert!(parse_object(b"[]").is_err());
    }
}
