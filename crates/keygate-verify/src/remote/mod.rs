//! The JWKS client for downstream services: a [`Verifier`] whose key set is
//! fetched from the issuer's JWKS URL and cached (feature `remote`).
//!
//! The rules, and why:
//! - https only, except loopback hosts: a key set fetched over plain HTTP from
//!   another host can be swapped by anyone on the path.
//! - No redirects: the operator named one URL; a redirect would let whoever
//!   controls a response pick the keys.
//! - The cache honours `Cache-Control: max-age`, clamped to
//!   [`RemoteOptions::min_max_age_secs`]..=[`MAX_CACHE_SECS`], so a misconfigured
//!   issuer can neither pin a key set for a day nor make us fetch per request.
//! - While the issuer is down, the last good set keeps serving (a retired key
//!   stays published longer than our cache lifetime, so this is safe).
//! - An unknown `kid` (a key rotated in since the last fetch) refetches at most
//!   once per [`RemoteOptions::unknown_kid_cooldown_secs`], whatever the
//!   number of requests: random `kid`s cannot turn us into a load generator.
//!
//! Fetches are single-flight: one tokio mutex serialises them, and a waiter
//! that finds the set replaced while it waited uses the new one.

mod fetch;
mod recipient;

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use reqwest::Url;

pub use fetch::{FetchError, fetch_jwks};
pub use recipient::RemoteRecipient;

use crate::clock::{Clock, SystemClock};
use crate::jwe::Decrypter;
use crate::{AlgorithmSet, Claims, Encryption, Error, ImportOptions, JwkSet, Validation, Verifier};

/// The longest a fetched key set is trusted without refetching (10 minutes).
pub const MAX_CACHE_SECS: u64 = 600;

/// Tunables of the JWKS client; the defaults suit keygate's JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteOptions {
    /// Whole-request timeout for one fetch.
    pub timeout: Duration,
    /// Cache lifetime when the response has no usable `max-age`.
    pub default_max_age_secs: u64,
    /// Floor of the cache lifetime (also the wait before retrying a failed
    /// fetch): `max-age=0` must not mean a fetch per request.
    pub min_max_age_secs: u64,
    /// At most one unknown-`kid` refetch per this many seconds.
    pub unknown_kid_cooldown_secs: u64,
    /// The `realm` of `WWW-Authenticate` challenges; the audience by default.
    pub realm: Option<String>,
    /// What a published key without `alg` may verify (those that fit its
    /// type): RS256 for RSA by default; add PS256 etc. for an issuer that
    /// signs with PSS. A key with `alg` verifies that one only.
    pub algorithms_without_alg: AlgorithmSet,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            default_max_age_secs: 300,
            min_max_age_secs: 30,
            unknown_kid_cooldown_secs: 30,
            realm: None,
            algorithms_without_alg: AlgorithmSet::DEFAULT_WITHOUT_ALG,
        }
    }
}

/// Why a remote verification failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The token was refused.
    #[error(transparent)]
    Token(#[from] Error),
    /// No key set has ever been fetched (the issuer was unreachable from the
    /// start): nothing can be verified, and it is not the client's fault.
    #[error("the issuer's key set is unavailable")]
    KeysUnavailable,
}

impl RemoteError {
    /// A stable snake_case code for logs and problem+json bodies.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Token(error) => error.code(),
            Self::KeysUnavailable => "keys_unavailable",
        }
    }
}

/// Verifies tokens against an issuer's JWKS, fetched and cached. Cloning is
/// cheap and clones share the cache, so it can live in axum state.
#[derive(Clone)]
pub struct RemoteVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    url: Url,
    validation: Validation,
    options: RemoteOptions,
    realm: String,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    cache: RwLock<Cache>,
    /// Held for the whole of a fetch: the single-flight lock.
    fetching: tokio::sync::Mutex<()>,
    /// The application's decrypter for nested JWTs, if it takes them.
    decryption: Option<(Arc<Decrypter>, Encryption)>,
}

#[derive(Default)]
struct Cache {
    verifier: Option<Arc<Verifier>>,
    /// The set is fresh until then; after it, the next request refetches.
    fresh_until: u64,
    /// No scheduled refetch before then (set after a failure).
    retry_after: u64,
    last_unknown_kid_fetch: Option<u64>,
}

impl fmt::Debug for RemoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteVerifier")
            .field("jwks_url", &self.inner.url.as_str())
            .field("validation", &self.inner.validation)
            .finish_non_exhaustive()
    }
}

