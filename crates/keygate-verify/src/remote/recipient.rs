//! A recipient's encryption key from its JWKS URL (feature `remote`): the
//! sender's side of [`super::RemoteVerifier`], for services that publish
//! the key tokens to them must be encrypted to.
//!
//! The fetch rules are the verifier's (https except loopback, no
//! redirects, a timeout and a size cap, `Cache-Control: max-age` clamped
//! to `min_max_age_secs..=MAX_CACHE_SECS`). What differs, and why:
//! - The key is read on a hot path that cannot wait for a fetch, so
//!   [`RemoteRecipient::encrypter`] only reads what the last fetch left;
//!   a background task ([`RemoteRecipient::spawn_refresher`]) refetches
//!   when the set goes stale, and retries a failure after 1, 2, 4 ... up
//!   to `min_max_age_secs` seconds.
//! - Until a key has been fetched there is no encrypter, and the caller
//!   must refuse rather than send the claims in the clear. Once one has,
//!   it stays in use while refetching fails: the recipient still holds
//!   its private key whether or not its JWKS server answers.
//! - A set that publishes private key material is refused whole: its
//!   owner has leaked the key, and encrypting to it would protect nothing.

use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use reqwest::Url;
use serde_json::Value;

use super::fetch::{self, FetchError};
use super::{MAX_CACHE_SECS, RemoteOptions};
use crate::clock::{Clock, SystemClock};
use crate::jwe::{ContentEncryption, Encrypter, KeyManagement, RecipientKey};
use crate::{Error, Jwk};

/// The encryption key a recipient publishes in its JWKS, fetched and kept
/// fresh. Cloning is cheap; clones share the key and the schedule.
#[derive(Clone)]
pub struct RemoteRecipient {
    inner: Arc<Inner>,
}

struct Inner {
    url: Url,
    kid: Option<String>,
    enc: ContentEncryption,
    options: RemoteOptions,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    state: RwLock<State>,
    /// Held for the whole of a fetch: the single-flight lock.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    encrypter: Option<Arc<Encrypter>>,
    /// Refetch at this time (seconds), after a success or a failure.
    due: u64,
    /// Failures in a row, for the backoff.
    failures: u32,
}

impl std::fmt::Debug for RemoteRecipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteRecipient")
            .field("jwks_url", &self.inner.url.as_str())
            .field("kid", &self.inner.kid)
            .field("enc", &self.inner.enc.name())
            .finish_non_exhaustive()
    }
}

impl RemoteRecipient {
    /// Encrypts with `enc` to the key published at `jwks_url` (the one
    /// named `kid`, if given). Fetches nothing yet.
    pub fn new(jwks_url: &str, kid: Option<String>, enc: ContentEncryption) -> Result<Self, Error> {
        Self::with_options(
            jwks_url,
            kid,
            enc,
            RemoteOptions::default(),
            Arc::new(SystemClock),
        )
    }

    /// Everything chosen by the caller; the URL is checked as the
    /// verifier's is (`unknown_kid_cooldown_secs` and `realm` are unused).
    pub fn with_options(
        jwks_url: &str,
        kid: Option<String>,
        enc: ContentEncryption,
        options: RemoteOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        let url = fetch::check_url(jwks_url)?;
        if options.min_max_age_secs == 0 || options.min_max_age_secs > MAX_CACHE_SECS {
            return Err(Error::InvalidConfig("min_max_age_secs out of range"));
        }
        if options.timeout.is_zero() {
            return Err(Error::InvalidConfig("timeout must be positive"));
        }
        if kid.as_ref().is_some_and(|k| k.is_empty()) {
            return Err(Error::InvalidConfig("kid must not be empty"));
        }
        let http = fetch::http_client(options.timeout)?;
        Ok(Self {
            inner: Arc::new(Inner {
                url,
                kid,
                enc,
                options,
                http,
                clock,
                state: RwLock::new(State::default()),
                fetching: tokio::sync::Mutex::new(()),
            }),
        })
    }

    #[must_use]
    pub fn jwks_url(&self) -> &str {
        self.inner.url.as_str()
    }

    /// Whether `other` encrypts to the same published key with the same
    /// `enc` (a reloaded configuration can then keep this one's key).
    #[must_use]
    pub fn same_source(&self, other: &Self) -> bool {
        self.inner.url == other.inner.url
            && self.inner.kid == other.inner.kid
            && self.inner.enc == other.inner.enc
    }

    /// The encrypter for the key fetched last; None until one has been.
    #[must_use]
    pub fn encrypter(&self) -> Option<Arc<Encrypter>> {
        self.state().encrypter.clone()
    }

