//! Key lifecycle: create, list, show, update, rotate, revoke, and the audit
//! trail. Every operation takes an `Admin`, which only a successful admin
//! authentication produces, so an unauthorised call cannot be written.

use std::sync::Arc;

use serde_json::json;

use crate::clock::MillisClock;
use crate::error::Error;
use crate::freshness::Freshness;
use crate::keys::apikey::{ApiKey, KeyEnv, KeyId, random_id};
use crate::keys::cache::{CacheConfig, KeyCache};
use crate::keys::pepper::Pepper;
use crate::keys::usage::UsageRecorder;
use crate::model::{
    ADMIN_SCOPE, AuditEntry, KeyFilter, KeyRecord, MAX_PAGE, Metadata, PageRequest, RateLimitSpec,
    Scope, SecretRecord, Tenant, validate_metadata, validate_scopes, validate_text,
};
use crate::ratelimit::RateLimiter;
use crate::store::{KeyCap, KeyStore};

/// The longest grace window a rotation may give the old secret.
pub const MAX_GRACE_SECS: i64 = 7 * 24 * 3600;

/// An authenticated admin. `tenant` set means a tenant admin, confined to it.
#[derive(Debug, Clone)]
pub struct Admin {
    pub(crate) actor: String,
    pub(crate) tenant: Option<Tenant>,
    pub(crate) request_id: Option<String>,
}

impl Admin {
    pub(crate) fn new(actor: KeyId, tenant: Option<Tenant>, request_id: Option<String>) -> Self {
        Self {
            actor: actor.to_string(),
            tenant,
            request_id,
        }
    }
    pub fn actor(&self) -> &str {
        &self.actor
    }
    pub fn tenant(&self) -> Option<&Tenant> {
        self.tenant.as_ref()
    }
    /// Whether a record of `tenant` is this admin's to see: a root admin
    /// sees every tenant, a tenant admin only its own.
    pub(crate) fn may_see(&self, tenant: Option<&Tenant>) -> bool {
        self.tenant.is_none() || self.tenant.as_ref() == tenant
    }

    /// Narrows a list filter's tenant to this admin's own. `false` when the
    /// filter asks for another tenant: the answer is then an empty page.
    pub(crate) fn confine(&self, requested: &mut Option<Tenant>) -> bool {
        match &self.tenant {
            None => true,
            Some(own) if requested.as_ref().is_some_and(|t| t != own) => false,
            Some(own) => {
                *requested = Some(own.clone());
                true
            }
        }
    }
}

/// Asks storage for one row more than the page holds, to learn whether a
/// next page exists without a second query.
pub(crate) fn page_request(page: PageRequest) -> (u32, PageRequest) {
    let limit = page.limit.clamp(1, MAX_PAGE);
    (
        limit,
        PageRequest {
            after: page.after,
            limit: limit + 1,
        },
    )
}

/// Cuts the extra row off and returns the next page's cursor, if any.
pub(crate) fn finish_page<T>(
    mut rows: Vec<T>,
    limit: u32,
    seq: impl Fn(&T) -> i64,
) -> (Vec<T>, Option<i64>) {
    if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        let next = rows.last().map(&seq);
        (rows, next)
    } else {
        (rows, None)
    }
}

/// A key authenticated for one scope (or `admin`): the caller of the
/// verification or introspection endpoint. Not keygate-verify's `Verifier`,
/// which checks tokens.
#[derive(Debug, Clone)]
pub struct ScopedCaller {
    pub key_id: KeyId,
    pub tenant: Option<Tenant>,
}

#[derive(Debug, Clone, Default)]
pub struct NewKey {
    pub name: String,
    pub owner: String,
    pub tenant: Option<Tenant>,
    pub scopes: Vec<Scope>,
    pub metadata: Metadata,
    pub expires_at: Option<i64>,
    pub env: KeyEnv,
    pub rate_limit: Option<RateLimitSpec>,
    pub remaining: Option<i64>,
}