impl RemoteVerifier {
    /// A verifier for keygate access tokens (`Validation::new` defaults) of
    /// `issuer` for `audience`, with keys from `jwks_url`.
    pub fn new(issuer: &str, audience: &str, jwks_url: &str) -> Result<Self, Error> {
        Self::with_options(
            Validation::new(issuer, audience),
            jwks_url,
            RemoteOptions::default(),
            Arc::new(SystemClock),
        )
    }

    /// Everything chosen by the caller. Refuses at once a URL that is not
    /// https (plain http is allowed for loopback hosts only), carries
    /// credentials, or a validation or option outside the safe limits.
    pub fn with_options(
        validation: Validation,
        jwks_url: &str,
        options: RemoteOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        let url = fetch::check_url(jwks_url)?;
        // Checks the validation now rather than at the first request.
        Verifier::new(JwkSet::default(), validation.clone())?;
        if options.min_max_age_secs == 0 || options.min_max_age_secs > MAX_CACHE_SECS {
            return Err(Error::InvalidConfig("min_max_age_secs out of range"));
        }
        if options.unknown_kid_cooldown_secs == 0 || options.timeout.is_zero() {
            return Err(Error::InvalidConfig(
                "cooldown and timeout must be positive",
            ));
        }
        let realm = match &options.realm {
            Some(realm) if is_quotable(realm) => realm.clone(),
            Some(_) => return Err(Error::InvalidConfig("realm must be printable ASCII")),
            None if is_quotable(&validation.audience) => validation.audience.clone(),
            None => "api".to_owned(),
        };
        let http = fetch::http_client(options.timeout)?;
        Ok(Self {
            inner: Arc::new(Inner {
                url,
                validation,
                options,
                realm,
                http,
                clock,
                cache: RwLock::new(Cache::default()),
                fetching: tokio::sync::Mutex::new(()),
                decryption: None,
            }),
        })
    }

    /// Also accepts nested JWTs (signed, then encrypted to the
    /// application's key): `decrypter` holds the application's private
    /// key; `Encryption::Required` refuses tokens that are only signed.
    /// Set it before the verifier is cloned or shared.
    pub fn with_decryption(
        mut self,
        decrypter: Arc<Decrypter>,
        mode: Encryption,
    ) -> Result<Self, Error> {
        let inner = Arc::get_mut(&mut self.inner).ok_or(Error::InvalidConfig(
            "set decryption before the verifier is shared",
        ))?;
        inner.decryption = Some((decrypter, mode));
        Ok(self)
    }

    #[must_use]
    pub fn validation(&self) -> &Validation {
        &self.inner.validation
    }

    /// The realm for `WWW-Authenticate` challenges (quotable as it is).
    #[must_use]
    pub fn realm(&self) -> &str {
        &self.inner.realm
    }

    /// Fetches the key set now unless a fresh one is cached (e.g. at start,
    /// so the first request does not wait). Fails only if no set is known.
    pub async fn prefetch(&self) -> Result<(), RemoteError> {
        self.current(self.inner.clock.now_secs()).await.map(|_| ())
    }

    /// Verifies `token` (signature, `typ`, claims) at the clock's time;
    /// a token bound to a client certificate is refused (`bound_token`).
    pub async fn verify(&self, token: &str) -> Result<Claims, RemoteError> {
        let claims = self.verify_unchecked_binding(token).await?;
        if claims.x5t_s256()?.is_some() {
            return Err(Error::BoundToken.into());
        }
        Ok(claims)
    }

    /// As `verify`, and a token bound to a client certificate (RFC 8705)
    /// must be bound to the one whose SHA-256 thumbprint is `thumbprint`
    /// (`certificate_mismatch` otherwise, or without one).
    pub async fn verify_bound(
        &self,
        token: &str,
        thumbprint: Option<&[u8; 32]>,
    ) -> Result<Claims, RemoteError> {
        let claims = self.verify_unchecked_binding(token).await?;
        crate::check_binding(&claims, thumbprint)?;
        Ok(claims)
    }

    async fn verify_unchecked_binding(&self, token: &str) -> Result<Claims, RemoteError> {
        // Decrypted once, before the key set is consulted, so an
        // unknown-`kid` refetch does not decrypt again.
        let token = &*crate::verifier::unwrap_nested(self.inner.decryption.as_ref(), token)?;
        let now = self.inner.clock.now_secs();
        let verifier = self.current(now).await?;
        match verifier.verify_unchecked_binding(token, now) {
            Err(Error::UnknownKid) => match self.refetch_for_unknown_kid(now, &verifier).await {
                Some(newer) => Ok(newer.verify_unchecked_binding(token, now)?),
                None => Err(Error::UnknownKid.into()),
            },
            result => Ok(result?),
        }
    }

