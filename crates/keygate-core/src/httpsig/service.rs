//! `HmacService`: signing secrets (created behind an `Admin`, sealed under
//! the master key) and `verify_request`, the check the gateway runs.
//!
//! Verification reads the key and its secret through a small cache. An entry
//! lives at most `ttl_ms`, and is dropped at once when this node changes the
//! secret, or when the key service invalidates anything (update, rotate,
//! revoke, create: its cache epoch moves), so a revoke on this node refuses
//! the next signed request. Other nodes drop theirs when the invalidation
//! feed reaches them (`forget`, or the key cache's epoch), and every lookup
//! is gated on the key service's `Freshness`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use parking_lot::Mutex;
use serde_json::json;
use zeroize::Zeroizing;

use super::base::{check_hmac, received_signatures};
use super::digest::{BodyDigest, check_content_digest};
use super::policy::{CONTENT_HEADERS, HmacPolicy, Required, Selected, select};
use super::replay::{NonceStore, NonceUse, NonceVerdict};
use super::{RequestView, SigCode, SignatureRefusal};
use crate::error::Error;
use crate::keys::apikey::{KeyId, random_bytes};
use crate::keys::cache::Epoch;
use crate::keys::service::{Admin, KeyService};
use crate::model::{KeyRecord, Metadata, RateLimitSpec, Scope, Tenant};
use crate::sealed::MasterKey;
use crate::store::{HmacSecretRecord, HmacSecretStore};

pub const SECRET_BYTES: usize = 32;
const CACHE_CAPACITY: usize = 10_000;

/// The request's body, as far as the caller has it.
#[derive(Debug, Clone, Copy)]
pub enum BodyStatus<'a> {
    /// No body (`Complete` of no bytes means the same).
    Empty,
    Complete(&'a [u8]),
    /// Still streaming: the caller checks `HmacIdentity::pending_digest`.
    Streaming,
}

#[derive(Debug)]
pub enum HmacError {
    /// 401 with the refusal's code.
    Refused(SignatureRefusal),
    /// Storage, the replay cache or the master key failed: 5xx.
    Unavailable(Error),
    /// The key holds its quota of live nonces (`hmac_nonces_per_key`):
    /// a 429, until some expire.
    OverQuota { retry_after_ms: i64 },
}

impl From<SignatureRefusal> for HmacError {
    fn from(r: SignatureRefusal) -> Self {
        HmacError::Refused(r)
    }
}

impl HmacError {
    fn refused(code: SigCode, detail: impl Into<String>) -> Self {
        HmacError::Refused(SignatureRefusal::new(code, detail))
    }
}

/// Who signed an accepted request.
#[derive(Debug)]
pub struct HmacIdentity {
    pub key_id: KeyId,
    pub name: String,
    pub owner: String,
    pub tenant: Option<Tenant>,
    pub scopes: Vec<Scope>,
    pub metadata: Metadata,
    /// The key's own rate limit, for the caller to apply (verification
    /// itself takes no rate-limit slot and no usage credit:
    /// `KeyService::charge` does).
    pub rate_limit: Option<RateLimitSpec>,
    /// The key's usage credits as last read (None: unmetered), for
    /// `KeyService::charge`.
    pub remaining: Option<i64>,
    /// The label of the signature that was verified.
    pub label: String,
    pub created: i64,
    /// With `BodyStatus::Streaming`: feed it the body, then `finish` it.
    pub pending_digest: Option<BodyDigest>,
}

/// A new signing secret: shown once, in the create response.
pub struct IssuedHmacSecret {
    pub key_id: KeyId,
    /// Base64 of the 32 secret bytes.
    pub secret: Zeroizing<String>,
    pub created_at: i64,
}

impl std::fmt::Debug for IssuedHmacSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedHmacSecret")
            .field("key_id", &self.key_id)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

struct Entry {
    key: Option<KeyRecord>,
    secret: Option<Zeroizing<Vec<u8>>>,
    loaded_at_ms: i64,
    epoch: Epoch,
    generation: u64,
}

pub struct HmacService {
    keys: Arc<KeyService>,
    secrets: Arc<dyn HmacSecretStore>,
    master_key: Arc<MasterKey>,
    nonces: Arc<dyn NonceStore>,
    policy: HmacPolicy,
    ttl_ms: i64,
    cache: Mutex<HashMap<KeyId, Arc<Entry>>>,
    /// Bumped whenever this node replaces a secret: an entry read before
    /// the bump is not trusted after it, even if inserted later.
    generation: AtomicU64,
}

fn aad(id: &KeyId) -> String {
    format!("hmac-secret:{id}")
}

