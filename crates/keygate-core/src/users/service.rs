//! The user service: every admin operation takes an `Admin` and is confined
//! to its tenant exactly as keys are. A change that must end sessions (a new
//! password, disabling, revoke-sessions) moves the cut-off in the same write.

use std::sync::Arc;

use serde_json::json;

use super::cutoff::CutoffCache;
use super::model::{
    Claims, Role, UserFilter, UserId, UserRecord, Username, validate_claims, validate_roles,
};
use super::password::{Password, PasswordHasherPool, PhcHash};
use super::throttle::{LoginThrottle, Throttle};
use crate::clock::MillisClock;
use crate::error::Error;
use crate::keys::apikey::random_id;
use crate::keys::service::{Admin, finish_page, page_request};
use crate::model::{AuditEntry, PageRequest, Tenant};
use crate::store::UserStore;

const UPDATE_RETRIES: usize = 5;
/// The cut-off is read on every token check; a change made on another node
/// shows here within this long.
pub const CUTOFF_TTL_MS: i64 = 1000;
const CUTOFF_ENTRIES: usize = 50_000;

#[derive(Debug)]
pub struct NewUser {
    pub username: String,
    pub password: Password,
    pub roles: Vec<Role>,
    pub tenant: Option<Tenant>,
    pub claims: Claims,
}

/// A partial update; absent fields are left alone.
#[derive(Debug, Default)]
pub struct UserPatch {
    pub roles: Option<Vec<Role>>,
    pub claims: Option<Claims>,
    pub disabled: Option<bool>,
    pub password: Option<Password>,
}

pub struct UserService {
    pub(super) store: Arc<dyn UserStore>,
    pub(super) clock: Arc<dyn MillisClock>,
    pub(super) hasher: PasswordHasherPool,
    pub(super) throttle: Arc<dyn Throttle>,
    pub(super) cutoffs: CutoffCache,
}

impl UserService {
    pub fn new(store: Arc<dyn UserStore>, clock: Arc<dyn MillisClock>) -> Self {
        Self::with_parts(
            store,
            clock,
            PasswordHasherPool::default(),
            Arc::new(LoginThrottle::default()),
        )
    }

    pub fn with_parts(
        store: Arc<dyn UserStore>,
        clock: Arc<dyn MillisClock>,
        hasher: PasswordHasherPool,
        throttle: Arc<dyn Throttle>,
    ) -> Self {
        Self {
            store,
            clock,
            hasher,
            throttle,
            cutoffs: CutoffCache::new(CUTOFF_TTL_MS, CUTOFF_ENTRIES),
        }
    }

    /// Swaps the login throttle (a shared one, for many nodes).
    pub fn with_throttle(mut self, throttle: Arc<dyn Throttle>) -> Self {
        self.throttle = throttle;
        self
    }

    /// The login throttle, for other logins that should count with user
    /// logins per client (the dashboard's).
    pub fn throttle(&self) -> &Arc<dyn Throttle> {
        &self.throttle
    }

    /// Computes the dummy hash unknown usernames are checked against, so
    /// the first such login is not slower than the rest.
    pub async fn warm_up(&self) -> Result<(), Error> {
        self.hasher.warm_up().await
    }

    fn audit(
        &self,
        admin: &Admin,
        action: &str,
        user: &UserRecord,
        detail: serde_json::Value,
    ) -> Result<AuditEntry, Error> {
        Ok(AuditEntry {
            id: random_id("evt_", 20)?,
            at: self.clock.now_secs(),
            action: action.to_owned(),
            actor: admin.actor.clone(),
            target: Some(user.id.to_string()),
            tenant: user.tenant.as_ref().map(|t| t.as_str().to_owned()),
            request_id: admin.request_id.clone(),
            detail,
            seq: 0,
        })
    }

