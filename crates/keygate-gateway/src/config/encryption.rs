//! A recipient's key for tokens keygate encrypts (a route's
//! `internal_token_encryption`, an access-token audience's `encrypt`): the
//! recipient's public key inline (`jwk = { kty = "EC", ... }`), in a file
//! (`jwk_file`, a JWK or a JWKS of one key) or published at a JWKS URL
//! (`jwks_url`, optionally `kid`), and optionally the `enc`. A token is
//! then a nested JWT (signed, then encrypted to the recipient:
//! ECDH-ES+A256KW for an EC key, RSA-OAEP-256 for RSA, unless the key
//! names its own `alg`; A256GCM unless `enc` says otherwise), so nothing
//! between keygate and the recipient can read its claims.
//!
//! A `jwks_url` key is fetched in the background (keygate-verify's
//! `RemoteRecipient`); until it has been, encrypting fails with
//! `KeyUnavailable` and the caller refuses (503): a token meant to be
//! encrypted is never sent in the clear.

use std::path::PathBuf;
use std::sync::Arc;

use keygate_verify::jwe::{ContentEncryption, Encrypter, RecipientKey};
use keygate_verify::{Jwk, RemoteRecipient};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionFile {
    /// The recipient's public JWK, as a TOML table.
    pub jwk: Option<serde_json::Map<String, serde_json::Value>>,
    /// A file holding the recipient's public JWK, or a JWKS with one key.
    pub jwk_file: Option<PathBuf>,
    /// The recipient's JWKS (https, or http to a loopback host).
    pub jwks_url: Option<String>,
    /// With `jwks_url`: the `kid` of the key to encrypt to.
    pub kid: Option<String>,
    /// The content encryption: `A256GCM` (default), `A128GCM`,
    /// `A128CBC-HS256` or `A256CBC-HS512`.
    pub enc: Option<String>,
}

/// Where tokens are encrypted to: a key known from the configuration, or
/// the one a recipient publishes.
#[derive(Debug)]
pub enum TokenEncryption {
    Key(Encrypter),
    Jwks(RemoteRecipient),
}

impl TokenEncryption {
    /// Wraps a signed token as a nested JWT to the recipient.
    /// `KeyUnavailable` while a `jwks_url` key has not been fetched.
    pub fn encrypt_nested(&self, jws: &str) -> Result<String, keygate_core::Error> {
        let fetched;
        let encrypter = match self {
            TokenEncryption::Key(encrypter) => encrypter,
            TokenEncryption::Jwks(remote) => {
                fetched = remote.encrypter().ok_or_else(|| {
                    keygate_core::Error::KeyUnavailable(format!(
                        "no key fetched yet from {}",
                        remote.jwks_url()
                    ))
                })?;
                &*fetched
            }
        };
        encrypter
            .encrypt_nested(jws)
            .map_err(|e| keygate_core::Error::Internal(format!("encrypting a token: {e}")))
    }

    /// The fetched key's source, for a `jwks_url`.
    pub fn remote(&self) -> Option<&RemoteRecipient> {
        match self {
            TokenEncryption::Key(_) => None,
            TokenEncryption::Jwks(remote) => Some(remote),
        }
    }

    /// Whether two encrypt to the same published key (a reload keeps the
    /// one already fetched).
    pub fn same_remote(&self, other: &Self) -> bool {
        match (self.remote(), other.remote()) {
            (Some(a), Some(b)) => a.same_source(b),
            _ => false,
        }
    }

    /// For `keygate gateway check`: the key's source, never its material.
    pub fn describe(&self) -> String {
        match self {
            TokenEncryption::Key(encrypter) => {
                let key = encrypter.recipient();
                format!(
                    "{} to kid {}",
                    key.alg().name(),
                    key.kid().unwrap_or("(none)")
                )
            }
            TokenEncryption::Jwks(remote) => format!("to a key from {}", remote.jwks_url()),
        }
    }
}

/// The recipient's key, or the message that says why not. A `jwks_url` is
/// checked here and fetched later (`RemoteRecipient::spawn_refresher`).
pub fn parse(file: &EncryptionFile) -> Result<Arc<TokenEncryption>, String> {
    let enc = parse_enc(file.enc.as_deref())?;
    if file.kid.is_some() && file.jwks_url.is_none() {
        return Err("kid: only with jwks_url (a jwk names its own kid)".into());
    }
    let jwk = match (&file.jwk, &file.jwk_file, &file.jwks_url) {
        (Some(table), None, None) => {
            let json =
                serde_json::to_vec(table).map_err(|_| "jwk: not a JSON object".to_owned())?;
            Jwk::from_json(&json).map_err(|e| format!("jwk: {e}"))?
        }
        (None, Some(path), None) => read_jwk_file(path)?,
        (None, None, Some(url)) => {
            let remote = RemoteRecipient::new(url, file.kid.clone(), enc)
                .map_err(|e| format!("jwks_url: {e}"))?;
            return Ok(Arc::new(TokenEncryption::Jwks(remote)));
        }
        _ => return Err("set exactly one of jwk, jwk_file and jwks_url".into()),
    };
    let recipient =
        RecipientKey::from_jwk(&jwk).map_err(|e| format!("the recipient's key is refused: {e}"))?;
    Ok(Arc::new(TokenEncryption::Key(
        Encrypter::new(recipient).with_enc(enc),
    )))
}