impl HmacService {
    /// `ttl_ms` bounds how long another node's change goes unseen here;
    /// use the key cache's TTL.
    pub fn new(
        keys: Arc<KeyService>,
        secrets: Arc<dyn HmacSecretStore>,
        master_key: Arc<MasterKey>,
        nonces: Arc<dyn NonceStore>,
        policy: HmacPolicy,
        ttl_ms: i64,
    ) -> Result<Self, Error> {
        Ok(Self {
            keys,
            secrets,
            master_key,
            nonces,
            policy: policy.validate()?,
            ttl_ms,
            cache: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        })
    }

    pub fn policy(&self) -> HmacPolicy {
        self.policy
    }

    /// Creates or replaces the key's signing secret. A replaced secret stops
    /// working at once (on other nodes within the cache TTL).
    pub async fn create_secret(
        &self,
        admin: &Admin,
        id: &KeyId,
    ) -> Result<IssuedHmacSecret, Error> {
        let record = self.keys.get(admin, id).await?;
        if record.revoked_at.is_some() {
            return Err(Error::Revoked);
        }
        let mut raw = Zeroizing::new([0u8; SECRET_BYTES]);
        random_bytes(raw.as_mut())?;
        let now = self.keys.clock().now_secs();
        let stored = HmacSecretRecord {
            key_id: id.clone(),
            sealed: self.master_key.seal(raw.as_ref(), &aad(id))?,
            created_at: now,
        };
        let audit = self.keys.audit(
            &admin.actor,
            admin.request_id.as_deref(),
            "key.signing_secret_created",
            &record,
            json!({ "algorithm": super::ALG_HMAC_SHA256 }),
        )?;
        let written = self.secrets.put_hmac_secret(&stored, &audit).await;
        // Forget the old secret whatever happened: on a lost reply the write
        // may have committed.
        self.forget(id);
        written?;
        Ok(IssuedHmacSecret {
            key_id: id.clone(),
            secret: Zeroizing::new(STANDARD.encode(raw.as_ref())),
            created_at: now,
        })
    }

    /// Verifies a signed request under keygate's policy. Checks run cheapest
    /// first; the nonce is recorded only once the signature verified, so
    /// unsigned traffic cannot fill the replay cache.
    pub async fn verify_request(
        &self,
        req: &RequestView<'_>,
        body: BodyStatus<'_>,
    ) -> Result<HmacIdentity, HmacError> {
        self.verify_request_covering(req, body, self.policy.cover_content_headers)
            .await
    }

    /// As `verify_request`, with the caller's (a gateway route's) say on
    /// whether a body's `Content-Type` and `Content-Encoding` must be signed.
    pub async fn verify_request_covering(
        &self,
        req: &RequestView<'_>,
        body: BodyStatus<'_>,
        cover_content_headers: bool,
    ) -> Result<HmacIdentity, HmacError> {
        let now_ms = self.keys.clock().now_millis();
        let now = now_ms.div_euclid(1000);
        let sigs = received_signatures(req.headers)?;
        // An empty buffered body is no body: `content-digest` is then not
        // required (but checked against the empty body when sent).
        let has_body = match body {
            BodyStatus::Empty => false,
            BodyStatus::Complete(bytes) => !bytes.is_empty(),
            BodyStatus::Streaming => true,
        };
        let sent = content_headers_sent(req, has_body && cover_content_headers);
        let must_cover = Required {
            query: req.query.is_some(),
            body: has_body,
            headers: &sent,
        };
        let chosen = select(sigs, self.policy, must_cover, now)?;
        let pending_digest = check_body_digest(req, body, has_body)?;
        let entry = self.lookup(&chosen.key_id, now_ms).await?;
        let (key, secret) = usable_key(&entry, now)?;
        check_hmac(req, &chosen.sig, secret)?;
        self.remember(&chosen, now_ms).await?;
        Ok(HmacIdentity {
            key_id: key.id.clone(),
            name: key.name.clone(),
            owner: key.owner.clone(),
            tenant: key.tenant.clone(),
            scopes: key.scopes.clone(),
            metadata: key.metadata.clone(),
            rate_limit: key.rate_limit,
            remaining: key.remaining,
            label: chosen.sig.label,
            created: chosen.created,
            pending_digest,
        })
    }