    /// Fetches now (single-flight: a caller that waited for another fetch
    /// returns its outcome's key). On failure the last key stays.
    pub async fn refresh(&self) -> Result<(), FetchError> {
        let seen = self.state().due;
        let _guard = self.inner.fetching.lock().await;
        let (due, has_key) = {
            let state = self.state();
            (state.due, state.encrypter.is_some())
        };
        if due != seen {
            // Another task fetched while this one waited: its outcome stands.
            return if has_key {
                Ok(())
            } else {
                Err(FetchError("the key set could not be fetched".into()))
            };
        }
        self.fetch_and_store(self.inner.clock.now_secs()).await
    }

    /// Fetches if the key is stale or a retry is due; for the refresher.
    pub async fn refresh_if_due(&self) {
        if self.inner.clock.now_secs() >= self.state().due {
            // The outcome is logged where it happens.
            let _ = self.refresh().await;
        }
    }

    /// When the next fetch is due (the clock's seconds).
    #[must_use]
    pub fn next_due(&self) -> u64 {
        self.state().due
    }

    /// Starts the background task that keeps the key fresh: it fetches at
    /// once, then whenever [`Self::next_due`] comes. It stops by itself
    /// once every clone of this recipient has been dropped. Needs a tokio
    /// runtime.
    pub fn spawn_refresher(&self) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(refresh_loop(weak))
    }

    fn state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // The lock guards plain values that are always left consistent.
        self.inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn state_mut(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    async fn fetch_and_store(&self, now: u64) -> Result<(), FetchError> {
        let fetched = fetch::fetch_body(&self.inner.http, &self.inner.url)
            .await
            .and_then(|(body, max_age)| {
                let key = choose(&body, self.inner.kid.as_deref()).map_err(FetchError)?;
                Ok((key, max_age))
            });
        match fetched {
            Ok((key, max_age)) => {
                let options = &self.inner.options;
                let fresh = max_age
                    .unwrap_or(options.default_max_age_secs)
                    .clamp(options.min_max_age_secs, MAX_CACHE_SECS);
                let mut state = self.state_mut();
                let changed = state
                    .encrypter
                    .as_ref()
                    .is_none_or(|old| old.recipient().kid() != key.kid());
                if changed {
                    tracing::info!(
                        jwks_url = %self.inner.url,
                        kid = key.kid().unwrap_or(""),
                        alg = key.alg().name(),
                        "encrypting to a newly fetched recipient key"
                    );
                }
                state.encrypter = Some(Arc::new(Encrypter::new(key).with_enc(self.inner.enc)));
                state.due = now.saturating_add(fresh);
                state.failures = 0;
                Ok(())
            }
            Err(error) => {
                let mut state = self.state_mut();
                state.failures = state.failures.saturating_add(1);
                let backoff = backoff_secs(state.failures, self.inner.options.min_max_age_secs);
                state.due = now.saturating_add(backoff);
                tracing::warn!(
                    jwks_url = %self.inner.url,
                    reason = %error,
                    retry_in_secs = backoff,
                    key_in_use = state.encrypter.is_some(),
                    "recipient JWKS fetch failed"
                );
                Err(error)
            }
        }
    }
}

async fn refresh_loop(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let recipient = RemoteRecipient { inner };
        recipient.refresh_if_due().await;
        let now = recipient.inner.clock.now_secs();
        let wait = recipient.next_due().saturating_sub(now).max(1);
        // Not held while asleep: dropping the last clone ends the loop.
        drop(recipient);
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
}

/// 1, 2, 4 ... seconds after each failure in a row, at most `cap`.
fn backoff_secs(failures: u32, cap: u64) -> u64 {
    let exp = failures.saturating_sub(1).min(16);
    (1u64 << exp).min(cap)
}

/// The key to encrypt to in a JWKS document: the one named `kid`, else
/// the first that says it is for encryption (`use: "enc"` or a key
/// management `alg`), else the first that says nothing against it. A key
/// for signing, or of a type or size keygate does not encrypt to, is
/// passed over; private material anywhere refuses the set.
pub(crate) fn choose(body: &[u8], kid: Option<&str>) -> Result<RecipientKey, String> {
    let value = crate::json::parse_strict(body).map_err(|e| format!("key set refused: {e}"))?;
    let keys = value
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("key set refused: no \"keys\" array")?;
    // Every key, on the raw member names: neither the key chosen before
    // it nor a failure to import may hide a leak.
    if keys
        .iter()
        .any(|key| PRIVATE_MEMBERS.iter().any(|name| key.get(name).is_some()))
    {
        return Err("key set refused: it publishes private key material".into());
    }
    let mut fallback = None;
    for key in keys {
        let jwk = serde_json::to_vec(key)
            .ok()
            .and_then(|json| Jwk::from_json(&json).ok());
        let Some(jwk) = jwk else { continue };
        if kid.is_some_and(|kid| jwk.kid.as_deref() != Some(kid)) {
            continue;
        }
        let Some(marked) = fits_encryption(&jwk) else {
            continue;
        };
        let Ok(recipient) = RecipientKey::from_jwk(&jwk) else {
            continue;
        };
        if marked || kid.is_some() {
            return Ok(recipient);
        }
        fallback.get_or_insert(recipient);
    }
    fallback.ok_or_else(|| match kid {
        Some(kid) => format!("no key with kid {kid:?} usable for encryption"),
        None => {
            "no key usable for encryption (EC P-256/384/521, X25519 or RSA, use \"enc\")".into()
        }
    })
}

