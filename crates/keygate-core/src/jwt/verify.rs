//! Verification of keygate's own tokens by the server: keygate-verify
//! against the current key set, a cache of tokens seen before, and the
//! revocation check on every call.

use std::sync::Arc;

use serde_json::Value;

use keygate_verify::{Claims, Encryption, Validation, Verifier};

use super::cache::Cached;
use super::service::{ACCESS_TOKEN_TYP, TokenError, TokenService};

impl TokenService {
    /// Verifies a token keygate issued for `audience`: signature against the
    /// current key set, claims, then revocation.
    pub async fn verify(&self, token: &str, audience: &str) -> Result<Arc<Claims>, TokenError> {
        let now = self.clock.now_secs();
        let key = self.cache.key(audience, token);
        let claims = match self.cache.get(&key) {
            Some(hit) if hit.exp + self.config.leeway > now => hit.value,
            _ => {
                let claims = Arc::new(self.verify_uncached(token, audience, now).await?);
                #[allow(clippy::cast_possible_truncation)]
                let exp = claims.exp.as_f64().floor() as i64;
                self.cache.insert(
                    &key,
                    Cached {
                        value: claims.clone(),
                        exp,
                    },
                    now,
                );
                claims
            }
        };
        let check = self.revocation.read().clone();
        if let Some(check) = check
            && check
                .is_revoked(&claims)
                .await
                .map_err(TokenError::Storage)?
        {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    async fn verify_uncached(
        &self,
        token: &str,
        audience: &str,
        now: i64,
    ) -> Result<Claims, TokenError> {
        let now_u = u64::try_from(now).unwrap_or(0);
        let first = self
            .verifier(audience)?
            .verify_unchecked_binding(token, now_u);
        match first {
            Err(keygate_verify::Error::UnknownKid) if self.may_force_reload(now) => {
                // Another node may have added a key since the last reload.
                self.reload().await.map_err(TokenError::Storage)?;
                Ok(self
                    .verifier(audience)?
                    .verify_unchecked_binding(token, now_u)?)
            }
            other => Ok(other?),
        }
    }

    /// A token keygate issued for any of its audiences (introspection):
    /// a signed one is verified for the audience it names, if keygate
    /// issues for it; an encrypted one for each audience whose private key
    /// keygate holds, until one opens it. An encrypted token keygate holds
    /// no key for is refused as malformed, as any token it cannot read.
    pub async fn verify_issued(&self, token: &str) -> Result<Arc<Claims>, TokenError> {
        if !keygate_verify::jwe::is_compact_jwe(token) {
            let named = unverified_audience(token)
                .filter(|aud| self.config.knows_audience(aud))
                .unwrap_or_else(|| self.config.audience.clone());
            return self.verify(token, &named).await;
        }
        let mut refused = TokenError::Invalid(keygate_verify::Error::MalformedToken(
            "an encrypted token keygate holds no key for",
        ));
        for extra in self
            .config
            .audiences
            .iter()
            .filter(|a| a.decrypter.is_some())
        {
            match self.verify(token, &extra.audience).await {
                Ok(claims) => return Ok(claims),
                Err(e @ TokenError::Storage(_)) => return Err(e),
                Err(e) => refused = e,
            }
        }
        Err(refused)
    }

    /// The signed token inside an encrypted one, when one of the
    /// audiences' private keys opens it; None otherwise.
    pub fn open_nested(&self, token: &str) -> Option<String> {
        self.config
            .audiences
            .iter()
            .filter_map(|a| a.decrypter.as_ref())
            .find_map(|decrypter| decrypter.decrypt_nested(token).ok())
    }

    /// For revocation: a token keygate signed (signature, issuer, `typ`),
    /// whatever its times, so a token not yet valid can be revoked before it
    /// becomes so; an encrypted one once `open_nested` has opened it.
    /// Returns its `jti` and `exp`.
    pub fn verify_for_revocation(&self, token: &str) -> Result<(String, i64), TokenError> {
        let opened;
        let token = if keygate_verify::jwe::is_compact_jwe(token) {
            opened = self.open_nested(token).ok_or(TokenError::Invalid(
                keygate_verify::Error::MalformedToken("an encrypted token keygate cannot open"),
            ))?;
            opened.as_str()
        } else {
            token
        };
        let verifier = self.verifier(&self.config.audience)?;
        let (header, payload) = verifier.verify_signature(token)?;
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP))
        {
            return Err(keygate_verify::Error::InvalidTokenType.into());
        }
        let claims = keygate_verify::json::parse_object(&payload)?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.config.issuer.as_str()) {
            return Err(keygate_verify::Error::InvalidIssuer.into());
        }
        let jti = claims.get("jti").and_then(Value::as_str);
        let exp = claims.get("exp").and_then(Value::as_i64);
        match (jti, exp) {
            (Some(jti), Some(exp)) => Ok((jti.to_owned(), exp)),
            _ => Err(keygate_verify::Error::MissingClaim { name: "jti" }.into()),
        }
    }

    fn may_force_reload(&self, now: i64) -> bool {
        let mut last = self.last_forced_reload.lock();
        if now > *last {
            *last = now;
            true
        } else {
            false
        }
    }

    fn verifier(&self, audience: &str) -> Result<Arc<Verifier>, TokenError> {
        let snapshot = self.snapshot.read().clone();
        let mut verifiers = snapshot.verifiers.lock();
        if let Some(v) = verifiers.get(audience) {
            return Ok(v.clone());
        }
        let mut validation = Validation::new(self.config.issuer.clone(), audience);
        validation.leeway_secs = u64::try_from(self.config.leeway).unwrap_or(0);
        let mut verifier = Verifier::new(snapshot.keys.clone(), validation)?;
        if let Some(decrypter) = self.config.decrypter_for(audience) {
            // Optional: a signed-only token for the audience is keygate's
            // too (issued before `encrypt` was set).
            verifier = verifier.with_decryption(decrypter.clone(), Encryption::Optional);
        }
        let verifier = Arc::new(verifier);
        // Audiences come from configuration (routes, the access audience),
        // so the map stays small; the bound guards against a caller that
        // passes client input here.
        if verifiers.len() < 1024 {
            verifiers.insert(audience.to_owned(), verifier.clone());
        }
        Ok(verifier)
    }

    /// Drops every verified token (after a key is withdrawn).
    pub fn clear_cache(&self) {
        self.cache.clear();
    }
}

/// The `aud` a signed token names (a string, or the first of an array),
/// unverified: it only picks which audience to verify the token for.
fn unverified_audience(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    // The verifier refuses larger tokens anyway; nothing big is decoded here.
    if payload.len() > 16 * 1024 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    match value.get("aud")? {
        Value::String(aud) => Some(aud.clone()),
        Value::Array(auds) => auds.first()?.as_str().map(str::to_owned),
        _ => None,
    }
}