    pub async fn create(&self, admin: &Admin, input: NewUser) -> Result<UserRecord, Error> {
        let mut tenant = input.tenant;
        if let Some(own) = admin.tenant() {
            match &tenant {
                None => tenant = Some(own.clone()),
                Some(t) if t == own => {}
                Some(_) => {
                    return Err(Error::Forbidden(
                        "a tenant admin can only create users in its own tenant".into(),
                    ));
                }
            }
        }
        let username = Username::parse(&input.username)?;
        let roles = validate_roles(&input.roles)?;
        validate_claims(&input.claims)?;
        let hash = self.hasher.hash(input.password).await?;
        let now = self.clock.now_secs();
        let record = UserRecord {
            id: UserId::generate()?,
            username: username.as_str().to_owned(),
            roles,
            tenant,
            claims: input.claims,
            disabled: false,
            sessions_cutoff_ms: 0,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let detail = json!({ "username": record.username, "roles": record.roles });
        let audit = self.audit(admin, "user.created", &record, detail)?;
        self.store.insert_user(&record, &hash, &audit).await?;
        // A cached "no such user" must not outlive the creation.
        self.cutoffs.invalidate(&record.id);
        Ok(record)
    }

    pub async fn get(&self, admin: &Admin, id: &UserId) -> Result<UserRecord, Error> {
        match self.store.get_user(id).await? {
            Some(u) if admin.may_see(u.tenant.as_ref()) => Ok(u),
            _ => Err(Error::NotFound("user")),
        }
    }

    /// One page of users, and the cursor of the next page if there is one.
    pub async fn list(
        &self,
        admin: &Admin,
        mut filter: UserFilter,
        page: PageRequest,
    ) -> Result<(Vec<UserRecord>, Option<i64>), Error> {
        if !admin.confine(&mut filter.tenant) {
            return Ok((Vec::new(), None));
        }
        let (limit, ask) = page_request(page);
        let rows = self.store.list_users(&filter, ask).await?;
        let (rows, next) = finish_page(rows, limit, |(seq, _)| *seq);
        Ok((rows.into_iter().map(|(_, u)| u).collect(), next))
    }

    pub async fn update(
        &self,
        admin: &Admin,
        id: &UserId,
        patch: UserPatch,
    ) -> Result<UserRecord, Error> {
        let roles = patch.roles.as_deref().map(validate_roles).transpose()?;
        if let Some(claims) = &patch.claims {
            validate_claims(claims)?;
        }
        // Refuse an unknown or foreign user before spending a hash on it.
        self.get(admin, id).await?;
        let hash = match patch.password {
            Some(p) => Some(self.hasher.hash(p).await?),
            None => None,
        };
        let ends_sessions = hash.is_some() || patch.disabled == Some(true);
        let changed: Vec<&str> = [
            ("roles", roles.is_some()),
            ("claims", patch.claims.is_some()),
            ("disabled", patch.disabled.is_some()),
            ("password", hash.is_some()),
        ]
        .into_iter()
        .filter_map(|(f, set)| set.then_some(f))
        .collect();
        let detail = json!({ "fields": changed, "sessions_revoked": ends_sessions });
        self.write(admin, id, "user.updated", detail, hash.as_ref(), |next| {
            if let Some(roles) = &roles {
                next.roles = roles.clone();
            }
            if let Some(claims) = &patch.claims {
                next.claims = claims.clone();
            }
            if let Some(disabled) = patch.disabled {
                next.disabled = disabled;
            }
            ends_sessions
        })
        .await
    }

    /// Ends every session of the user: tokens issued and refresh families
    /// started before now are refused from here on.
    pub async fn revoke_sessions(&self, admin: &Admin, id: &UserId) -> Result<UserRecord, Error> {
        self.write(admin, id, "user.sessions_revoked", json!({}), None, |_| {
            true
        })
        .await
    }

    /// Re-reads, applies `change` (which says whether sessions end), and
    /// writes guarded by the version, retrying when another write won.
    async fn write(
        &self,
        admin: &Admin,
        id: &UserId,
        action: &str,
        detail: serde_json::Value,
        hash: Option<&PhcHash>,
        change: impl Fn(&mut UserRecord) -> bool,
    ) -> Result<UserRecord, Error> {
        for _ in 0..UPDATE_RETRIES {
            let current = self.get(admin, id).await?;
            let mut next = current.clone();
            let ends_sessions = change(&mut next);
            if ends_sessions {
                // Never moves back, even if this node's clock is behind.
                next.sessions_cutoff_ms =
                    next_cutoff(current.sessions_cutoff_ms, self.clock.now_millis());
            }
            next.updated_at = self.clock.now_secs();
            next.version = current.version + 1;
            let audit = self.audit(admin, action, &next, detail.clone())?;
            let written = self.store.update_user(&next, hash, &audit).await;
            // Even a failed write may have committed (a lost reply).
            self.cutoffs.invalidate(id);
            if written? {
                return Ok(next);
            }
        }
        Err(Error::Conflict)
    }
}

/// Tokens carry `iat` in whole seconds, and one issued right after a
/// cut-off is dated at the cut-off's second rounded up. A second cut-off
/// within that same second must still reach it, so each cut-off lies at
/// least a full second after the previous one.
pub(crate) fn next_cutoff(previous_ms: i64, now_ms: i64) -> i64 {
    if previous_ms == 0 {
        now_ms
    } else {
        now_ms.max(previous_ms.saturating_add(1000))
    }
}

#[cfg(test)]
mod tests {
    use super::next_cutoff;
    use crate::users::model::{earliest_iat_secs, issued_before_cutoff};

    #[test]
    fn a_second_cutoff_in_the_same_second_still_reaches_tokens_issued_between() {
        for first in [10_000, 10_001, 10_500, 10_999] {
            for issued_at in [first, first + 1, first + 400] {
                let iat = earliest_iat_secs(issued_at / 1000, first);
                assert!(!issued_before_cutoff(iat, first), "valid after the first");
                let second = next_cutoff(first, issued_at);
                assert!(issued_before_cutoff(iat, second), "{first} {issued_at}");
            }
        }
        assert_eq!(next_cutoff(0, 5_000), 5_000);
        assert_eq!(next_cutoff(9_000, 5_000), 10_000, "never moves back");
    }
}
