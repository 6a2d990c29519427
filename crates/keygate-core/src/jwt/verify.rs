//! Verification of keygate's own tokens by the server: keygate-verify
//! against the current key set, a cache of tokens seen before, and the
//! revocation check on every call.

use std::sync::Arc;

use serde_json::Value;

use keygate_verify::{Claims, Validation, Verifier};

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

    /// For revocation: a token keygate signed (signature, issuer, `typ`),
    /// whatever its times, so a token not yet valid can be revoked before it
    /// becomes so. Returns its `jti` and `exp`.
    pub fn verify_for_revocation(&self, token: &str) -> Result<(String, i64), TokenError> {
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
        let verifier = Arc::new(Verifier::new(snapshot.keys.clone(), validation)?);
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
