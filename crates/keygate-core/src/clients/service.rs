//! The client registry's service: create, list, show, update, revoke
//! behind an `Admin` (tenant admins confined to their tenant, as for keys),
//! each audited; identification lives in `identify`.

use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::json;

use crate::clients::cache::{DEFAULT_CAPACITY, DEFAULT_TTL_MS, IdentifyCache};
use crate::clients::cas::ClientCas;
use crate::clients::model::{
    ClientFilter, ClientId, ClientPatch, ClientRecord, Matcher, NewClient,
};
use crate::clients::store::ClientStore;
use crate::clock::MillisClock;
use crate::error::Error;
use crate::freshness::Freshness;
use crate::keys::apikey::random_id;
use crate::keys::service::{Admin, finish_page, page_request};
use crate::model::{AuditEntry, PageRequest, validate_scopes, validate_text};
use crate::ratelimit::{RateDecision, RateLimiter};

const UPDATE_RETRIES: usize = 5;

pub struct ClientService {
    pub(crate) store: Arc<dyn ClientStore>,
    pub(crate) clock: Arc<dyn MillisClock>,
    /// Replaced whole on reload; read once per identification.
    pub(crate) cas: RwLock<Arc<ClientCas>>,
    pub(crate) cache: IdentifyCache,
    pub(crate) freshness: Arc<Freshness>,
}

impl ClientService {
    pub fn new(store: Arc<dyn ClientStore>, cas: ClientCas, clock: Arc<dyn MillisClock>) -> Self {
        Self {
            store,
            clock,
            cas: RwLock::new(Arc::new(cas)),
            cache: IdentifyCache::new(DEFAULT_CAPACITY, DEFAULT_TTL_MS),
            freshness: Arc::new(Freshness::always()),
        }
    }

    /// Entries kept and how long (milliseconds); a TTL of 0 turns it off.
    pub fn with_cache(mut self, capacity: usize, ttl_ms: i64) -> Self {
        self.cache = IdentifyCache::new(capacity, ttl_ms);
        self
    }

    /// Gates every cache read on `freshness` (many nodes).
    pub fn with_freshness(mut self, freshness: Arc<Freshness>) -> Self {
        self.freshness = freshness;
        self
    }

    /// The CAs now in force.
    pub fn cas(&self) -> Arc<ClientCas> {
        self.cas.read().clone()
    }

    /// Puts reloaded CAs and CRLs in force. Clients registered under a CA
    /// that is gone stay stored and identify nobody until it returns.
    pub fn replace_cas(&self, cas: ClientCas) {
        *self.cas.write() = Arc::new(cas);
        self.cache.invalidate_all();
    }

