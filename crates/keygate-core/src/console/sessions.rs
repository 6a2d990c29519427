//! `ConsoleSessions`: login, resume, logout, CSRF tokens and purging.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::store::{ConsoleSessionRecord, ConsoleStore};
use super::{
    ACTION_LOGIN, ACTION_LOGOUT, ConsoleError, ConsoleLogin, ConsoleSettings, LOGIN_ROUTE, Resumed,
};
use crate::audit::{AuditLog, Failure, FailureKind};
use crate::error::Error;
use crate::keys::apikey::{random_bytes, random_id};
use crate::keys::pepper::KeyHash;
use crate::keys::service::{Admin, KeyService};
use crate::model::{AuditEntry, KeyRecord, SecretRecord};
use crate::secret::SecretString;
use crate::users::throttle::{Outcome, Throttle};
use crate::{AuthFailure, KeyId};

/// Domain separation of the two HMACs of a session token: the stored hash
/// must never be the CSRF token (the database would hand it out).
const TOKEN_LABEL: &str = "keygate/console-session/v1:";
const CSRF_LABEL: &str = "keygate/console-csrf/v1:";
/// A token is 32 random bytes in base64url without padding.
const TOKEN_CHARS: usize = 43;
/// The idle clock moves at most this often per session, so a page with
/// several requests writes once.
const TOUCH_EVERY_SECS: i64 = 15;

pub struct ConsoleSessions {
    store: Arc<dyn ConsoleStore>,
    keys: Arc<KeyService>,
    audit: Arc<AuditLog>,
    throttle: Arc<dyn Throttle>,
    settings: ConsoleSettings,
}

impl ConsoleSessions {
    /// `throttle` is the user logins' (`UserService::throttle`), so one
    /// client's failed logins of both kinds count together.
    pub fn new(
        store: Arc<dyn ConsoleStore>,
        keys: Arc<KeyService>,
        audit: Arc<AuditLog>,
        throttle: Arc<dyn Throttle>,
    ) -> Self {
        Self {
            store,
            keys,
            audit,
            throttle,
            settings: ConsoleSettings::default(),
        }
    }

    pub fn with_settings(mut self, settings: ConsoleSettings) -> Self {
        self.settings = settings;
        self
    }

    pub fn settings(&self) -> ConsoleSettings {
        self.settings
    }

    fn now(&self) -> i64 {
        self.keys.clock.now_secs()
    }

    fn hmac(&self, label: &str, token: &str) -> KeyHash {
        let mut input = Zeroizing::new(String::with_capacity(label.len() + token.len()));
        input.push_str(label);
        input.push_str(token);
        self.keys.pepper.hash(&input)
    }

    /// The stored form of a token; `None` for anything that is not one
    /// (refused without touching storage).
    fn token_hash(&self, token: &str) -> Option<KeyHash> {
        let shaped = token.len() == TOKEN_CHARS
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        shaped.then(|| self.hmac(TOKEN_LABEL, token))
    }

    /// Exchanges an admin key for a session. `client` is the client's
    /// address (as text): failed logins are throttled per client.
    pub async fn login(
        &self,
        presented_key: &str,
        client: &str,
    ) -> Result<ConsoleLogin, ConsoleError> {
        // An address that does not parse shares one bucket with all others
        // that do not: throttled, never exempt.
        let ip = client
            .parse::<IpAddr>()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let throttle_key = format!("\u{0}dashboard:{ip}");
        let attempt = self
            .throttle
            .admit(&throttle_key, ip, self.keys.clock.now_millis())
            .await
            .map_err(|retry_after_secs| ConsoleError::Throttled { retry_after_secs })?;
        match self.open(presented_key).await {
            Ok(login) => {
                self.throttle.settle(attempt, Outcome::Succeeded).await;
                Ok(login)
            }
            Err(ConsoleError::Store(e)) => {
                self.throttle.settle(attempt, Outcome::Forgiven).await;
                Err(ConsoleError::Store(e))
            }
            Err(refused) => {
                self.throttle.settle(attempt, Outcome::Failed).await;
                let reason = match refused {
                    ConsoleError::NotAdmin => "dashboard_not_admin",
                    _ => "dashboard_login_failed",
                };
                self.audit.record_failure(Failure {
                    kind: FailureKind::Auth,
                    source: Some(ip),
                    principal: None,
                    reason,
                    route: LOGIN_ROUTE,
                    method: "POST",
                    request_id: None,
                });
                Err(refused)
            }
        }
    }

    /// Checks the key as the admin API does, then stores the session.
    async fn open(&self, presented_key: &str) -> Result<ConsoleLogin, ConsoleError> {
        let admin = self
            .keys
            .authorize_admin(presented_key, None)
            .await
            .map_err(|f| match f {
                AuthFailure::Unauthenticated(..) => ConsoleError::BadCredentials,
                AuthFailure::Forbidden(_) => ConsoleError::NotAdmin,
                AuthFailure::Storage(e) => ConsoleError::Store(e),
            })?;
        let secret_hash = self.keys.pepper.hash(presented_key);
        // The record as stored now, for the session's display fields; a key
        // revoked in between is caught here or at the next resume.
        let (secret, key) = self
            .keys
            .store
            .find_by_hash(&secret_hash)
            .await?
            .ok_or(ConsoleError::BadCredentials)?;
        let now = self.now();
        if key.id.as_str() != admin.actor() || !key_alive(&key, &secret, now) {
            return Err(ConsoleError::BadCredentials);
        }
        let token = new_token()?;
        let record = ConsoleSessionRecord {
            token_hash: self.hmac(TOKEN_LABEL, token.expose_str()),
            key_id: key.id.clone(),
            secret_hash,
            created_at: now,
            last_seen_at: now,
            expires_at: now.saturating_add(self.settings.absolute_secs),
        };
        let detail = json!({ "session_expires_at": record.expires_at });
        let audit = self.audit_entry(ACTION_LOGIN, &key, detail)?;
        self.store.insert_console_session(&record, &audit).await?;
        let resumed = self.resumed(&key, &record, secret.expires_at);
        Ok(ConsoleLogin { token, resumed })
    }

