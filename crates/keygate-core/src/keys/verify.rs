//! Verifying API keys: the hot path. Format and checksum first (no storage),
//! then the peppered hash, the cache, and only on a miss the store.

use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::error::Error;
use crate::keys::apikey::{ApiKey, KeyId};
use crate::keys::cache::{CachedKey, Lookup};
use crate::keys::service::{Admin, KeyService, ScopedCaller};
use crate::keys::usage::TOUCH_EVERY_SECS;
use crate::model::{ADMIN_SCOPE, KeyRecord, RateLimitSpec, Scope, Tenant, VERIFY_SCOPE};
use crate::ratelimit::RateDecision;

/// The codes live in `code`, a leaf module, so storage can name them
/// without importing the verification path.
pub use crate::keys::code::VerifyCode;

/// The outcome of one verification.
#[derive(Debug, Clone)]
pub struct Verification {
    pub code: VerifyCode,
    /// The key, when one was found (also for REVOKED, EXPIRED, ...).
    pub key: Option<Arc<CachedKey>>,
    /// Credits left after this verification, for keys that have credits.
    pub remaining: Option<i64>,
    pub ratelimit: Option<RateDecision>,
    /// Whether the answer came from the cache (positive or negative); false
    /// for MALFORMED, which needs no lookup at all.
    pub cached: bool,
}

impl Verification {
    fn bare(code: VerifyCode) -> Self {
        Self {
            code,
            key: None,
            remaining: None,
            ratelimit: None,
            cached: false,
        }
    }

    pub fn is_valid(&self) -> bool {
        self.code == VerifyCode::Valid
    }

    /// The key's record, when one was found.
    pub fn record(&self) -> Option<&KeyRecord> {
        self.key.as_deref().map(|k| &k.record)
    }
}

#[derive(Debug, Clone, Copy)]
enum Credits {
    Take,
    CheckOnly,
    /// Looks only: neither the rate limit nor the credits are touched
    /// (token introspection reports a key's state without using it).
    Inspect,
}

/// What a key's use is counted against.
#[derive(Clone, Copy)]
struct Quota<'a> {
    id: &'a KeyId,
    rate_limit: Option<RateLimitSpec>,
    remaining: Option<i64>,
}

/// The rules that need only the key as found: tenant, revocation, expiry,
/// scopes. VALID here still has its rate limit and credits to pass.
fn judge(
    entry: &Arc<CachedKey>,
    cached: bool,
    tenant: Option<&Tenant>,
    required_scopes: &[Scope],
    now: i64,
) -> Verification {
    let record = &entry.record;
    // `remaining` is only reported where it was just read from storage:
    // the cached record's count is stale.
    let found = |code| Verification {
        code,
        key: Some(entry.clone()),
        remaining: None,
        ratelimit: None,
        cached,
    };
    if let Some(t) = tenant
        && record.tenant.as_ref() != Some(t)
    {
        let mut out = Verification::bare(VerifyCode::NotFound);
        out.cached = cached;
        return out;
    }
    if record.revoked_at.is_some() {
        return found(VerifyCode::Revoked);
    }
    let expired = |at: Option<i64>| at.is_some_and(|at| at <= now);
    if expired(record.expires_at) || expired(entry.secret_expires_at) {
        return found(VerifyCode::Expired);
    }
    if !required_scopes.iter().all(|s| record.has_scope(s.as_str())) {
        return found(VerifyCode::InsufficientScope);
    }
    found(VerifyCode::Valid)
}

/// Why an admin or verifier credential was refused.
#[derive(Debug)]
pub enum AuthFailure {
    /// No usable credential: the verification code says why (401).
    Unauthenticated(VerifyCode, Option<RateDecision>),
    /// A valid key without the needed scope (403).
    Forbidden(&'static str),
    Storage(Error),
}

impl KeyService {
    /// Verifies `candidate` with every rule: format, existence, revocation,
    /// expiry, scopes, rate limit, credits. `tenant` limits which keys can be
    /// seen: another tenant's key answers NOT_FOUND.
    pub async fn verify_key(
        &self,
        candidate: &str,
        required_scopes: &[Scope],
        tenant: Option<&Tenant>,
    ) -> Result<Verification, Error> {
        let out = self
            .verify_with(candidate, required_scopes, tenant, Credits::Take)
            .await?;
        // Counted against the key whatever the answer, when there is a key.
        if let Some(counter) = out.key.as_ref().and_then(|k| k.usage.as_ref()) {
            counter.add(self.clock.now_secs(), out.code);
        }
        Ok(out)
    }

