//! The encrypter: a sender's side of compact JWE, for nested JWTs (RFC 7519
//! §5.2: signed first, then encrypted, `cty: "JWT"`).
//!
//! Lives beside the decrypter so that keygate (which mints) and its
//! services (which decrypt) share one implementation and one test suite.

use serde_json::{Map, Value};

use super::algs::ContentEncryption;
use super::recipient::RecipientKey;
use super::{content, keymgmt};
use crate::{Error, b64};

/// Encrypts to one recipient key with one content encryption (A256GCM
/// unless chosen otherwise).
#[derive(Debug)]
pub struct Encrypter {
    recipient: RecipientKey,
    enc: ContentEncryption,
}

impl Encrypter {
    #[must_use]
    pub fn new(recipient: RecipientKey) -> Self {
        Self {
            recipient,
            enc: ContentEncryption::A256Gcm,
        }
    }

    #[must_use]
    pub fn with_enc(mut self, enc: ContentEncryption) -> Self {
        self.enc = enc;
        self
    }

    #[must_use]
    pub fn recipient(&self) -> &RecipientKey {
        &self.recipient
    }

    /// Wraps a compact JWS as a nested JWT: `cty: "JWT"`, the recipient's
    /// `kid` in the header.
    pub fn encrypt_nested(&self, jws: &str) -> Result<String, Error> {
        self.encrypt(jws.as_bytes(), Some("JWT"))
    }

    /// Encrypts `plaintext` under a fresh CEK.
    pub fn encrypt(&self, plaintext: &[u8], cty: Option<&str>) -> Result<String, Error> {
        let wrapped = keymgmt::wrap_new_cek(&self.recipient, self.enc)?;
        let mut header = Map::new();
        header.insert("alg".into(), self.recipient.alg().name().into());
        header.insert("enc".into(), self.enc.name().into());
        if let Some(kid) = self.recipient.kid() {
            header.insert("kid".into(), kid.into());
        }
        if let Some(cty) = cty {
            header.insert("cty".into(), cty.into());
        }
        header.extend(wrapped.header);
        let header_b64 = b64::encode(Value::Object(header).to_string().as_bytes());
        let sealed = content::encrypt(self.enc, &wrapped.cek, header_b64.as_bytes(), plaintext)?;
        Ok([
            header_b64,
            b64::encode(&wrapped.encrypted_key),
            b64::encode(&sealed.iv),
            b64::encode(&sealed.ciphertext),
            b64::encode(&sealed.tag),
        ]
        .join("."))
    }
}
