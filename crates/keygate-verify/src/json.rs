//! Strict JSON for headers, claims and keys.
//!
//! `serde_json::Value` silently keeps the last of two members with the same
//! name, so `{"alg":"ES256","alg":"none"}` means different things to different
//! parsers. RFC 7515 §5.2 and RFC 7519 §4 let a verifier refuse such input,
//! and we do, at every depth. Nesting is bounded so hostile input cannot make
//! the parser recurse deeply.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

use crate::Error;

mod simple;

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
    parse_members(bytes, Map::new)
}

/// Where the members of a top-level object go, so a caller can keep the ones
/// it knows in typed slots instead of a map (the header and the claims).
///
/// `place` is asked before a member's value is read: a repeated name is
/// refused as a duplicate whatever its value holds, as in [`parse_strict`].
pub(crate) trait Members<'de> {
    /// Where a member called `name` goes (the sink's own numbering, handed
    /// back to `put`), or `None` when a member of that name was already put.
    fn place(&self, name: &str) -> Option<u8>;
    /// Takes one member at the place `place` gave for its name; the value
    /// already passed every rule of [`parse_strict`].
    fn put(&mut self, place: u8, name: Cow<'de, str>, value: Value);

    /// `place` then `put`, for the simple path, which reads the value first:
    /// it never refuses, so a duplicate found after the value only sends the
    /// input to the strict path, which refuses it before reading the value.
    /// `None` for a duplicate; the sink is then discarded.
    fn try_put(&mut self, name: &'de str, value: Value) -> Option<()> {
        let place = self.place(name)?;
        self.put(place, Cow::Borrowed(name), value);
        Some(())
    }
}

impl<'de> Members<'de> for Map<String, Value> {
    fn place(&self, name: &str) -> Option<u8> {
        (!self.contains_key(name)).then_some(0)
    }

    fn put(&mut self, _: u8, name: Cow<'de, str>, value: Value) {
        self.insert(name.into_owned(), value);
    }

    fn try_put(&mut self, name: &'de str, value: Value) -> Option<()> {
        try_insert(self, name, value)
    }
}

/// Inserts a member unless one of that name is there: one search, not two.
pub(crate) fn try_insert(map: &mut Map<String, Value>, name: &str, value: Value) -> Option<()> {
    match map.entry(name) {
        Entry::Vacant(entry) => {
            entry.insert(value);
            Some(())
        }
        Entry::Occupied(_) => None,
    }
}

/// [`parse_object`] without the map: the same rules, in the same order, with
/// the same errors, but each top-level member is handed to a sink made by
/// `fresh`. Names without escapes are borrowed from `bytes`, so a caller that
/// recognises a name allocates nothing for it.
///
/// Input in the subset `simple` reads (flat, no escapes; every token keygate
/// issues) is parsed there; anything else, valid or not, is parsed again
/// from the start into a fresh sink by the serde path, which alone refuses.
pub(crate) fn parse_members<'de, M: Members<'de>>(
    bytes: &'de [u8],
    fresh: impl Fn() -> M,
) -> Result<M, Error> {
    let mut members = fresh();
    if simple::parse(bytes, &mut members).is_some() {
        return Ok(members);
    }
    let mut members = fresh();
    parse_members_strict(bytes, &mut members)?;
    Ok(members)
}

/// The serde path of [`parse_members`].
fn parse_members_strict<'de, M: Members<'de>>(
    bytes: &'de [u8],
    members: &mut M,
) -> Result<(), Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut problem = None;
    let is_object = Object {
        members,
        strict: Strict {
            depth: 0,
            problem: &mut problem,
        },
    }
    .deserialize(&mut de);
    let is_object = match (is_object, problem) {
        (_, Some(found)) => return Err(found),
        (Err(_), None) => return Err(Error::MalformedToken("invalid JSON")),
        (Ok(is_object), None) => is_object,
    };
    de.end()
        .map_err(|_| Error::MalformedToken("trailing data after JSON"))?;
    if !is_object {
        return Err(Error::MalformedToken("JSON is not an object"));
    }
    Ok(())
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

/// The top-level value of [`parse_members`]: an object goes member by member
/// to the sink; anything else is read exactly as [`Strict`] reads it (so its
/// own errors come first) and then reported as not an object.
struct Object<'m, 'p, M> {
    members: &'m mut M,
    strict: Strict<'p>,
}

impl<'de, M: Members<'de>> DeserializeSeed<'de> for Object<'_, '_, M> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, M: Members<'de>> Visitor<'de> for Object<'_, '_, M> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        self.strict.visit_bool::<E>(v).map(|_| false)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        self.strict.visit_i64::<E>(v).map(|_| false)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        self.strict.visit_u64::<E>(v).map(|_| false)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        self.strict.visit_f64::<E>(v).map(|_| false)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        self.strict.visit_str::<E>(v).map(|_| false)
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        self.strict.visit_unit::<E>().map(|_| false)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        self.strict.visit_seq(seq).map(|_| false)
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut access: A) -> Result<bool, A::Error> {
        if self.strict.depth + 1 > MAX_DEPTH {
            return Err(self.strict.fail(Error::JsonTooDeep));
        }
        while let Some(name) = access.next_key_seed(Name)? {
            let Some(place) = self.members.place(&name) else {
                return Err(self.strict.fail(Error::DuplicateJsonMember));
            };
            let value = access.next_value_seed(self.strict.nested())?;
            self.members.put(place, name, value);
        }
        Ok(true)
    }
}

/// A member name, unescaped (so `"alg"` and `"\u0061lg"` are the same name),
/// borrowed from the input when it holds no escape.
struct Name;

impl<'de> DeserializeSeed<'de> for Name {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
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