    async fn verify_with(
        &self,
        candidate: &str,
        required_scopes: &[Scope],
        tenant: Option<&Tenant>,
        credits: Credits,
    ) -> Result<Verification, Error> {
        // The checksum waits until the cache has missed: a cache hit means
        // the exact string hashed to a key keygate issued, which proves its
        // checksum, and skipping it saves a tenth of a hit's cost. A
        // malformed key is still refused before storage is touched.
        if ApiKey::check_shape(candidate).is_err() {
            return Ok(Verification::bare(VerifyCode::Malformed));
        }
        // Before any cache is consulted: past S without confirmation, this
        // catches up with the feed or fails with a 503.
        self.freshness.ensure().await?;
        let now_ms = self.clock.now_millis();
        let (entry, cached) = match self.find_key(candidate, now_ms).await? {
            Ok(found) => found,
            Err(refused) => return Ok(refused),
        };
        let now = now_ms.div_euclid(1000);
        let mut out = judge(&entry, cached, tenant, required_scopes, now);
        if !out.is_valid() || matches!(credits, Credits::Inspect) {
            return Ok(out);
        }
        let record = &entry.record;
        let quota = Quota {
            id: &record.id,
            rate_limit: record.rate_limit,
            remaining: record.remaining,
        };
        self.use_quota(quota, credits, now_ms, &mut out).await?;
        if out.code == VerifyCode::Valid && entry.claim_touch(now, TOUCH_EVERY_SECS) {
            self.usage.record(&record.id, now);
        }
        Ok(out)
    }

    /// The key `candidate` names, from the cache or else the store, and
    /// whether it came from the cache; `Err` holds the answer when there is
    /// no such key (or its checksum is wrong), remembered as a negative.
    async fn find_key(
        &self,
        candidate: &str,
        now_ms: i64,
    ) -> Result<Result<(Arc<CachedKey>, bool), Verification>, Error> {
        let hash = self.pepper.hash(candidate);
        match self.cache.get(&hash, now_ms) {
            Lookup::Hit(entry) => Ok(Ok((entry, true))),
            Lookup::Negative => {
                let mut out = Verification::bare(VerifyCode::NotFound);
                out.cached = true;
                Ok(Err(out))
            }
            Lookup::Miss => {
                if ApiKey::check_checksum(candidate).is_err() {
                    return Ok(Err(Verification::bare(VerifyCode::Malformed)));
                }
                let epoch = self.cache.epoch();
                let store = self.store.clone();
                let found = crate::home::run(async move { store.find_by_hash(&hash).await });
                match found.await? {
                    Some((secret, record)) if bool::from(secret.hash.ct_eq(&hash)) => {
                        let usage = self.counts.as_ref().map(|c| c.counter.counter(&record.id));
                        let entry =
                            Arc::new(CachedKey::new(record, secret.expires_at, now_ms, usage));
                        self.cache.insert(hash, entry.clone(), epoch);
                        Ok(Ok((entry, false)))
                    }
                    _ => {
                        self.cache.insert_negative(hash, now_ms, epoch);
                        Ok(Err(Verification::bare(VerifyCode::NotFound)))
                    }
                }
            }
        }
    }

    /// The key's rate limit, then one of its credits; sets `out.code` to
    /// RATE_LIMITED or USAGE_EXCEEDED when either refuses.
    async fn use_quota(
        &self,
        quota: Quota<'_>,
        credits: Credits,
        now_ms: i64,
        out: &mut Verification,
    ) -> Result<(), Error> {
        let Quota {
            id,
            rate_limit,
            remaining,
        } = quota;
        if let Some(spec) = rate_limit {
            let decision = self.limiter.check(id.as_str(), spec, now_ms).await;
            out.ratelimit = Some(decision);
            if !decision.allowed {
                out.code = VerifyCode::RateLimited;
                return Ok(());
            }
        }
        let exhausted = match (remaining, credits) {
            (None, _) => false,
            (Some(_), Credits::Take) => match self.take_credit(id).await? {
                Some(left) => {
                    out.remaining = Some(left);
                    false
                }
                None => true,
            },
            (Some(left), Credits::CheckOnly | Credits::Inspect) => left <= 0,
        };
        if exhausted {
            // The request is refused after all: give its rate-limit slot back.
            if let Some(spec) = rate_limit {
                self.limiter.refund(id.as_str(), spec, now_ms).await;
            }
            out.remaining = Some(0);
            out.code = VerifyCode::UsageExceeded;
        }
        Ok(())
    }