    /// Drops every cached identification (the feed's `ClientChanged`).
    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }

    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    /// Spends one request of the client's own `rate_limit` in `limiter`,
    /// counted under its id (`cli_…`), so a client has one budget wherever
    /// it calls: the gateway, forward-auth, ext_authz and the token
    /// endpoint. None when the client has no limit.
    pub async fn charge(
        &self,
        limiter: &dyn RateLimiter,
        client: &ClientRecord,
    ) -> Option<RateDecision> {
        let spec = client.rate_limit?;
        Some(
            limiter
                .check(client.id.as_str(), spec, self.clock.now_millis())
                .await,
        )
    }

    fn audit(
        &self,
        admin: &Admin,
        action: &str,
        client: &ClientRecord,
        detail: serde_json::Value,
    ) -> Result<AuditEntry, Error> {
        Ok(AuditEntry {
            id: random_id("evt_", 20)?,
            at: self.clock.now_secs(),
            action: action.to_owned(),
            actor: admin.actor.clone(),
            target: Some(client.id.to_string()),
            tenant: client.tenant.as_ref().map(|t| t.as_str().to_owned()),
            request_id: admin.request_id.clone(),
            detail,
            seq: 0,
        })
    }

    /// A pattern must name a configured CA: a typo would register a
    /// client no certificate can ever match.
    fn check_matcher(&self, matcher: &Matcher) -> Result<(), Error> {
        match matcher.ca() {
            Some(ca) if !self.cas.read().contains(ca) => Err(Error::invalid(
                "ca",
                format!("no client CA is named {:?} in [mtls] cas", ca.as_str()),
            )),
            _ => Ok(()),
        }
    }

    pub async fn create(&self, admin: &Admin, mut input: NewClient) -> Result<ClientRecord, Error> {
        if let Some(own) = admin.tenant() {
            match &input.tenant {
                None => input.tenant = Some(own.clone()),
                Some(t) if t == own => {}
                Some(_) => {
                    return Err(Error::Forbidden(
                        "a tenant admin can only create clients in its own tenant".into(),
                    ));
                }
            }
        }
        validate_text("name", &input.name)?;
        validate_text("owner", &input.owner)?;
        let scopes = validate_scopes(&input.scopes)?;
        let rate_limit = input.rate_limit.map(|r| r.validate()).transpose()?;
        self.check_matcher(&input.matcher)?;
        let now = self.clock.now_secs();
        let record = ClientRecord {
            id: ClientId::generate()?,
            name: input.name,
            owner: input.owner,
            tenant: input.tenant,
            scopes,
            rate_limit,
            matcher: input.matcher,
            created_at: now,
            updated_at: now,
            revoked_at: None,
            version: 1,
        };
        let detail = json!({
            "name": record.name, "owner": record.owner, "scopes": record.scopes,
            "kind": record.matcher.kind(), "ca": record.matcher.ca().map(|c| c.as_str()),
        });
        let audit = self.audit(admin, "client.created", &record, detail)?;
        let written = self.store.insert_client(&record, &audit).await;
        self.guarded(written)?;
        Ok(record)
    }

    pub async fn get(&self, admin: &Admin, id: &ClientId) -> Result<ClientRecord, Error> {
        match self.store.get_client(id).await? {
            Some(c) if admin.may_see(c.tenant.as_ref()) => Ok(c),
            _ => Err(Error::NotFound("client")),
        }
    }

    /// One page of clients, and the cursor of the next page if there is one.
    pub async fn list(
        &self,
        admin: &Admin,
        mut filter: ClientFilter,
        page: PageRequest,
    ) -> Result<(Vec<ClientRecord>, Option<i64>), Error> {
        if !admin.confine(&mut filter.tenant) {
            return Ok((Vec::new(), None));
        }
        let (limit, ask) = page_request(page);
        let rows = self.store.list_clients(&filter, ask).await?;
        let (rows, next) = finish_page(rows, limit, |(seq, _)| *seq);
        Ok((rows.into_iter().map(|(_, c)| c).collect(), next))
    }

    pub async fn update(
        &self,
        admin: &Admin,
        id: &ClientId,
        patch: ClientPatch,
    ) -> Result<ClientRecord, Error> {
        let patch = validated(patch)?;
        if let Some(m) = &patch.matcher {
            self.check_matcher(m)?;
        }
        for _ in 0..UPDATE_RETRIES {
            let current = self.get(admin, id).await?;
            if current.revoked_at.is_some() {
                return Err(Error::Revoked);
            }
            let next = patched(&current, &patch, self.clock.now_secs());
            let audit = self.audit(
                admin,
                "client.updated",
                &next,
                json!({ "fields": changed_fields(&patch) }),
            )?;
            let written = self.store.update_client(&next, &audit).await;
            if self.guarded(written)? {
                return Ok(next);
            }
        }
        Err(Error::Conflict)
    }

    /// Instant: this node's cache is dropped before the answer, the
    /// others' through the feed.
    pub async fn revoke(&self, admin: &Admin, id: &ClientId) -> Result<ClientRecord, Error> {
        let current = self.get(admin, id).await?;
        let audit = self.audit(admin, "client.revoked", &current, json!({}))?;
        let written = self
            .store
            .revoke_client(id, self.clock.now_secs(), &audit)
            .await;
        self.guarded(written)
    }

    /// Every write drops the cache, whatever its outcome: a storage error
    /// may hide a committed change.
    fn guarded<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        self.cache.invalidate_all();
        result
    }
}

fn validated(mut patch: ClientPatch) -> Result<ClientPatch, Error> {
    if let Some(name) = &patch.name {
        validate_text("name", name)?;
    }
    if let Some(owner) = &patch.owner {
        validate_text("owner", owner)?;
    }
    patch.scopes = patch.scopes.as_deref().map(validate_scopes).transpose()?;
    if let Some(Some(spec)) = patch.rate_limit {
        patch.rate_limit = Some(Some(spec.validate()?));
    }
    Ok(patch)
}

fn patched(current: &ClientRecord, patch: &ClientPatch, now: i64) -> ClientRecord {
    let mut next = current.clone();
    if let Some(name) = &patch.name {
        next.name = name.clone();
    }
    if let Some(owner) = &patch.owner {
        next.owner = owner.clone();
    }
    if let Some(scopes) = &patch.scopes {
        next.scopes = scopes.clone();
    }
    if let Some(rate_limit) = patch.rate_limit {
        next.rate_limit = rate_limit;
    }
    if let Some(matcher) = &patch.matcher {
        next.matcher = matcher.clone();
    }
    next.updated_at = now;
    next.version = current.version + 1;
    next
}

fn changed_fields(patch: &ClientPatch) -> Vec<&'static str> {
    [
        ("name", patch.name.is_some()),
        ("owner", patch.owner.is_some()),
        ("scopes", patch.scopes.is_some()),
        ("rate_limit", patch.rate_limit.is_some()),
        ("matcher", patch.matcher.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, set)| set.then_some(f))
    .collect()
}
