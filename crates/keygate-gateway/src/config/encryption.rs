//! A route's `internal_token_encryption`: the upstream's public key, inline
//! (`jwk = { kty = "EC", ... }`) or in a file (`jwk_file`, a JWK or a JWKS
//! of one key), and optionally the `enc`. The internal token is then a
//! nested JWT (signed, then encrypted to the upstream: ECDH-ES+A256KW for
//! an EC key, RSA-OAEP-256 for RSA, unless the key names its own `alg`;
//! A256GCM unless `enc` says otherwise), so no proxy or log between
//! keygate and the upstream can read its claims.

use std::path::PathBuf;
use std::sync::Arc;

use keygate_verify::Jwk;
use keygate_verify::jwe::{ContentEncryption, Encrypter, RecipientKey};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionFile {
    /// The recipient's public JWK, as a TOML table.
    pub jwk: Option<toml::Table>,
    /// A file holding the recipient's public JWK, or a JWKS with one key.
    pub jwk_file: Option<PathBuf>,
    /// The content encryption: `A256GCM` (default), `A128GCM`,
    /// `A128CBC-HS256` or `A256CBC-HS512`.
    pub enc: Option<String>,
}

/// The encrypter for a route, or the message that says why not.
pub fn parse(file: &EncryptionFile) -> Result<Arc<Encrypter>, String> {
    let jwk = match (&file.jwk, &file.jwk_file) {
        (Some(table), None) => {
            let json =
                serde_json::to_vec(table).map_err(|_| "jwk: not a JSON object".to_owned())?;
            Jwk::from_json(&json).map_err(|e| format!("jwk: {e}"))?
        }
        (None, Some(path)) => read_jwk_file(path)?,
        _ => return Err("set exactly one of jwk and jwk_file".into()),
    };
    let recipient =
        RecipientKey::from_jwk(&jwk).map_err(|e| format!("the upstream's key is refused: {e}"))?;
    let enc = match file.enc.as_deref() {
        None => ContentEncryption::A256Gcm,
        Some(name) => ContentEncryption::from_name(name)
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
                format!(
                    "enc: {name:?} is not one of A256GCM, A128GCM, A128CBC-HS256, A256CBC-HS512"
                )
            })?,
    };
    Ok(Arc::new(Encrypter::new(recipient).with_enc(enc)))
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
        let encrypter = parse(&file(P256)).unwrap();
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
            ("", "exactly one of jwk and jwk_file"),
        ];
        for (text, expected) in cases {
            let error = parse(&file(text)).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
        let error = parse(&file(&format!("{P256}\nenc = \"A192GCM\""))).unwrap_err();
        assert!(error.starts_with("enc:"), "{error}");
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
