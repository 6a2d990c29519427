//! The session service: starts refresh-token families, rotates a token at
//! every use, revokes a family whose used token comes back, and answers
//! revocation and introspection. `rules` decides what a presented token
//! means; the store applies it inside one transaction with the family locked.

use std::sync::Arc;

use serde_json::json;

use crate::clock::MillisClock;
use crate::error::Error;
use crate::keys::apikey::random_id;
use crate::keys::pepper::{KeyHash, Pepper};
use crate::model::{AuditEntry, MAX_PAGE, Tenant, validate_text};
use crate::sessions::model::{
    FamilyId, PresentedToken, PurgeCutoff, REASON_REUSE, RefreshFamily, RefreshStep, RefreshToken,
    RefreshTokenRecord, validate_reason,
};
use crate::sessions::rules::{Verdict, expired, judge};
use crate::sessions::{AuditContext, SessionConfig};
use crate::store::{REASON_SESSION_LIMIT, SessionCap, SessionStore, UserStore};

/// Why a refresh was refused. The HTTP layer answers `invalid_grant` for
/// all but `Storage`; the variants are for logs, metrics and tests.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("the refresh token is malformed or unknown")]
    Invalid,
    #[error("the session has expired")]
    Expired,
    #[error("the session is revoked")]
    Revoked,
    #[error("the refresh token was already used; its session is now revoked")]
    Reused,
    /// The family started before its user's session cut-off, or the user is
    /// disabled or gone; the family is now revoked.
    #[error("the user's sessions have been revoked")]
    UserRevoked,
    #[error(transparent)]
    Storage(Error),
}

/// A successful refresh: the token to hand back, and its family.
#[derive(Debug)]
pub struct Refreshed {
    pub token: RefreshToken,
    pub family: RefreshFamily,
    /// The presented token had just been used and this is the same successor
    /// as then (grace window), not a new one.
    pub replayed: bool,
}

/// What introspection says about a token, without consuming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    Active,
    /// Already exchanged for its successor.
    Used,
    Revoked,
    /// Past the family's absolute lifetime or idle timeout.
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenStatus {
    pub family: RefreshFamily,
    pub generation: i64,
    pub state: TokenState,
}

impl TokenStatus {
    pub fn is_active(&self) -> bool {
        self.state == TokenState::Active
    }
}

pub struct SessionService {
    pub(super) store: Arc<dyn SessionStore>,
    /// For the user behind a refresh (`refresh_user`).
    pub(super) users: Arc<dyn UserStore>,
    pepper: Arc<Pepper>,
    clock: Arc<dyn MillisClock>,
    config: SessionConfig,
}