    async fn take_credit(&self, id: &KeyId) -> Result<Option<i64>, Error> {
        let (store, id) = (self.store.clone(), id.clone());
        crate::home::run(async move { store.take_credit(&id).await }).await
    }

    /// Uses a key's rate limit and one of its credits, as `verify_key` does,
    /// for a key that proved itself another way (an HMAC-signed request).
    /// The limiter is keyed by the key id, so a key has one budget however
    /// it is presented. `remaining` is the key's credit count as the caller
    /// read it (None: unmetered). Answers VALID, RATE_LIMITED or
    /// USAGE_EXCEEDED.
    pub async fn charge(
        &self,
        id: &KeyId,
        rate_limit: Option<RateLimitSpec>,
        remaining: Option<i64>,
    ) -> Result<Verification, Error> {
        let now_ms = self.clock.now_millis();
        let mut out = Verification::bare(VerifyCode::Valid);
        let quota = Quota {
            id,
            rate_limit,
            remaining,
        };
        self.use_quota(quota, Credits::Take, now_ms, &mut out)
            .await?;
        if out.code == VerifyCode::Valid {
            self.usage.record(id, now_ms.div_euclid(1000));
        }
        if let Some(counts) = &self.counts {
            counts.counter.add(id, now_ms.div_euclid(1000), out.code);
        }
        Ok(out)
    }

    /// A key's state for introspection: every check, but neither its rate
    /// limit nor its credits are used.
    pub async fn inspect_key(&self, candidate: &str) -> Result<Verification, Error> {
        self.verify_with(candidate, &[], None, Credits::Inspect)
            .await
    }

    /// Authenticates an admin: a valid key with the `admin` scope.
    pub async fn authorize_admin(
        &self,
        candidate: &str,
        request_id: Option<String>,
    ) -> Result<Admin, AuthFailure> {
        let entry = self.authenticate(candidate).await?;
        let record = &entry.record;
        if !record.is_admin() {
            return Err(AuthFailure::Forbidden(
                "this endpoint needs a key with the admin scope",
            ));
        }
        Ok(Admin::new(
            record.id.clone(),
            record.tenant.clone(),
            request_id,
        ))
    }

    /// Authenticates a caller of the verification endpoint: `keys:verify` or `admin`.
    pub async fn authorize_verify_caller(
        &self,
        candidate: &str,
    ) -> Result<ScopedCaller, AuthFailure> {
        self.authorize_scope(
            candidate,
            VERIFY_SCOPE,
            "this endpoint needs a key with the keys:verify or admin scope",
        )
        .await
    }

    /// Authenticates a caller that needs `scope` (or `admin`).
    pub async fn authorize_scope(
        &self,
        candidate: &str,
        scope: &str,
        refusal: &'static str,
    ) -> Result<ScopedCaller, AuthFailure> {
        let entry = self.authenticate(candidate).await?;
        let record = &entry.record;
        if !(record.has_scope(scope) || record.has_scope(ADMIN_SCOPE)) {
            return Err(AuthFailure::Forbidden(refusal));
        }
        Ok(ScopedCaller {
            key_id: record.id.clone(),
            tenant: record.tenant.clone(),
        })
    }

    /// Authenticates a caller of the admin or verification API. The caller's
    /// own usage credits are checked but not taken: they meter what the key
    /// is for, and an admin call that is then refused must change nothing.
    async fn authenticate(&self, candidate: &str) -> Result<Arc<CachedKey>, AuthFailure> {
        let v = self
            .verify_with(candidate, &[], None, Credits::CheckOnly)
            .await
            .map_err(AuthFailure::Storage)?;
        match (v.code, v.key) {
            (VerifyCode::Valid, Some(record)) => Ok(record),
            (code, _) => Err(AuthFailure::Unauthenticated(code, v.ratelimit)),
        }
    }
}
