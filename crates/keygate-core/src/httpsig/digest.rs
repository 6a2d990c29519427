//! `Content-Digest` (RFC 9530): the signature covers the header, the header
//! commits to the body. `sha-256` and `sha-512` are understood; every one
//! the header carries must match, and at least one must be there.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::structured::{BareItem, Item, Member, parse_dictionary};
use super::{HeaderLookup, SigCode, SignatureRefusal};

/// The header value for `body`, as the signer sends it.
pub fn content_digest_sha256(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(Sha256::digest(body)))
}

/// The body's expected digests, fed chunk by chunk as it streams through.
pub struct BodyDigest {
    sha256: Option<(Vec<u8>, Sha256)>,
    sha512: Option<(Vec<u8>, Sha512)>,
}

impl std::fmt::Debug for BodyDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyDigest")
            .field("sha256", &self.sha256.is_some())
            .field("sha512", &self.sha512.is_some())
            .finish()
    }
}

impl BodyDigest {
    /// Reads the request's `Content-Digest`. `content_digest_missing` when
    /// it is absent or names no algorithm keygate knows.
    pub fn from_headers(headers: &dyn HeaderLookup) -> Result<Self, SignatureRefusal> {
        let values = headers.values("content-digest");
        if values.is_empty() {
            return Err(SignatureRefusal::new(
                SigCode::ContentDigestMissing,
                "a request with a body must carry `Content-Digest: sha-256=:<base64>:` and sign it",
            ));
        }
        let mut text = String::new();
        for (i, v) in values.iter().enumerate() {
            let v = std::str::from_utf8(v).map_err(|_| {
                SignatureRefusal::malformed("`Content-Digest` holds bytes other than ASCII")
            })?;
            if i > 0 {
                text.push_str(", ");
            }
            text.push_str(v.trim());
        }
        let dict = parse_dictionary(&text).map_err(|e| {
            SignatureRefusal::malformed(format!("`Content-Digest` is malformed: {e}"))
        })?;
        let mut out = Self {
            sha256: None,
            sha512: None,
        };
        for (alg, member) in dict {
            let expected = match member {
                Member::Item(Item {
                    value: BareItem::Bytes(b),
                    ..
                }) => b,
                _ => {
                    return Err(SignatureRefusal::malformed(format!(
                        "`Content-Digest` member `{alg}` must be a byte sequence"
                    )));
                }
            };
            match alg.as_str() {
                "sha-256" => out.sha256 = Some((expected, Sha256::new())),
                "sha-512" => out.sha512 = Some((expected, Sha512::new())),
                _ => {}
            }
        }
        if out.sha256.is_none() && out.sha512.is_none() {
            return Err(SignatureRefusal::new(
                SigCode::ContentDigestMissing,
                "`Content-Digest` carries neither sha-256 nor sha-512",
            ));
        }
        Ok(out)
    }

    pub fn update(&mut self, chunk: &[u8]) {
        if let Some((_, h)) = &mut self.sha256 {
            h.update(chunk);
        }
        if let Some((_, h)) = &mut self.sha512 {
            h.update(chunk);
        }
    }

    /// Compares once the whole body has been fed.
    pub fn finish(self) -> Result<(), SignatureRefusal> {
        let mut ok = true;
        if let Some((expected, h)) = self.sha256 {
            ok &= bool::from(h.finalize().as_slice().ct_eq(&expected));
        }
        if let Some((expected, h)) = self.sha512 {
            ok &= bool::from(h.finalize().as_slice().ct_eq(&expected));
        }
        if ok {
            Ok(())
        } else {
            Err(SignatureRefusal::new(
                SigCode::ContentDigestMismatch,
                "the body does not match its `Content-Digest`",
            ))
        }
    }
}

/// One-shot: the request's `Content-Digest` against the whole body.
pub fn check_content_digest(
    headers: &dyn HeaderLookup,
    body: &[u8],
) -> Result<(), SignatureRefusal> {
    let mut digest = BodyDigest::from_headers(headers)?;
    digest.update(body);
    digest.finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rfc_9530_example_and_streaming() {
        // RFC 9530 §2: {"hello": "world"} with sha-256 and sha-512.
        let body = b"{\"hello\": \"world\"}";
        let h = vec![(
            "Content-Digest",
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, \
             sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
        )];
        check_content_digest(&h, body).unwrap();
        assert_eq!(
            content_digest_sha256(body),
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
        );
        let mut d = BodyDigest::from_headers(&h).unwrap();
        for chunk in body.chunks(5) {
            d.update(chunk);
        }
        d.finish().unwrap();
        let err = check_content_digest(&h, b"{\"hello\": \"World\"}").unwrap_err();
        assert_eq!(err.code, SigCode::ContentDigestMismatch);
    }

    #[test]
    fn missing_unknown_and_malformed() {
        let none: Vec<(&str, &str)> = vec![];
        assert_eq!(
            check_content_digest(&none, b"x").unwrap_err().code,
            SigCode::ContentDigestMissing
        );
        let md5 = vec![("content-digest", "md5=:AAAA:")];
        assert_eq!(
            check_content_digest(&md5, b"x").unwrap_err().code,
            SigCode::ContentDigestMissing
        );
        let bad = vec![("content-digest", "sha-256=abc")];
        assert_eq!(
            check_content_digest(&bad, b"x").unwrap_err().code,
            SigCode::SignatureMalformed
        );
        // One good digest does not excuse a wrong one beside it.
        let mixed = vec![(
            "content-digest",
            format!("{}, sha-512=:AAAA:", content_digest_sha256(b"x")),
        )];
        assert_eq!(
            check_content_digest(&mixed, b"x").unwrap_err().code,
            SigCode::ContentDigestMismatch
        );
    }
}