impl SessionService {
    pub fn new(
        store: Arc<dyn SessionStore>,
        users: Arc<dyn UserStore>,
        pepper: Arc<Pepper>,
        clock: Arc<dyn MillisClock>,
        config: SessionConfig,
    ) -> Result<Self, Error> {
        Ok(Self {
            store,
            users,
            pepper,
            clock,
            config: config.validate()?,
        })
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// When `family` dies if not refreshed before (Unix ms): the earlier of
    /// its absolute expiry and its idle timeout. For `refresh_expires_in`.
    pub fn expires_at_ms(&self, family: &RefreshFamily) -> i64 {
        let idle_ms = self.config.idle_timeout_secs.saturating_mul(1000);
        family
            .absolute_expires_at_ms
            .min(family.last_used_at_ms.saturating_add(idle_ms))
    }

    fn audit(
        &self,
        ctx: &AuditContext,
        action: &str,
        target: &str,
        tenant: Option<&Tenant>,
        detail: serde_json::Value,
    ) -> Result<AuditEntry, Error> {
        Ok(AuditEntry {
            id: random_id("evt_", 20)?,
            at: self.clock.now_secs(),
            action: action.to_owned(),
            actor: ctx.actor.clone(),
            target: Some(target.to_owned()),
            tenant: tenant.map(|t| t.as_str().to_owned()),
            request_id: ctx.request_id.clone(),
            detail,
            seq: 0,
        })
    }

    fn family_audit(
        &self,
        ctx: &AuditContext,
        action: &str,
        family: &RefreshFamily,
        mut detail: serde_json::Value,
    ) -> Result<AuditEntry, Error> {
        if let Some(map) = detail.as_object_mut() {
            map.insert("user_id".into(), json!(family.user_id));
        }
        self.audit(
            ctx,
            action,
            family.id.as_str(),
            family.tenant.as_ref(),
            detail,
        )
    }

    /// Logs a user in: a new family and its first token. The token is shown
    /// to its holder once; only its hash is stored. At the user's cap
    /// (`max_per_user`) the oldest live sessions end rather than the login
    /// being refused: a user who never logs out is not locked out, and the
    /// table stays bounded.
    pub async fn start(
        &self,
        user_id: &str,
        tenant: Option<Tenant>,
        ctx: &AuditContext,
    ) -> Result<(RefreshToken, RefreshFamily), Error> {
        validate_text("user_id", user_id)?;
        let now = self.clock.now_millis();
        let family = RefreshFamily {
            id: FamilyId::generate()?,
            user_id: user_id.to_owned(),
            tenant,
            created_at_ms: now,
            absolute_expires_at_ms: now
                .saturating_add(self.config.absolute_lifetime_secs.saturating_mul(1000)),
            last_used_at_ms: now,
            revoked_at_ms: None,
            revoked_reason: None,
        };
        let token = RefreshToken::generate()?;
        let first = RefreshTokenRecord {
            hash: self.pepper.hash(token.expose()),
            pepper_version: self.pepper.version(),
            family_id: family.id.clone(),
            generation: 0,
            issued_at_ms: now,
            used_at_ms: None,
        };
        let cap = SessionCap {
            max_live: self.config.max_per_user,
            now_ms: now,
            idle_since_ms: now.saturating_sub(self.config.idle_timeout_secs.saturating_mul(1000)),
        };
        let audit = |ended: &[FamilyId]| {
            let detail = if ended.is_empty() {
                json!({})
            } else {
                json!({ "sessions_ended": ended.len(), "ended": ended, "reason": REASON_SESSION_LIMIT })
            };
            self.family_audit(ctx, "session.started", &family, detail)
        };
        let ended = self
            .store
            .insert_family(&family, &first, cap, &audit)
            .await?;
        if !ended.is_empty() {
            tracing::info!(
                user = %family.user_id,
                ended = ended.len(),
                "a login past the session cap ended the user's oldest sessions"
            );
        }
        Ok((token, family))
    }

    /// Exchanges a refresh token for its successor. Of many concurrent
    /// presentations of one token exactly one rotates it; the others are
    /// replays inside the grace window or, outside it, reuse.
    pub async fn refresh(
        &self,
        presented: &str,
        ctx: &AuditContext,
    ) -> Result<Refreshed, RefreshError> {
        let token = RefreshToken::parse(presented).ok_or(RefreshError::Invalid)?;
        let hash = self.pepper.hash(token.expose());
        let next = token.successor(&self.pepper);
        let next_hash = self.pepper.hash(next.expose());
        let now = self.clock.now_millis();
        let decide = |seen: &PresentedToken| {
            let verdict = judge(&self.config, now, seen, &next_hash);
            self.step(verdict, seen, now, next_hash, ctx)
        };
        let (seen, family) = self
            .store
            .use_refresh_token(&hash, &decide)
            .await
            .map_err(RefreshError::Storage)?
            .ok_or(RefreshError::Invalid)?;
        match judge(&self.config, now, &seen, &next_hash) {
            Verdict::Rotate => Ok(Refreshed {
                token: next,
                family,
                replayed: false,
            }),
            Verdict::Replay => Ok(Refreshed {
                token: next,
                family,
                replayed: true,
            }),
            Verdict::Reuse => {
                tracing::warn!(
                    family = %family.id,
                    generation = seen.token.generation,
                    "a used refresh token was presented again; its family is revoked"
                );
                Err(RefreshError::Reused)
            }
            Verdict::Revoked => Err(RefreshError::Revoked),
            Verdict::Expired => Err(RefreshError::Expired),
        }
    }

    fn step(
        &self,
        verdict: Verdict,
        seen: &PresentedToken,
        now: i64,
        next_hash: KeyHash,
        ctx: &AuditContext,
    ) -> Result<RefreshStep, Error> {
        Ok(match verdict {
            Verdict::Rotate => {
                let generation = seen.token.generation + 1;
                RefreshStep::Rotate {
                    at_ms: now,
                    successor: RefreshTokenRecord {
                        hash: next_hash,
                        pepper_version: self.pepper.version(),
                        family_id: seen.family.id.clone(),
                        generation,
                        issued_at_ms: now,
                        used_at_ms: None,
                    },
                    audit: self.family_audit(
                        ctx,
                        "session.refreshed",
                        &seen.family,
                        json!({ "generation": generation }),
                    )?,
                }
            }
            Verdict::Reuse => RefreshStep::RevokeFamily {
                at_ms: now,
                reason: REASON_REUSE.to_owned(),
                audit: self.family_audit(
                    ctx,
                    "session.reuse_detected",
                    &seen.family,
                    json!({
                        "generation": seen.token.generation,
                        "newest_generation": seen.newest.generation,
                    }),
                )?,
            },
            Verdict::Replay | Verdict::Revoked | Verdict::Expired => RefreshStep::Nothing,
        })
    }

    /// Revokes one family (logout, an admin's revoke). Idempotent: a second
    /// call keeps the first time and reason.
    pub async fn revoke_family(
        &self,
        id: &FamilyId,
        reason: &str,
        ctx: &AuditContext,
    ) -> Result<RefreshFamily, Error> {
        validate_reason(reason)?;
        let family = self
            .store
            .get_family(id)
            .await?
            .ok_or(Error::NotFound("session"))?;
        self.revoke(&family, reason, ctx).await
    }

    async fn revoke(
        &self,
        family: &RefreshFamily,
        reason: &str,
        ctx: &AuditContext,
    ) -> Result<RefreshFamily, Error> {
        let audit =
            self.family_audit(ctx, "session.revoked", family, json!({ "reason": reason }))?;
        self.store
            .revoke_family(&family.id, self.clock.now_millis(), reason, &audit)
            .await
    }

    /// RFC 7009: revokes the family of `presented`, whatever state the token
    /// is in. A malformed or unknown token is not an error (`Ok(None)`).
    pub async fn revoke_by_token(
        &self,
        presented: &str,
        reason: &str,
        ctx: &AuditContext,
    ) -> Result<Option<RefreshFamily>, Error> {
        validate_reason(reason)?;
        let Some(token) = RefreshToken::parse(presented) else {
            return Ok(None);
        };
        let hash = self.pepper.hash(token.expose());
        let Some((_, family)) = self.store.find_refresh_token(&hash).await? else {
            return Ok(None);
        };
        self.revoke(&family, reason, ctx).await.map(Some)
    }

    /// Revokes every live family of a user (password change, account lock).
    pub async fn revoke_user_families(
        &self,
        user_id: &str,
        reason: &str,
        ctx: &AuditContext,
    ) -> Result<u64, Error> {
        validate_text("user_id", user_id)?;
        validate_reason(reason)?;
        let audit = self.audit(
            ctx,
            "session.user_revoked",
            user_id,
            None,
            json!({ "reason": reason }),
        )?;
        self.store
            .revoke_user_families(user_id, self.clock.now_millis(), reason, &audit)
            .await
    }

    /// Introspection (RFC 7662): what a token is, without consuming it.
    /// `None` for a malformed or unknown token.
    pub async fn family_of(&self, presented: &str) -> Result<Option<TokenStatus>, Error> {
        let Some(token) = RefreshToken::parse(presented) else {
            return Ok(None);
        };
        let hash = self.pepper.hash(token.expose());
        let Some((record, family)) = self.store.find_refresh_token(&hash).await? else {
            return Ok(None);
        };
        let state = if family.revoked_at_ms.is_some() {
            TokenState::Revoked
        } else if expired(&self.config, self.clock.now_millis(), &family) {
            TokenState::Expired
        } else if record.used_at_ms.is_some() {
            TokenState::Used
        } else {
            TokenState::Active
        };
        Ok(Some(TokenStatus {
            family,
            generation: record.generation,
            state,
        }))
    }

    /// A user's families, newest first, with dead ones until purged.
    pub async fn families_of_user(
        &self,
        user_id: &str,
        limit: u32,
    ) -> Result<Vec<RefreshFamily>, Error> {
        validate_text("user_id", user_id)?;
        self.store
            .families_of_user(user_id, limit.clamp(1, MAX_PAGE))
            .await
    }

    /// Deletes families dead for longer than the retention, with their
    /// tokens; a token of a purged family is then simply unknown. Run it
    /// from a daily task. Returns how many families went.
    pub async fn purge_expired(&self, ctx: &AuditContext) -> Result<u64, Error> {
        let now = self.clock.now_millis();
        let keep_ms = self.config.retention_secs.saturating_mul(1000);
        let idle_ms = self.config.idle_timeout_secs.saturating_mul(1000);
        let cutoff = PurgeCutoff {
            absolute_expired_before_ms: now.saturating_sub(keep_ms),
            last_used_before_ms: now.saturating_sub(keep_ms).saturating_sub(idle_ms),
            revoked_before_ms: now.saturating_sub(keep_ms),
        };
        let audit = AuditEntry {
            target: None,
            ..self.audit(
                ctx,
                "session.purged",
                "",
                None,
                json!({ "retention_secs": self.config.retention_secs }),
            )?
        };
        self.store.purge_families(cutoff, &audit).await
    }
}
