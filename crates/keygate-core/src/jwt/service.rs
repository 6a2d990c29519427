//! The token service: keeps the signing keys (generating, rotating and
//! retiring them on schedule), publishes the JWKS, signs tokens with the
//! active key, and verifies tokens for the server itself through
//! keygate-verify, with a cache of tokens seen before and the revocation
//! check (blocklisted `jti`, per-user cut-off) on every call.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use serde_json::{Map, Value, json};

use keygate_verify::{Claims, ImportOptions, JwkSet, KIND_CLAIM, OWNER_CLAIM, TokenKind, Verifier};

use super::cache::VerifiedCache;
use super::keyset::{KeyState, KeyStatus, Plan, RotationPolicy, SigningKeyRecord, plan, statuses};
use super::material::{NewSigningKey, Signer, SigningAlg};
use crate::clock::MillisClock;
use crate::error::Error;
use crate::keys::apikey::random_id;
use crate::keys::service::Admin;
use crate::model::AuditEntry;
use crate::sealed::MasterKey;
use crate::store::SigningKeyStore;

/// The `typ` of every token keygate signs (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// `iss` of every token and the RFC 8414 issuer identifier.
    pub issuer: String,
    /// `aud` of user access tokens.
    pub audience: String,
    pub algorithm: SigningAlg,
    /// Seconds; user access tokens (login, refresh).
    pub access_token_ttl: i64,
    /// Seconds; client-credentials tokens.
    pub client_token_ttl: i64,
    /// Seconds; tokens the gateway hands upstream.
    pub internal_token_ttl: i64,
    pub rotation_period: i64,
    /// `Cache-Control: max-age` of the JWKS.
    pub jwks_max_age: i64,
    pub leeway: i64,
    pub verified_cache_capacity: usize,
    /// Audiences beyond `audience` that client tokens may be issued for
    /// (RFC 8707 resource indicators).
    pub audiences: Vec<ExtraAudience>,
}

/// An audience a client may ask a token for (`resource`), and the private
/// key keygate reads its encrypted tokens with, when it may.
#[derive(Debug, Clone)]
pub struct ExtraAudience {
    pub audience: String,
    /// Set when keygate itself verifies this audience's tokens (a gateway
    /// route in front of it, introspection, revocation) and they are
    /// encrypted.
    pub decrypter: Option<Arc<keygate_verify::jwe::Decrypter>>,
}

impl JwtConfig {
    /// Whether keygate issues tokens for `audience`.
    pub fn knows_audience(&self, audience: &str) -> bool {
        audience == self.audience || self.audiences.iter().any(|a| a.audience == audience)
    }

    /// The private key of `audience`'s encrypted tokens, if keygate holds one.
    pub fn decrypter_for(&self, audience: &str) -> Option<&Arc<keygate_verify::jwe::Decrypter>> {
        self.audiences
            .iter()
            .find(|a| a.audience == audience)?
            .decrypter
            .as_ref()
    }

    pub fn policy(&self) -> RotationPolicy {
        RotationPolicy {
            rotation_period: self.rotation_period,
            jwks_max_age: self.jwks_max_age,
            max_token_ttl: self
                .access_token_ttl
                .max(self.client_token_ttl)
                .max(self.internal_token_ttl),
            leeway: self.leeway,
        }
    }
}

/// Revocation of otherwise valid tokens, asked on every verification.
#[async_trait]
pub trait RevocationCheck: Send + Sync {
    /// `Ok(true)` when the token must be refused. Storage errors fail closed.
    async fn is_revoked(&self, claims: &Claims) -> Result<bool, Error>;
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Invalid(#[from] keygate_verify::Error),
    #[error("the token has been revoked")]
    Revoked,
    #[error(transparent)]
    Storage(Error),
}

/// What to put in a token beyond `iss`, `iat`, `nbf`, `exp` and `jti`.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// Written as `kg_kind` over anything in `claims`: every token keygate
    /// signs says whether it speaks for a user or a client.
    pub kind: TokenKind,
    /// A user id for `User`; the key id (never the owner) for `Client`.
    pub subject: String,
    pub audience: String,
    pub ttl: i64,
    /// The earliest `iat` the token may carry (a user's session cut-off,
    /// rounded up): a token issued in the same second as a cut-off must not
    /// look older than it.
    pub not_issued_before: Option<i64>,
    /// `roles`, `tenant`, `scope`, `client_id`, `kg_owner`, custom claims.
    pub claims: Map<String, Value>,
}