fn parse_enc(name: Option<&str>) -> Result<ContentEncryption, String> {
    let Some(name) = name else {
        return Ok(ContentEncryption::A256Gcm);
    };
    ContentEncryption::from_name(name)
        .filter(|enc| {
            [
                ContentEncryption::A256Gcm,
                ContentEncryption::A128Gcm,
                ContentEncryption::A128CbcHs256,
                ContentEncryption::A256CbcHs512,
            ]
            .contains(enc)
        })
        .ok_or_else(|| {
            format!("enc: {name:?} is not one of A256GCM, A128GCM, A128CBC-HS256, A256CBC-HS512")
        })
}

fn read_jwk_file(path: &PathBuf) -> Result<Jwk, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("jwk_file: cannot read {}: {e}", path.display()))?;
    let value = keygate_verify::json::parse_strict(&bytes)
        .map_err(|e| format!("jwk_file {}: {e}", path.display()))?;
    let one = match value.get("keys").and_then(serde_json::Value::as_array) {
        Some(keys) if keys.len() == 1 => keys[0].clone(),
        Some(_) => {
            return Err(format!(
                "jwk_file {}: a JWKS must hold exactly one key",
                path.display()
            ));
        }
        None => value,
    };
    let json = serde_json::to_vec(&one).map_err(|_| "jwk_file: not a JSON object".to_owned())?;
    Jwk::from_json(&json).map_err(|e| format!("jwk_file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file(toml_text: &str) -> EncryptionFile {
        toml::from_str(toml_text).unwrap()
    }

    const P256: &str = r#"jwk = { kty = "EC", crv = "P-256", kid = "up-1", x = "weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ", y = "e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck" }"#;

    #[test]
    fn an_ec_key_gets_ecdh_es_a256kw() {
        let parsed = parse(&file(P256)).unwrap();
        let TokenEncryption::Key(encrypter) = &*parsed else {
            panic!("a fixed key")
        };
        assert_eq!(encrypter.recipient().alg().name(), "ECDH-ES+A256KW");
        assert_eq!(encrypter.recipient().kid(), Some("up-1"));
    }

    #[test]
    fn bad_keys_are_clear_errors() {
        let off_curve = P256.replace("e8lnCO", "e8lnCP");
        let cases = [
            (off_curve.as_str(), "EC point is not on the curve"),
            (
                r#"jwk = { kty = "EC", crv = "P-256", x = "AA", y = "AA", d = "AA" }"#,
                "private key material",
            ),
            (
                r#"jwk = { kty = "oct", k = "AAAA" }"#,
                "symmetric keys are not allowed",
            ),
            (r#"jwk_file = "/nonexistent/key.json""#, "cannot read"),
            ("", "exactly one of jwk, jwk_file and jwks_url"),
            (
                &format!("{P256}\njwks_url = \"https://up/jwks\""),
                "exactly one of",
            ),
            (
                r#"jwks_url = "http://upstream.internal/jwks""#,
                "jwks_url: ",
            ),
            (r#"jwks_url = "not a url""#, "jwks_url: "),
            (&format!("{P256}\nkid = \"x\""), "kid: only with jwks_url"),
        ];
        for (text, expected) in cases {
            let error = parse(&file(text)).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
        let error = parse(&file(&format!("{P256}\nenc = \"A192GCM\""))).unwrap_err();
        assert!(error.starts_with("enc:"), "{error}");
    }

    #[test]
    fn a_jwks_url_is_checked_now_and_fetched_later() {
        let parsed = parse(&file(
            "jwks_url = \"https://upstream.internal/jwks\"\nkid = \"k2\"\nenc = \"A128GCM\"",
        ))
        .unwrap();
        let remote = parsed.remote().unwrap();
        assert!(remote.encrypter().is_none());
        assert_eq!(remote.jwks_url(), "https://upstream.internal/jwks");
        let error = parsed.encrypt_nested("a.b.c").unwrap_err();
        assert!(
            matches!(error, keygate_core::Error::KeyUnavailable(_)),
            "{error}"
        );
        let same = parse(&file(
            "jwks_url = \"https://upstream.internal/jwks\"\nkid = \"k2\"\nenc = \"A128GCM\"",
        ))
        .unwrap();
        assert!(parsed.same_remote(&same));
        let other_kid = parse(&file("jwks_url = \"https://upstream.internal/jwks\"")).unwrap();
        assert!(!parsed.same_remote(&other_kid));
    }

    /// Through the whole section, as `keygate gateway check` and a reload
    /// see it: the route is named, and the route is refused.
    #[test]
    fn route_level_errors_name_the_route() {
        let section = |extra: &str| {
            format!(
                "[gateway]\n[[gateway.routes]]\nname = \"secret\"\nmatch = {{ path_prefix = \"/s\" }}\n\
                 upstream = \"http://h:1\"\nauth = \"api_key\"\n{extra}\n"
            )
        };
        let good = crate::config::parse_text(&section(&format!(
            "internal_token_encryption = {{ {} }}",
            P256.replace('\n', " ")
        )))
        .unwrap()
        .unwrap();
        assert!(good.routes[0].internal_token_encryption.is_some());
        let off_curve = P256.replace("e8lnCO", "e8lnCP");
        let errors = crate::config::parse_text(&section(&format!(
            "internal_token_encryption = {{ {off_curve} }}"
        )))
        .unwrap_err();
        assert!(
            errors[0].contains("secret") && errors[0].contains("internal_token_encryption"),
            "{errors:?}"
        );
        let errors = crate::config::parse_text(&section(&format!(
            "forward_token = \"passthrough\"\ninternal_token_encryption = {{ {P256} }}"
        )))
        .unwrap_err();
        assert!(errors[0].contains("needs forward_token"), "{errors:?}");
    }
}
