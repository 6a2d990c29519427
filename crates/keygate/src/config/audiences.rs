//! `[[jwt.audiences]]`: the audiences beyond `[jwt] audience` a client may
//! ask a token for (RFC 8707 `resource`), each optionally with the key its
//! tokens are encrypted to (`encrypt`, the same recipient-key table as a
//! gateway route's `internal_token_encryption`) and the private key
//! keygate reads them with (`decrypt_jwk_file`), for when keygate itself
//! verifies that audience's tokens.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use keygate_core::jwt::{ExtraAudience, JwtConfig};
use keygate_verify::Jwk;
use keygate_verify::jwe::{Decrypter, DecryptionKey};
use serde::Deserialize;

use super::error::ConfigError;
use crate::gateway::config::{EncryptionFile, TokenEncryption, parse_encryption};

/// One `[[jwt.audiences]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudienceFile {
    /// The `aud` of its tokens, and the `resource` a client names it by:
    /// an absolute URI without a fragment (RFC 8707 §2).
    pub audience: String,
    /// Encrypt its tokens to this recipient key.
    pub encrypt: Option<EncryptionFile>,
    /// A private JWK (or PEM key) keygate decrypts its tokens with.
    pub decrypt_jwk_file: Option<PathBuf>,
}

/// The audiences whose access tokens are encrypted, with their keys.
#[derive(Debug, Clone, Default)]
pub struct AudienceEncryption(Vec<(String, Arc<TokenEncryption>)>);

impl AudienceEncryption {
    pub fn get(&self, audience: &str) -> Option<&Arc<TokenEncryption>> {
        self.0.iter().find(|(a, _)| a == audience).map(|(_, e)| e)
    }

    /// Every one, for starting the refreshers of `jwks_url` keys.
    pub fn all(&self) -> impl Iterator<Item = &Arc<TokenEncryption>> {
        self.0.iter().map(|(_, e)| e)
    }
}

/// Checks the tables, fills `jwt.audiences` (names and decrypters) and
/// returns the encryption side.
pub fn resolve(
    files: Vec<AudienceFile>,
    jwt: &mut JwtConfig,
) -> Result<AudienceEncryption, ConfigError> {
    let mut encryption = Vec::new();
    for file in files {
        let audience = file.audience;
        let bad = |why: String| ConfigError::invalid(format!("jwt audiences {audience:?}: {why}"));
        check_uri(&audience).map_err(|why| bad(why.into()))?;
        if jwt.knows_audience(&audience) {
            return Err(bad("listed twice, or the same as [jwt] audience".into()));
        }
        let encrypt = match &file.encrypt {
            Some(enc) => Some(parse_encryption(enc).map_err(|e| bad(format!("encrypt: {e}")))?),
            None => None,
        };
        // A PEM key has no `kid`; tokens name the encryption key's.
        let kid = encrypt.as_deref().and_then(|e| match e {
            TokenEncryption::Key(encrypter) => encrypter.recipient().kid().map(str::to_owned),
            TokenEncryption::Jwks(_) => None,
        });
        let decrypter = match &file.decrypt_jwk_file {
            Some(path) => Some(Arc::new(
                read_decrypter(path, kid).map_err(|e| bad(format!("decrypt_jwk_file: {e}")))?,
            )),
            None => None,
        };
        if let Some(encrypt) = encrypt {
            encryption.push((audience.clone(), encrypt));
        }
        jwt.audiences.push(ExtraAudience {
            audience,
            decrypter,
        });
    }
    Ok(AudienceEncryption(encryption))
}

/// RFC 8707 §2: an absolute URI, no fragment; short enough for a claim.
fn check_uri(audience: &str) -> Result<(), &'static str> {
    if audience.is_empty() || audience.len() > 256 {
        return Err("1 to 256 characters");
    }
    let url = reqwest::Url::parse(audience).map_err(|_| "not an absolute URI")?;
    if url.fragment().is_some() {
        return Err("an audience URI has no fragment (RFC 8707)");
    }
    Ok(())
}

/// A private JWK (`{"kty": "EC", ..., "d": ...}`, its own `kid`) or a PEM
/// private key (`kid` given).
fn read_decrypter(path: &Path, kid: Option<String>) -> Result<Decrypter, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let key = if bytes.starts_with(b"-----BEGIN") {
        let text = std::str::from_utf8(&bytes).map_err(|_| "not UTF-8 PEM".to_owned())?;
        DecryptionKey::from_pem(text, kid)
    } else {
        Jwk::from_json(&bytes).and_then(|jwk| DecryptionKey::from_jwk(&jwk))
    }
    .map_err(|e| format!("{}: {e}", path.display()))?;
    Decrypter::with_key(key).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn jwt() -> JwtConfig {
        super::super::jwt::resolve(
            &super::super::JwtArgs::default(),
            super::super::jwt::JwtFile::default(),
            "https://auth.example.com".into(),
        )
        .unwrap()
    }

    fn files(text: &str) -> Vec<AudienceFile> {
        #[derive(Deserialize)]
        struct Outer {
            audiences: Vec<AudienceFile>,
        }
        toml::from_str::<Outer>(text).unwrap().audiences
    }

    #[test]
    fn audiences_are_uris_listed_once() {
        let mut config = jwt();
        let ok = files(
            "[[audiences]]\naudience = \"https://payments.internal\"\n\
             [[audiences]]\naudience = \"urn:example:ledger\"\n\
             encrypt = { jwks_url = \"https://ledger.internal/jwks\" }\n",
        );
        let enc = resolve(ok, &mut config).unwrap();
        assert!(config.knows_audience("https://payments.internal"));
        assert!(config.knows_audience("urn:example:ledger"));
        assert!(enc.get("urn:example:ledger").is_some());
        assert!(enc.get("https://payments.internal").is_none());
        for (text, expected) in [
            ("audience = \"payments\"", "not an absolute URI"),
            ("audience = \"https://p.internal/#x\"", "fragment"),
            (
                "audience = \"https://auth.example.com\"",
                "same as [jwt] audience",
            ),
            (
                "audience = \"https://p.internal\"\nencrypt = { jwks_url = \"http://p.internal/jwks\" }",
                "encrypt: jwks_url",
            ),
            (
                "audience = \"https://p.internal\"\ndecrypt_jwk_file = \"/nonexistent\"",
                "decrypt_jwk_file: cannot read",
            ),
        ] {
            let error =
                resolve(files(&format!("[[audiences]]\n{text}\n")), &mut jwt()).unwrap_err();
            assert!(error.to_string().contains(expected), "{text}: {error}");
        }
        let twice = "[[audiences]]\naudience = \"https://p.internal\"\n";
        let error = resolve(files(&twice.repeat(2)), &mut jwt()).unwrap_err();
        assert!(error.to_string().contains("listed twice"), "{error}");
    }
}