    fn cache(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        // The lock guards plain values that are always left consistent.
        self.inner
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn cache_mut(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.inner
            .cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The set to verify with: the cached one while fresh, else a refetch;
    /// the last good one while refetching fails or another task refetches.
    async fn current(&self, now: u64) -> Result<Arc<Verifier>, RemoteError> {
        let known = {
            let cache = self.cache();
            match &cache.verifier {
                Some(v) if now < cache.fresh_until || now < cache.retry_after => {
                    return Ok(Arc::clone(v));
                }
                Some(v) => Some(Arc::clone(v)),
                None if now < cache.retry_after => return Err(RemoteError::KeysUnavailable),
                None => None,
            }
        };
        // With a stale set in hand, do not queue behind a fetch in flight.
        let _guard = match (&known, self.inner.fetching.try_lock()) {
            (_, Ok(guard)) => guard,
            (Some(stale), Err(_)) => return Ok(Arc::clone(stale)),
            (None, Err(_)) => self.inner.fetching.lock().await,
        };
        {
            let cache = self.cache();
            match &cache.verifier {
                Some(v) if now < cache.fresh_until || now < cache.retry_after => {
                    return Ok(Arc::clone(v));
                }
                None if now < cache.retry_after => return Err(RemoteError::KeysUnavailable),
                _ => {}
            }
        }
        self.fetch_and_store(now)
            .await
            .ok_or(RemoteError::KeysUnavailable)
    }

    /// One refetch for a `kid` not in `seen`, unless another task already
    /// replaced the set or the cooldown has not passed.
    async fn refetch_for_unknown_kid(
        &self,
        now: u64,
        seen: &Arc<Verifier>,
    ) -> Option<Arc<Verifier>> {
        let _guard = self.inner.fetching.lock().await;
        {
            let mut cache = self.cache_mut();
            if let Some(current) = &cache.verifier
                && !Arc::ptr_eq(current, seen)
            {
                return Some(Arc::clone(current));
            }
            let cooldown = self.inner.options.unknown_kid_cooldown_secs;
            if cache
                .last_unknown_kid_fetch
                .is_some_and(|last| now < last.saturating_add(cooldown))
            {
                return None;
            }
            // Counted before the fetch: a failing issuer is not retried either.
            cache.last_unknown_kid_fetch = Some(now);
        }
        let fetched = self.fetch_and_store(now).await?;
        (!Arc::ptr_eq(&fetched, seen)).then_some(fetched)
    }

    /// Fetches, and on success replaces the cached set. On failure keeps the
    /// last good set (returned) and waits `min_max_age_secs` before retrying.
    /// Call with the `fetching` lock held.
    async fn fetch_and_store(&self, now: u64) -> Option<Arc<Verifier>> {
        let import = ImportOptions::remote()
            .with_algorithms_without_alg(self.inner.options.algorithms_without_alg);
        match fetch::fetch(&self.inner.http, &self.inner.url, &import).await {
            Ok((set, max_age)) => {
                for skipped in set.skipped() {
                    tracing::warn!(
                        jwks_url = %self.inner.url,
                        index = skipped.index,
                        kid = skipped.kid.as_deref().unwrap_or(""),
                        reason = skipped.error.code(),
                        "JWKS key skipped"
                    );
                }
                let verifier = match Verifier::new(set, self.inner.validation.clone()) {
                    Ok(verifier) => Arc::new(verifier),
                    // Checked at construction; kept as a failure, not a panic.
                    Err(error) => return self.fetch_failed(now, &error.to_string()),
                };
                let mut cache = self.cache_mut();
                cache.verifier = Some(Arc::clone(&verifier));
                cache.fresh_until = now.saturating_add(self.clamp_max_age(max_age));
                cache.retry_after = 0;
                Some(verifier)
            }
            Err(reason) => self.fetch_failed(now, &reason.to_string()),
        }
    }

    fn fetch_failed(&self, now: u64, reason: &str) -> Option<Arc<Verifier>> {
        let mut cache = self.cache_mut();
        cache.retry_after = now.saturating_add(self.inner.options.min_max_age_secs);
        tracing::warn!(
            jwks_url = %self.inner.url,
            reason,
            serving_last_good_set = cache.verifier.is_some(),
            "JWKS fetch failed"
        );
        cache.verifier.clone()
    }

    fn clamp_max_age(&self, max_age: Option<u64>) -> u64 {
        let options = &self.inner.options;
        max_age
            .unwrap_or(options.default_max_age_secs)
            .clamp(options.min_max_age_secs, MAX_CACHE_SECS)
    }
}

/// Safe inside a quoted-string of a challenge without escaping.
fn is_quotable(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 128
        && text
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}