/// Members that only a private or secret key has (RFC 7518 §6.2.2, §6.3.2,
/// §6.4.1).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// None: not for encryption. Some(true): marked for it; Some(false):
/// nothing says either way.
fn fits_encryption(jwk: &Jwk) -> Option<bool> {
    let use_enc = match jwk.use_.as_deref() {
        Some("enc") => true,
        Some(_) => return None,
        None => false,
    };
    if let Some(ops) = &jwk.key_ops
        && !ops
            .iter()
            .any(|op| ["encrypt", "wrapKey", "deriveKey", "deriveBits"].contains(&op.as_str()))
    {
        return None;
    }
    let alg_enc = match jwk.alg.as_deref() {
        Some(name) => {
            KeyManagement::from_name(name)?;
            true
        }
        None => false,
    };
    Some(use_enc || alg_enc)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const X: &str = "weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ";
    const Y: &str = "e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck";

    fn ec(extra: &str) -> String {
        format!(r#"{{"kty":"EC","crv":"P-256","x":"{X}","y":"{Y}"{extra}}}"#)
    }

    fn pick(keys: &[String], kid: Option<&str>) -> Result<Option<String>, String> {
        let body = format!(r#"{{"keys":[{}]}}"#, keys.join(","));
        choose(body.as_bytes(), kid).map(|k| k.kid().map(str::to_owned))
    }

    #[test]
    fn the_key_marked_for_encryption_wins() {
        let sig = ec(r#","kid":"s","use":"sig""#);
        let es256 = ec(r#","kid":"a","alg":"ES256""#);
        let bare = ec(r#","kid":"b""#);
        let enc = ec(r#","kid":"e","use":"enc""#);
        let kw = ec(r#","kid":"k","alg":"ECDH-ES+A128KW""#);
        assert_eq!(
            pick(&[sig.clone(), bare.clone(), enc.clone()], None),
            Ok(Some("e".into()))
        );
        assert_eq!(pick(&[es256.clone(), kw, enc], None), Ok(Some("k".into())));
        assert_eq!(
            pick(&[sig.clone(), bare.clone()], None),
            Ok(Some("b".into()))
        );
        assert!(pick(&[sig, es256], None).is_err());
    }

    #[test]
    fn kid_picks_one_and_must_fit() {
        let a = ec(r#","kid":"a","use":"enc""#);
        let b = ec(r#","kid":"b""#);
        assert_eq!(
            pick(&[a.clone(), b.clone()], Some("b")),
            Ok(Some("b".into()))
        );
        let error = pick(&[a, b], Some("c")).unwrap_err();
        assert!(error.contains("\"c\""), "{error}");
        let sig = ec(r#","kid":"s","use":"sig""#);
        assert!(pick(&[sig], Some("s")).is_err());
    }

    #[test]
    fn unusable_keys_are_passed_over_and_private_ones_refuse_the_set() {
        let off_curve = ec(r#","kid":"x","use":"enc""#).replace("e8lnCO", "e8lnCP");
        let p192 = r#"{"kty":"EC","crv":"P-192","x":"AA","y":"AA","use":"enc"}"#.to_owned();
        let rsa_small = r#"{"kty":"RSA","n":"AQAB","e":"AQAB","use":"enc"}"#.to_owned();
        let good = ec(r#","kid":"g""#);
        assert_eq!(
            pick(&[off_curve, p192, rsa_small, good.clone()], None),
            Ok(Some("g".into()))
        );
        let private = ec(r#","kid":"p","d":"AAAA""#);
        let oct = r#"{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAA","use":"enc"}"#.to_owned();
        for leak in [private, oct] {
            let error = pick(&[good.clone(), leak], None).unwrap_err();
            assert!(error.contains("private"), "{error}");
        }
        assert!(choose(b"{\"keys\":{}}", None).is_err());
        assert!(choose(b"not json", None).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let steps: Vec<u64> = (1..=7).map(|n| backoff_secs(n, 30)).collect();
        assert_eq!(steps, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff_secs(u32::MAX, 30), 30);
    }
}