    /// Records the verified signature's nonce: a replay or a key over its
    /// quota is refused, a store that cannot answer is no decision.
    async fn remember(&self, chosen: &Selected, now_ms: i64) -> Result<(), HmacError> {
        let nonce = NonceUse {
            key_id: chosen.key_id.as_str(),
            nonce: &chosen.nonce,
            expires_at_ms: chosen.nonce_expires_at_ms,
            created_ms: chosen.created.saturating_mul(1000),
            now_ms,
            per_key_limit: self.policy.nonces_per_key,
        };
        match self
            .nonces
            .record(&nonce)
            .await
            .map_err(HmacError::Unavailable)?
        {
            NonceVerdict::Fresh => Ok(()),
            NonceVerdict::Replayed => Err(HmacError::refused(
                SigCode::SignatureReplayed,
                "this nonce was already used: sign every request anew",
            )),
            NonceVerdict::OverQuota { retry_after_ms } => {
                Err(HmacError::OverQuota { retry_after_ms })
            }
            NonceVerdict::BeforeEpoch => Err(HmacError::refused(
                SigCode::SignatureExpired,
                "signed before the replay store lost its memory: sign the request again",
            )),
        }
    }

    async fn lookup(&self, id: &KeyId, now_ms: i64) -> Result<Arc<Entry>, HmacError> {
        self.keys
            .freshness()
            .ensure()
            .await
            .map_err(HmacError::Unavailable)?;
        let epoch = self.keys.cache.epoch();
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(entry) = self.cache.lock().get(id)
            && entry.epoch.same_records(&epoch)
            && entry.generation == generation
            && now_ms - entry.loaded_at_ms < self.ttl_ms
        {
            return Ok(entry.clone());
        }
        let (keys, secrets, owned) = (self.keys.store().clone(), self.secrets.clone(), id.clone());
        // Both reads in one trip home.
        let (key, stored) = crate::home::run(async move {
            let Some(key) = keys.get_key(&owned).await? else {
                return Ok((None, None));
            };
            Ok((Some(key), secrets.get_hmac_secret(&owned).await?))
        })
        .await
        .map_err(HmacError::Unavailable)?;
        let secret = match stored {
            None => None,
            Some(stored) => Some(
                self.master_key
                    .open(&stored.sealed, &aad(id))
                    .map_err(HmacError::Unavailable)?,
            ),
        };
        let entry = Arc::new(Entry {
            key,
            secret,
            loaded_at_ms: now_ms,
            epoch,
            generation,
        });
        let mut cache = self.cache.lock();
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, e| now_ms - e.loaded_at_ms < self.ttl_ms);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(id.clone(), entry.clone());
        Ok(entry)
    }

    /// Forgets expired nonces; answers how many went.
    pub async fn prune_nonces(&self) -> Result<u64, Error> {
        self.nonces.prune(self.keys.clock().now_millis()).await
    }

    /// Drops what this node cached for `id`.
    pub fn forget(&self, id: &KeyId) {
        let mut cache = self.cache.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        cache.remove(id);
    }
}

/// The content headers the request sends, when they must be covered.
fn content_headers_sent(req: &RequestView<'_>, must_cover: bool) -> Vec<&'static str> {
    CONTENT_HEADERS
        .into_iter()
        .filter(|h| must_cover && !req.headers.values(h).is_empty())
        .collect()
}

/// Checks a buffered body against its `Content-Digest` (when it has a body
/// or sends one); a streaming body answers the digest to finish later.
fn check_body_digest(
    req: &RequestView<'_>,
    body: BodyStatus<'_>,
    has_body: bool,
) -> Result<Option<BodyDigest>, HmacError> {
    let digest_sent = !req.headers.values("content-digest").is_empty();
    match body {
        BodyStatus::Streaming => Ok(Some(BodyDigest::from_headers(req.headers)?)),
        BodyStatus::Complete(bytes) if has_body || digest_sent => {
            check_content_digest(req.headers, bytes)?;
            Ok(None)
        }
        BodyStatus::Empty if digest_sent => {
            check_content_digest(req.headers, b"")?;
            Ok(None)
        }
        BodyStatus::Complete(_) | BodyStatus::Empty => Ok(None),
    }
}

/// The key and its signing secret, if the key exists, has a secret, and is
/// neither revoked nor expired at `now`.
fn usable_key(entry: &Entry, now: i64) -> Result<(&KeyRecord, &[u8]), HmacError> {
    let Some(key) = &entry.key else {
        return Err(HmacError::refused(
            SigCode::SignatureKeyUnknown,
            "`keyid` names no key here",
        ));
    };
    let Some(secret) = &entry.secret else {
        return Err(HmacError::refused(
            SigCode::SignatureKeyUnknown,
            "the key has no signing secret: create one with POST /v1/keys/{id}/signing-secret",
        ));
    };
    if key.revoked_at.is_some() {
        return Err(HmacError::refused(
            SigCode::SignatureKeyRevoked,
            "the key is revoked",
        ));
    }
    if key.expires_at.is_some_and(|at| at <= now) {
        return Err(HmacError::refused(
            SigCode::SignatureKeyRevoked,
            "the key has expired",
        ));
    }
    Ok((key, secret))
}