/// A client token's subject is a key id or a registered client's id, and
/// a user token's is neither, so the two kinds can never share a `sub`.
fn check_subject(kind: TokenKind, subject: &str) -> Result<(), Error> {
    let is_client = super::client_ref::ClientRef::parse(subject).is_some();
    match (kind, is_client) {
        (TokenKind::Client, true) | (TokenKind::User, false) => Ok(()),
        (TokenKind::Client, false) => Err(Error::Internal(
            "a client token's subject must be its key id or client id".into(),
        )),
        (TokenKind::User, true) => Err(Error::Internal(
            "a user token's subject must not be a key id or client id".into(),
        )),
    }
}

#[derive(Clone)]
pub struct IssuedToken {
    pub token: String,
    pub jti: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// The token is a bearer credential: never printed.
impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &format_args!("{}", crate::secret::REDACTED))
            .field("jti", &self.jti)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

pub(super) struct Snapshot {
    pub(super) statuses: Vec<KeyStatus>,
    /// Pending and active keys, opened, by activation time: the signer is
    /// picked at signing time, so a pending key takes over at its moment
    /// without waiting for a reload.
    pub(super) signers: Vec<(i64, Arc<Signer>)>,
    pub(super) jwks: Arc<str>,
    pub(super) keys: JwkSet,
    pub(super) verifiers: Mutex<HashMap<String, Arc<Verifier>>>,
}

pub struct TokenService {
    pub(super) store: Arc<dyn SigningKeyStore>,
    pub(super) master: Arc<MasterKey>,
    pub(super) clock: Arc<dyn MillisClock>,
    pub(super) config: JwtConfig,
    pub(super) snapshot: RwLock<Arc<Snapshot>>,
    pub(super) cache: VerifiedCache<Claims>,
    pub(super) revocation: RwLock<Option<Arc<dyn RevocationCheck>>>,
    /// Last reload forced by an unknown `kid`, so a flood of made-up kids
    /// cannot turn into a flood of storage reads.
    pub(super) last_forced_reload: Mutex<i64>,
}

impl TokenService {
    /// Builds the service and brings the key set up to date: the first start
    /// creates the first key.
    pub async fn start(
        store: Arc<dyn SigningKeyStore>,
        master: Arc<MasterKey>,
        clock: Arc<dyn MillisClock>,
        config: JwtConfig,
    ) -> Result<Self, Error> {
        let service = Self {
            store,
            master,
            clock,
            cache: VerifiedCache::new(config.verified_cache_capacity),
            config,
            snapshot: RwLock::new(Arc::new(Snapshot::empty()?)),
            revocation: RwLock::new(None),
            last_forced_reload: Mutex::new(i64::MIN),
        };
        service.maintain().await?;
        Ok(service)
    }

    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    pub fn clock(&self) -> &Arc<dyn MillisClock> {
        &self.clock
    }

    pub fn set_revocation_check(&self, check: Arc<dyn RevocationCheck>) {
        *self.revocation.write() = Some(check);
    }

    /// Runs the schedule (first key, successor, deletion of expired keys)
    /// and reloads. Every node calls it periodically; a second node racing
    /// to add the same successor loses on the generation's uniqueness.
    pub async fn maintain(&self) -> Result<(), Error> {
        let now = self.clock.now_secs();
        let policy = self.config.policy();
        let current = statuses(self.store.list_signing_keys().await?, now, &policy);
        let added = match plan(&current, self.config.algorithm, now, &policy) {
            Plan::Nothing => false,
            Plan::Bootstrap => {
                self.add_key(&current, now, "system", None).await?;
                true
            }
            Plan::AddPending { activate_at } => {
                self.add_key(&current, activate_at, "system", None).await?;
                true
            }
        };
        let expired: Vec<String> = current
            .iter()
            .filter(|s| s.state == KeyState::Expired)
            .map(|s| s.record.kid.clone())
            .collect();
        if !expired.is_empty() {
            self.store.delete_signing_keys(&expired).await?;
        }
        if added || !expired.is_empty() {
            return self.reload().await;
        }
        // Usually nothing changed: keep the snapshot (its opened keys and
        // verifiers) unless another node added or deleted a key.
        let unchanged = {
            let snapshot = self.snapshot.read();
            snapshot.statuses.len() == current.len()
                && snapshot
                    .statuses
                    .iter()
                    .zip(&current)
                    .all(|(a, b)| a.record.kid == b.record.kid)
        };
        if unchanged {
            return Ok(());
        }
        self.install(current)
    }