/// A partial update. `Some(None)` clears an optional field.
#[derive(Debug, Clone, Default)]
pub struct KeyPatch {
    pub name: Option<String>,
    pub scopes: Option<Vec<Scope>>,
    pub metadata: Option<Metadata>,
    pub expires_at: Option<Option<i64>>,
    pub rate_limit: Option<Option<RateLimitSpec>>,
    pub remaining: Option<Option<i64>>,
}

/// A key together with its secret, returned only by create and rotate.
#[derive(Debug)]
pub struct IssuedKey {
    pub record: KeyRecord,
    pub key: ApiKey,
}

pub struct KeyService {
    pub(crate) store: Arc<dyn KeyStore>,
    pub(crate) pepper: Arc<Pepper>,
    pub(crate) clock: Arc<dyn MillisClock>,
    pub(crate) cache: KeyCache,
    pub(crate) limiter: Arc<dyn RateLimiter>,
    pub(crate) usage: UsageRecorder,
    /// Verification counts per key and hour; `None` until a store is given.
    pub(crate) counts: Option<crate::keys::usage_counts::UsageParts>,
    pub(crate) max_keys_per_tenant: u32,
    /// Whether the caches may answer (many nodes: confirmed within S).
    pub(crate) freshness: Arc<Freshness>,
}

/// Live keys one tenant may hold unless configured otherwise.
pub const DEFAULT_MAX_KEYS_PER_TENANT: u32 = 1000;

impl KeyService {
    pub fn new(
        store: Arc<dyn KeyStore>,
        pepper: Arc<Pepper>,
        clock: Arc<dyn MillisClock>,
        limiter: Arc<dyn RateLimiter>,
        cache: CacheConfig,
    ) -> Self {
        Self {
            store,
            pepper,
            clock,
            cache: KeyCache::new(cache),
            limiter,
            usage: UsageRecorder::default(),
            counts: None,
            max_keys_per_tenant: DEFAULT_MAX_KEYS_PER_TENANT,
            freshness: Arc::new(Freshness::always()),
        }
    }

    /// Gates every cache read on `freshness` (many nodes); the default is a
    /// single node's, always fresh.
    pub fn with_freshness(mut self, freshness: Arc<Freshness>) -> Self {
        self.freshness = freshness;
        self
    }

    pub fn freshness(&self) -> &Arc<Freshness> {
        &self.freshness
    }

