//! Passwords: argon2id with OWASP's parameters, stored as a PHC string.
//!
//! Hashing costs about 19 MiB and tens of milliseconds of one core, so it
//! never runs on an async worker (`spawn_blocking`), and the number hashing
//! at once is bounded by a semaphore: a burst of logins queues instead of
//! allocating gigabytes. Passwords and hashes refuse to print.

use std::fmt;
use std::sync::{Arc, OnceLock};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::error::Error;

pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longer passwords are refused, so nobody can make the server hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
const M_COST_KIB: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

/// A candidate new password, checked against the length policy. Wiped on drop.
pub struct Password(Zeroizing<String>);

impl Password {
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.len() > MAX_PASSWORD_BYTES {
            return Err(Error::invalid(
                "password",
                format!("must be at most {MAX_PASSWORD_BYTES} bytes"),
            ));
        }
        if text.chars().count() < MIN_PASSWORD_CHARS {
            return Err(Error::invalid(
                "password",
                format!("must be at least {MIN_PASSWORD_CHARS} characters"),
            ));
        }
        Ok(Self(Zeroizing::new(text.to_owned())))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(redacted)")
    }
}

/// A stored password hash in PHC form (`$argon2id$v=19$m=19456,t=2,p=1$…`).
/// No `==`: a candidate is checked with [`verify_now`], in constant time.
#[derive(Clone)]
pub struct PhcHash(String);

impl PhcHash {
    /// Wraps a hash read back from storage; checked when it is verified.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PhcHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhcHash(redacted)")
    }
}

fn argon2() -> Result<Argon2<'static>, Error> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes on the calling thread; use [`PasswordHasherPool`] from async code.
pub fn hash_now(password: &[u8]) -> Result<PhcHash, Error> {
    let hash: PasswordHash = argon2()?
        .hash_password(password)
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))?;
    Ok(PhcHash(hash.to_string()))
}

/// Checks on the calling thread, in constant time in the digest. A stored
/// hash that does not parse is a storage error, never a match.
pub fn verify_now(password: &[u8], stored: &PhcHash) -> Result<bool, Error> {
    let parsed = PasswordHash::new(stored.as_str())
        .map_err(|_| Error::Storage("a stored password hash is not a PHC string".into()))?;
    match argon2()?.verify_password(password, &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(Error::Internal(format!(
            "password verification failed: {e}"
        ))),
    }
}

/// The hash an unknown username is checked against, computed once, so an
/// unknown user costs the same time as a wrong password.
fn dummy_hash() -> Result<&'static PhcHash, Error> {
    static DUMMY: OnceLock<PhcHash> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h);
    }
    let mut random = Zeroizing::new([0u8; 32]);
    crate::keys::apikey::random_bytes(random.as_mut())?;
    let hash = hash_now(random.as_ref())?;
    Ok(DUMMY.get_or_init(|| hash))
}

/// Runs argon2 off the async workers, a bounded number at a time.
#[derive(Clone)]
pub struct PasswordHasherPool {
    permits: Arc<Semaphore>,
}

impl PasswordHasherPool {
    /// `concurrency` hashes at once (each holds 19 MiB while it runs).
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("the password hasher is shut down".into()))?;
        // The permit lives in the closure: a caller cancelled while the hash
        // runs (a client that hangs up) drops only the join handle, and the
        // hash it started keeps counting against the limit until it ends.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| Error::Internal(format!("password hashing task failed: {e}")))?
    }

    pub async fn hash(&self, password: Password) -> Result<PhcHash, Error> {
        self.run(move || hash_now(password.expose().as_bytes()))
            .await
    }

    /// `stored` None (no such user) checks against the dummy hash and
    /// answers false, after the same work as a real check.
    pub async fn verify(
        &self,
        candidate: Zeroizing<String>,
        stored: Option<PhcHash>,
    ) -> Result<bool, Error> {
        self.run(move || match stored {
            Some(hash) => verify_now(candidate.as_bytes(), &hash),
            None => {
                verify_now(candidate.as_bytes(), dummy_hash()?)?;
                Ok(false)
            }
        })
        .await
    }

    /// Computes the dummy hash now rather than on the first unknown login.
    pub async fn warm_up(&self) -> Result<(), Error> {
        self.run(|| dummy_hash().map(|_| ())).await
    }
}

impl Default for PasswordHasherPool {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Self::new(cores)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn policy_bounds_length_in_characters_and_bytes() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("elevenchars").is_err());
        assert!(Password::parse("twelve chars").is_ok());
        // Twelve characters, more bytes: counted as characters.
        assert!(Password::parse("éééééééééééé").is_ok());
        assert!(Password::parse(&"a".repeat(MAX_PASSWORD_BYTES)).is_ok());
        assert!(Password::parse(&"a".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        let p = Password::parse("correct horse battery").unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }

    #[test]
    fn hashes_are_argon2id_phc_with_owasp_parameters() {
        let h = hash_now(b"correct horse battery").unwrap();
        assert!(
            h.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            h.as_str()
        );
        assert!(!format!("{h:?}").contains("argon2"));
        assert!(verify_now(b"correct horse battery", &h).unwrap());
        assert!(!verify_now(b"correct horse batterY", &h).unwrap());
        // Same password, fresh salt.
        assert_ne!(
            hash_now(b"correct horse battery").unwrap().as_str(),
            h.as_str()
        );
        let broken = PhcHash::from_stored("not a hash".into());
        assert!(matches!(verify_now(b"x", &broken), Err(Error::Storage(_))));
    }

    #[tokio::test]
    async fn pool_hashes_and_unknown_users_never_match() {
        let pool = PasswordHasherPool::new(1);
        let h = pool
            .hash(Password::parse("correct horse battery").unwrap())
            .await
            .unwrap();
        let ok = pool
            .verify(Zeroizing::new("correct horse battery".into()), Some(h))
            .await
            .unwrap();
        assert!(ok);
        let unknown = pool
            .verify(Zeroizing::new("correct horse battery".into()), None)
            .await
            .unwrap();
        assert!(!unknown);
    }

    /// A caller cancelled while its hash runs must not free its permit
    /// before the hash ends: otherwise cancelled logins run any number of
    /// 19 MiB hashes at once. The work here blocks until released, so the
    /// count of closures running at once is exact, not a matter of timing.
    #[tokio::test]
    async fn a_cancelled_caller_keeps_its_permit_until_the_work_ends() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::mpsc;
        use std::time::Duration;

        let pool = PasswordHasherPool::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut releases = Vec::new();
        for _ in 0..6 {
            let (release, wait) = mpsc::channel::<()>();
            releases.push(release);
            let (running, peak, pool) = (running.clone(), peak.clone(), pool.clone());
            let task = tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    let _ = wait.recv_timeout(Duration::from_secs(30));
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                })
                .await
            });
            // Give the work every chance to start, then cancel its caller.
            tokio::time::sleep(Duration::from_millis(20)).await;
            task.abort();
            let _ = task.await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            peak.load(Ordering::SeqCst) <= 2,
            "{} hashes ran at once with 2 permits",
            peak.load(Ordering::SeqCst)
        );
        for r in &releases {
            let _ = r.send(());
        }
        // Every queued work item either ran after a release or was dropped
        // with its cancelled caller; the pool is usable again.
        let ok = tokio::time::timeout(Duration::from_secs(30), pool.run(|| Ok(7))).await;
        assert_eq!(ok.unwrap().unwrap(), 7);
        assert!(peak.load(Ordering::SeqCst) <= 2);
    }
}