    /// Rotates now: adds a key that signs once it has been published for one
    /// JWKS lifetime. With a rotation already pending, answers that key
    /// (`false`) instead of queueing another.
    pub async fn rotate(&self, admin: &Admin) -> Result<(KeyStatus, bool), Error> {
        if admin.tenant().is_some() {
            return Err(Error::Forbidden(
                "signing keys are server-wide: only a root admin key may rotate them".into(),
            ));
        }
        let now = self.clock.now_secs();
        let policy = self.config.policy();
        let current = statuses(self.store.list_signing_keys().await?, now, &policy);
        if let Some(pending) = current.iter().find(|s| s.state == KeyState::Pending) {
            return Ok((pending.clone(), false));
        }
        let activate_at = now + policy.jwks_max_age;
        let added = self
            .add_key(
                &current,
                activate_at,
                admin.actor(),
                admin.request_id.clone(),
            )
            .await?;
        self.reload().await?;
        let kid = added.ok_or(Error::Conflict)?;
        let snapshot = self.snapshot.read().clone();
        let status = snapshot
            .statuses
            .iter()
            .find(|s| s.record.kid == kid)
            .cloned()
            .ok_or(Error::Conflict)?;
        Ok((status, true))
    }

    async fn add_key(
        &self,
        current: &[KeyStatus],
        activate_at: i64,
        actor: &str,
        request_id: Option<String>,
    ) -> Result<Option<String>, Error> {
        let generation = current
            .iter()
            .map(|s| s.record.generation)
            .max()
            .unwrap_or(0)
            + 1;
        let key = NewSigningKey::generate(self.config.algorithm)?;
        let now = self.clock.now_secs();
        let record = SigningKeyRecord {
            kid: key.kid.clone(),
            generation,
            alg: key.alg,
            public_jwk: key.public_jwk.clone(),
            sealed_private: key.seal(&self.master)?,
            created_at: now,
            activate_at,
        };
        let audit = AuditEntry {
            id: random_id("evt_", 20)?,
            at: now,
            action: "signing_key.created".into(),
            actor: actor.to_owned(),
            target: Some(key.kid.clone()),
            tenant: None,
            request_id,
            detail: json!({"alg": key.alg.as_str(), "activate_at": activate_at}),
            seq: 0,
        };
        let inserted = self.store.insert_signing_key(&record, &audit).await?;
        if inserted {
            tracing::info!(kid = %key.kid, alg = key.alg.as_str(), activate_at, "added a signing key");
        }
        Ok(inserted.then_some(key.kid))
    }

    /// Reads the keys again and swaps in a new snapshot.
    pub async fn reload(&self) -> Result<(), Error> {
        let now = self.clock.now_secs();
        let store = self.store.clone();
        let records = crate::home::run(async move { store.list_signing_keys().await }).await?;
        self.install(statuses(records, now, &self.config.policy()))
    }

    fn install(&self, statuses: Vec<KeyStatus>) -> Result<(), Error> {
        let snapshot = Snapshot::build(statuses, &self.master)?;
        *self.snapshot.write() = Arc::new(snapshot);
        Ok(())
    }

    /// Every key with its state, for `GET /v1/signing-keys`.
    pub fn signing_keys(&self, admin: &Admin) -> Result<Vec<KeyStatus>, Error> {
        if admin.tenant().is_some() {
            return Err(Error::Forbidden(
                "signing keys are server-wide: only a root admin key may list them".into(),
            ));
        }
        let now = self.clock.now_secs();
        let records = self
            .snapshot
            .read()
            .statuses
            .iter()
            .map(|s| s.record.clone())
            .collect();
        Ok(statuses(records, now, &self.config.policy()))
    }

    /// The JWKS document: public keys of pending, active and retired keys.
    pub fn jwks_json(&self) -> Arc<str> {
        self.snapshot.read().jwks.clone()
    }

