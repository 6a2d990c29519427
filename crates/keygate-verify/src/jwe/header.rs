//! The JWE Protected Header (RFC 7516 §4): parsed strictly, and every rule
//! that needs no key applied before one is touched.
//!
//! Order: `alg` and `enc` first (an unknown or disallowed algorithm costs
//! nothing), then `crit` (we understand no extension), `zip` (compression
//! before encryption leaks the plaintext's redundancy, and inflating is a
//! decompression bomb: never supported), and the PBES2 members (their
//! algorithms are refused, so a stray `p2c` is an attack, never a setting).
//! Key-carrying members (`jwk`, `jku`, `x5u`, `x5c`) are ignored: the key
//! is always the caller's.

use serde_json::{Map, Value};

use super::algs::{ContentEncryption, JwePolicy, KeyManagement};
use crate::jwk::{Jwk, MAX_KID_LEN};
use crate::{Error, b64, json};

/// A parsed JWE Protected Header.
#[derive(Debug, Clone)]
pub struct JweHeader {
    pub alg: KeyManagement,
    pub enc: ContentEncryption,
    pub kid: Option<String>,
    pub typ: Option<String>,
    pub cty: Option<String>,
    /// ECDH-ES: the sender's ephemeral public key (validated on use).
    pub(crate) epk: Option<Jwk>,
    pub(crate) apu: Vec<u8>,
    pub(crate) apv: Vec<u8>,
    /// AES-GCM key wrap: the wrap's IV and tag.
    pub(crate) iv: Option<Vec<u8>>,
    pub(crate) tag: Option<Vec<u8>>,
}

/// Parses the decoded header bytes and applies the caller's policy.
pub(crate) fn parse(bytes: &[u8], policy: &JwePolicy) -> Result<JweHeader, Error> {
    let mut members = json::parse_object(bytes)?;
    let alg = match members.remove("alg") {
        Some(Value::String(name)) => {
            KeyManagement::from_name(&name).ok_or(Error::UnsupportedAlgorithm)?
        }
        _ => return Err(Error::InvalidHeader { name: "alg" }),
    };
    let enc = match members.remove("enc") {
        Some(Value::String(name)) => {
            ContentEncryption::from_name(&name).ok_or(Error::UnsupportedAlgorithm)?
        }
        _ => return Err(Error::InvalidHeader { name: "enc" }),
    };
    if !policy.allows(alg, enc) {
        return Err(Error::UnsupportedAlgorithm);
    }
    if members.contains_key("crit") {
        return Err(Error::CriticalHeader);
    }
    if members.contains_key("zip") {
        return Err(Error::UnsupportedHeader { name: "zip" });
    }
    if members.contains_key("p2c") || members.contains_key("p2s") {
        return Err(Error::UnsupportedHeader { name: "p2c" });
    }
    let kid = string(&mut members, "kid")?;
    if kid
        .as_ref()
        .is_some_and(|kid| kid.is_empty() || kid.len() > MAX_KID_LEN)
    {
        return Err(Error::InvalidHeader { name: "kid" });
    }
    Ok(JweHeader {
        alg,
        enc,
        kid,
        typ: string(&mut members, "typ")?,
        cty: string(&mut members, "cty")?,
        epk: epk(members.remove("epk"))?,
        apu: bytes_member(&mut members, "apu")?.unwrap_or_default(),
        apv: bytes_member(&mut members, "apv")?.unwrap_or_default(),
        iv: bytes_member(&mut members, "iv")?,
        tag: bytes_member(&mut members, "tag")?,
    })
}

fn string(members: &mut Map<String, Value>, name: &'static str) -> Result<Option<String>, Error> {
    match members.remove(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(Error::InvalidHeader { name }),
    }
}

fn bytes_member(
    members: &mut Map<String, Value>,
    name: &'static str,
) -> Result<Option<Vec<u8>>, Error> {
    string(members, name)?
        .map(|text| b64::decode(&text).ok_or(Error::InvalidHeader { name }))
        .transpose()
}

fn epk(value: Option<Value>) -> Result<Option<Jwk>, Error> {
    let Some(value) = value else {
        return Ok(None);
    };
    let jwk = Jwk::from_value(value).map_err(|_| Error::InvalidHeader { name: "epk" })?;
    // An ephemeral key is public by definition; private members mean a
    // confused or hostile sender.
    if jwk.has_private_members() || !matches!(jwk.kty.as_str(), "EC" | "OKP") {
        return Err(Error::InvalidHeader { name: "epk" });
    }
    Ok(Some(jwk))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(json: &str) -> Result<JweHeader, Error> {
        parse(json.as_bytes(), &JwePolicy::all())
    }

    #[test]
    fn header_rules() {
        assert!(header(r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","cty":"JWT"}"#).is_ok());
        let refused = [
            (
                r#"{"alg":"RSA1_5","enc":"A256GCM"}"#,
                Error::UnsupportedAlgorithm,
            ),
            (
                r#"{"alg":"none","enc":"A256GCM"}"#,
                Error::UnsupportedAlgorithm,
            ),
            (
                r#"{"alg":"dir","enc":"A256CTR"}"#,
                Error::UnsupportedAlgorithm,
            ),
            (r#"{"enc":"A256GCM"}"#, Error::InvalidHeader { name: "alg" }),
            (r#"{"alg":"dir"}"#, Error::InvalidHeader { name: "enc" }),
            (
                r#"{"alg":"dir","enc":"A256GCM","crit":["exp"]}"#,
                Error::CriticalHeader,
            ),
            (
                r#"{"alg":"dir","enc":"A256GCM","zip":"DEF"}"#,
                Error::UnsupportedHeader { name: "zip" },
            ),
            (
                r#"{"alg":"dir","enc":"A256GCM","p2c":1000000000}"#,
                Error::UnsupportedHeader { name: "p2c" },
            ),
            (
                r#"{"alg":"dir","enc":"A256GCM","alg":"dir"}"#,
                Error::DuplicateJsonMember,
            ),
            (
                r#"{"alg":"dir","enc":"A256GCM","kid":7}"#,
                Error::InvalidHeader { name: "kid" },
            ),
            (
                r#"{"alg":"ECDH-ES","enc":"A256GCM","epk":{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"AA"}}"#,
                Error::InvalidHeader { name: "epk" },
            ),
            (
                r#"{"alg":"ECDH-ES","enc":"A256GCM","apu":"QWxpY2U="}"#,
                Error::InvalidHeader { name: "apu" },
            ),
        ];
        for (json, expected) in refused {
            assert_eq!(header(json).err(), Some(expected), "{json}");
        }
    }

    #[test]
    fn the_default_policy_refuses_what_it_does_not_name() {
        let policy = JwePolicy::default();
        let parse_with = |json: &str| parse(json.as_bytes(), &policy).err();
        assert_eq!(
            parse_with(r#"{"alg":"ECDH-ES+A256KW","enc":"A256GCM"}"#),
            None
        );
        for json in [
            r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#,
            r#"{"alg":"dir","enc":"A256GCM"}"#,
            r#"{"alg":"A128KW","enc":"A256GCM"}"#,
            r#"{"alg":"ECDH-ES+A256KW","enc":"A192GCM"}"#,
        ] {
            assert_eq!(
                parse_with(json),
                Some(Error::UnsupportedAlgorithm),
                "{json}"
            );
        }
    }
}