    /// The session `token` names, if it is live: checks both expiries and
    /// the key, and moves the idle clock forward. A session found expired
    /// or whose key is gone is deleted.
    pub async fn resume(&self, token: &str) -> Result<Resumed, ConsoleError> {
        let hash = self.token_hash(token).ok_or(ConsoleError::Unknown)?;
        let mut session = self
            .store
            .get_console_session(&hash)
            .await?
            .ok_or(ConsoleError::Unknown)?;
        let now = self.now();
        if now >= session.expires_at
            || now >= session.last_seen_at.saturating_add(self.settings.idle_secs)
        {
            self.store.delete_console_session(&hash, None).await?;
            return Err(ConsoleError::Expired);
        }
        let found = self.keys.store.find_by_hash(&session.secret_hash).await?;
        let (secret, key) = match found {
            Some((secret, key)) if key.id == session.key_id && key_alive(&key, &secret, now) => {
                (secret, key)
            }
            _ => {
                self.store.delete_console_session(&hash, None).await?;
                return Err(ConsoleError::KeyGone);
            }
        };
        if now - session.last_seen_at >= TOUCH_EVERY_SECS {
            self.store.touch_console_session(&hash, now).await?;
            session.last_seen_at = now;
        }
        Ok(self.resumed(&key, &session, secret.expires_at))
    }

    fn resumed(
        &self,
        key: &KeyRecord,
        session: &ConsoleSessionRecord,
        secret_expires_at: Option<i64>,
    ) -> Resumed {
        // The session cannot outlive the key or the secret it logged in with.
        let expires_at = [Some(session.expires_at), key.expires_at, secret_expires_at]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(session.expires_at);
        let idle = session.last_seen_at.saturating_add(self.settings.idle_secs);
        Resumed {
            admin: Admin::new(key.id.clone(), key.tenant.clone(), None),
            key_id: key.id.clone(),
            tenant: key.tenant.clone(),
            key_name: key.name.clone(),
            key_prefix: key.prefix.clone(),
            expires_at,
            idle_expires_at: idle.min(expires_at),
        }
    }

    /// Ends the session (audited when it existed). Unknown tokens are fine:
    /// logging out twice is not an error.
    pub async fn logout(&self, token: &str) -> Result<(), Error> {
        let Some(hash) = self.token_hash(token) else {
            return Ok(());
        };
        let Some(session) = self.store.get_console_session(&hash).await? else {
            return Ok(());
        };
        let key = self.keys.store.get_key(&session.key_id).await?;
        let audit = self.logout_entry(&session.key_id, key.as_ref())?;
        self.store
            .delete_console_session(&hash, Some(&audit))
            .await?;
        Ok(())
    }

    /// The form token of the session `token`: base64url of an HMAC of it.
    pub fn csrf_token(&self, token: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.hmac(CSRF_LABEL, token))
    }

    /// Whether `presented` is the form token of session `token`, compared
    /// in constant time.
    pub fn check_csrf(&self, token: &str, presented: &str) -> bool {
        let expected = self.csrf_token(token);
        expected.len() == presented.len()
            && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
    }

    /// Deletes sessions past either expiry; for a background task.
    pub async fn purge_expired(&self) -> Result<u64, Error> {
        let now = self.now();
        self.store
            .purge_console_sessions(now, now.saturating_sub(self.settings.idle_secs))
            .await
    }

    fn audit_entry(
        &self,
        action: &str,
        key: &KeyRecord,
        detail: serde_json::Value,
    ) -> Result<AuditEntry, Error> {
        self.keys.audit(key.id.as_str(), None, action, key, detail)
    }

    fn logout_entry(&self, id: &KeyId, key: Option<&KeyRecord>) -> Result<AuditEntry, Error> {
        Ok(AuditEntry {
            id: random_id("evt_", 20)?,
            at: self.now(),
            action: ACTION_LOGOUT.to_owned(),
            actor: id.to_string(),
            target: Some(id.to_string()),
            tenant: key.and_then(|k| k.tenant.as_ref().map(|t| t.as_str().to_owned())),
            request_id: None,
            detail: json!({}),
            seq: 0,
        })
    }
}

/// An admin key that may still hold a session: not revoked, neither it nor
/// the secret expired, still with the admin scope.
fn key_alive(key: &KeyRecord, secret: &SecretRecord, now: i64) -> bool {
    key.revoked_at.is_none()
        && key.expires_at.is_none_or(|at| at > now)
        && secret.expires_at.is_none_or(|at| at > now)
        && key.is_admin()
}

fn new_token() -> Result<SecretString, Error> {
    let mut raw = Zeroizing::new([0u8; 32]);
    random_bytes(raw.as_mut())?;
    Ok(SecretString::new(URL_SAFE_NO_PAD.encode(raw.as_ref())))
}