    /// Signs a token with the key active now.
    pub fn issue(&self, request: TokenRequest) -> Result<IssuedToken, Error> {
        let now = self.clock.now_secs();
        let snapshot = self.snapshot.read().clone();
        let signer = snapshot
            .signers
            .iter()
            .rev()
            .find(|(activate_at, _)| *activate_at <= now)
            .map(|(_, signer)| signer.clone())
            .ok_or_else(|| Error::Internal("no active signing key".into()))?;
        check_subject(request.kind, &request.subject)?;
        let issued_at = request.not_issued_before.map_or(now, |t| t.max(now));
        let expires_at = now + request.ttl;
        let jti = random_id("", 22)?;
        let mut claims = request.claims;
        if request.kind == TokenKind::User {
            claims.remove(OWNER_CLAIM);
        }
        claims.insert(KIND_CLAIM.into(), request.kind.as_str().into());
        claims.insert("iss".into(), self.config.issuer.clone().into());
        claims.insert("sub".into(), request.subject.into());
        claims.insert("aud".into(), request.audience.into());
        claims.insert("iat".into(), issued_at.into());
        claims.insert("nbf".into(), now.into());
        claims.insert("exp".into(), expires_at.into());
        claims.insert("jti".into(), jti.clone().into());
        let token = signer.sign_jwt(ACCESS_TOKEN_TYP, &Value::Object(claims))?;
        Ok(IssuedToken {
            token,
            jti,
            issued_at,
            expires_at,
        })
    }
}

impl Snapshot {
    fn empty() -> Result<Self, Error> {
        Ok(Self {
            statuses: Vec::new(),
            signers: Vec::new(),
            jwks: Arc::from(r#"{"keys":[]}"#),
            keys: JwkSet::from_keys(Vec::new()).map_err(|e| Error::Internal(e.to_string()))?,
            verifiers: Mutex::new(HashMap::new()),
        })
    }

    fn build(statuses: Vec<KeyStatus>, master: &MasterKey) -> Result<Self, Error> {
        let mut signers = Vec::new();
        let mut hmac_keys = Vec::new();
        let mut published = Vec::new();
        for status in &statuses {
            let record = &status.record;
            let signs = matches!(status.state, KeyState::Pending | KeyState::Active);
            let own_hmac = !record.alg.is_published() && status.state != KeyState::Expired;
            if signs || own_hmac {
                let signer = Arc::new(Signer::open(
                    record.alg,
                    &record.kid,
                    &record.sealed_private,
                    master,
                )?);
                if let Some(key) = signer.hmac_verifying_key() {
                    hmac_keys.push(key);
                }
                if signs {
                    signers.push((record.activate_at, signer));
                }
            }
            if status.is_published() {
                let jwk: Value = serde_json::from_str(&record.public_jwk).map_err(|e| {
                    Error::Internal(format!("stored JWK of {} is not JSON: {e}", record.kid))
                })?;
                published.push(jwk);
            }
        }
        let jwks = json!({ "keys": published }).to_string();
        let imported = JwkSet::from_json(jwks.as_bytes(), &ImportOptions::remote())
            .map_err(|e| Error::Internal(format!("own JWKS does not import: {e}")))?;
        let mut keys = imported.keys().to_vec();
        keys.extend(hmac_keys);
        Ok(Self {
            statuses,
            signers,
            jwks: Arc::from(jwks),
            keys: JwkSet::from_keys(keys).map_err(|e| Error::Internal(e.to_string()))?,
            verifiers: Mutex::new(HashMap::new()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_subject_is_a_key_id_and_a_user_subject_never_is() {
        let key = "key_AAAAAAAAAAAAAAAA";
        assert!(check_subject(TokenKind::Client, key).is_ok());
        assert!(check_subject(TokenKind::User, "usr_AAAAAAAAAAAAAAAA").is_ok());
        for owner in ["usr_AAAAAAAAAAAAAAAA", "svc-billing", "", "key_short"] {
            assert!(check_subject(TokenKind::Client, owner).is_err(), "{owner}");
        }
        assert!(check_subject(TokenKind::User, key).is_err());
        let cli = "cli_AAAAAAAAAAAAAAAA";
        assert!(check_subject(TokenKind::Client, cli).is_ok());
        assert!(check_subject(TokenKind::User, cli).is_err());
    }

    #[test]
    fn an_issued_token_prints_without_its_token() {
        let issued = IssuedToken {
            token: "eyJhbGciOiJFZERTQSJ9.secret-claims.signature".into(),
            jti: "jti-1".into(),
            issued_at: 1,
            expires_at: 2,
        };
        let text = format!("{issued:?}");
        assert!(text.contains("jti-1"), "{text}");
        assert!(!text.contains("secret-claims"), "{text}");
    }
}