    /// Drops every cached key, positive and negative (the feed's flush).
    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }

    /// Drops the cached entries of these hashes (the feed's key changes).
    pub fn invalidate_hashes(&self, hashes: &[crate::keys::pepper::KeyHash]) {
        self.cache.invalidate(hashes);
    }

    /// Forgets that these hashes were unknown (the feed's key creations).
    pub fn forget_negative(&self, hashes: &[crate::keys::pepper::KeyHash]) {
        self.cache.forget_negative(hashes);
    }

    /// Caps the live (neither revoked nor expired) keys of each tenant;
    /// keys without a tenant are capped together as one more.
    pub fn with_max_keys_per_tenant(mut self, max: u32) -> Self {
        self.max_keys_per_tenant = max.max(1);
        self
    }

    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn MillisClock> {
        &self.clock
    }

    /// The queue of `last_used_at` times.
    pub fn last_used(&self) -> &UsageRecorder {
        &self.usage
    }

    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    /// Whether `hash` is cached right now; for benchmarks and diagnostics.
    pub fn cache_probe(&self, hash: &crate::keys::pepper::KeyHash) -> bool {
        matches!(
            self.cache.get(hash, self.clock.now_millis()),
            crate::keys::cache::Lookup::Hit(_)
        )
    }

    pub(crate) fn audit(
        &self,
        actor: &str,
        request_id: Option<&str>,
        action: &str,
        key: &KeyRecord,
        detail: serde_json::Value,
    ) -> Result<AuditEntry, Error> {
        Ok(AuditEntry {
            id: random_id("evt_", 20)?,
            at: self.clock.now_secs(),
            action: action.to_owned(),
            actor: actor.to_owned(),
            target: Some(key.id.to_string()),
            tenant: key.tenant.as_ref().map(|t| t.as_str().to_owned()),
            request_id: request_id.map(str::to_owned),
            detail,
            seq: 0,
        })
    }

    pub(crate) fn new_secret(
        &self,
        id: &KeyId,
        env: KeyEnv,
        now: i64,
    ) -> Result<(ApiKey, SecretRecord), Error> {
        let key = ApiKey::generate(env)?;
        let secret = SecretRecord {
            hash: self.pepper.hash(key.expose()),
            pepper_version: self.pepper.version(),
            key_id: id.clone(),
            created_at: now,
            expires_at: None,
        };
        Ok((key, secret))
    }

    /// Creates the first root admin key (no tenant), for `init` and first start.
    pub async fn bootstrap_root_key(&self) -> Result<IssuedKey, Error> {
        let input = NewKey {
            name: "root admin".into(),
            owner: "keygate".into(),
            scopes: vec![Scope::parse(ADMIN_SCOPE)?],
            ..NewKey::default()
        };
        self.insert(input, "system", None, "admin.root_key_created")
            .await
    }

    pub async fn create(&self, admin: &Admin, mut input: NewKey) -> Result<IssuedKey, Error> {
        if let Some(own) = admin.tenant() {
            match &input.tenant {
                None => input.tenant = Some(own.clone()),
                Some(t) if t == own => {}
                Some(_) => {
                    return Err(Error::Forbidden(
                        "a tenant admin can only create keys in its own tenant".into(),
                    ));
                }
            }
        }
        self.insert(
            input,
            &admin.actor,
            admin.request_id.as_deref(),
            "key.created",
        )
        .await
    }

    async fn insert(
        &self,
        input: NewKey,
        actor: &str,
        request_id: Option<&str>,
        action: &str,
    ) -> Result<IssuedKey, Error> {
        validate_text("name", &input.name)?;
        validate_text("owner", &input.owner)?;
        validate_metadata(&input.metadata)?;
        let scopes = validate_scopes(&input.scopes)?;
        let now = self.clock.now_secs();
        if input.expires_at.is_some_and(|at| at <= now) {
            return Err(Error::invalid("expires_at", "must be in the future"));
        }
        if input.remaining.is_some_and(|r| r < 0) {
            return Err(Error::invalid("remaining", "must not be negative"));
        }
        let rate_limit = input.rate_limit.map(RateLimitSpec::validate).transpose()?;
        let id = KeyId::generate()?;
        let (key, secret) = self.new_secret(&id, input.env, now)?;
        let record = KeyRecord {
            id,
            name: input.name,
            owner: input.owner,
            tenant: input.tenant,
            scopes,
            metadata: input.metadata,
            env: input.env,
            prefix: key.display_prefix(),
            created_at: now,
            updated_at: now,
            expires_at: input.expires_at,
            revoked_at: None,
            last_used_at: None,
            rate_limit,
            remaining: input.remaining,
            version: 1,
        };
        let detail = json!({ "name": record.name, "owner": record.owner, "scopes": record.scopes });
        let audit = self.audit(actor, request_id, action, &record, detail)?;
        let cap = KeyCap {
            max_live: self.max_keys_per_tenant,
            now,
        };
        self.store
            .insert_key(&record, &secret, &audit, Some(cap))
            .await?;
        self.cache
            .forget_negative(std::slice::from_ref(&secret.hash));
        Ok(IssuedKey { record, key })
    }

    pub async fn get(&self, admin: &Admin, id: &KeyId) -> Result<KeyRecord, Error> {
        match self.store.get_key(id).await? {
            Some(key) if admin.may_see(key.tenant.as_ref()) => Ok(key),
            _ => Err(Error::NotFound("key")),
        }
    }

    /// One page of keys, and the cursor of the next page if there is one.
    pub async fn list(
        &self,
        admin: &Admin,
        mut filter: KeyFilter,
        page: PageRequest,
    ) -> Result<(Vec<KeyRecord>, Option<i64>), Error> {
        if !admin.confine(&mut filter.tenant) {
            return Ok((Vec::new(), None));
        }
        self.prepare_filter(&mut filter)?;
        let (limit, ask) = page_request(page);
        let rows = self.store.list_keys(&filter, ask).await?;
        let (rows, next) = finish_page(rows, limit, |(seq, _)| *seq);
        Ok((rows.into_iter().map(|(_, k)| k).collect(), next))
    }
}
