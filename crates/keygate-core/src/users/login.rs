//! Checking a password, and the cut-off that token checks read.
//!
//! `authenticate` answers the same `InvalidCredentials` for an unknown
//! user, a wrong password and a disabled user, after the same argon2 work;
//! a throttled attempt is refused before any hashing or storage access.

use std::net::IpAddr;

use thiserror::Error;
use zeroize::Zeroizing;

use super::cutoff::Cutoff;
use super::model::{UserId, UserRecord, Username};
use super::password::MAX_PASSWORD_BYTES;
use super::service::UserService;
use super::throttle::Outcome;
use crate::error::Error;

#[derive(Debug, Error)]
pub enum LoginError {
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("too many failed logins; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Storage(Error),
}

impl UserService {
    #[tracing::instrument(skip_all)]
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<UserRecord, LoginError> {
        let now = self.clock.now_millis();
        // A name that cannot exist is throttled under a fixed key: it still
        // counts against the client, and costs no memory per variant.
        let parsed = Username::login_key(username);
        let key = parsed.as_deref().unwrap_or("\u{0}invalid");
        let attempt = self
            .throttle
            .admit(key, client, now)
            .await
            .map_err(|retry_after_secs| LoginError::Throttled { retry_after_secs })?;
        let Some(name) = parsed else {
            self.throttle.settle(attempt, Outcome::Failed).await;
            return Err(LoginError::InvalidCredentials);
        };
        if password.len() > MAX_PASSWORD_BYTES {
            // No stored password is this long; refusing without hashing
            // tells nothing about the user.
            self.throttle.settle(attempt, Outcome::Failed).await;
            return Err(LoginError::InvalidCredentials);
        }
        let found = match self.store.find_user_by_username(&name).await {
            Ok(found) => found,
            Err(e) => {
                self.throttle.settle(attempt, Outcome::Forgiven).await;
                return Err(LoginError::Storage(e));
            }
        };
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), Some(hash)),
            None => (None, None),
        };
        let candidate = Zeroizing::new(password.to_owned());
        let matched = match self.hasher.verify(candidate, hash).await {
            Ok(m) => m,
            Err(e) => {
                self.throttle.settle(attempt, Outcome::Forgiven).await;
                return Err(LoginError::Storage(e));
            }
        };
        match user {
            Some(user) if matched && !user.disabled => {
                self.throttle.settle(attempt, Outcome::Succeeded).await;
                Ok(user)
            }
            _ => {
                self.throttle.settle(attempt, Outcome::Failed).await;
                Err(LoginError::InvalidCredentials)
            }
        }
    }

    /// `(cutoff_ms, disabled)` for the token check, or `None` for a user
    /// that does not exist. Served from a cache at most one second old,
    /// dropped on this node by every change.
    pub async fn session_cutoff(&self, user: &UserId) -> Result<Cutoff, Error> {
        let now = self.clock.now_millis();
        let epoch = match self.cutoffs.get(user, now) {
            Ok(hit) => return Ok(hit),
            Err(epoch) => epoch,
        };
        let (store, id) = (self.store.clone(), user.clone());
        let value = crate::home::run(async move { store.get_user(&id).await })
            .await?
            .map(|u| (u.sessions_cutoff_ms, u.disabled));
        self.cutoffs.insert(user.clone(), value, now, epoch);
        Ok(value)
    }

    /// Drops this node's cached cut-off of `user` (a change made elsewhere,
    /// from the invalidation feed).
    pub fn forget_cutoff(&self, user: &UserId) {
        self.cutoffs.invalidate(user);
    }

    /// Drops every cached cut-off.
    pub fn forget_all_cutoffs(&self) {
        self.cutoffs.invalidate_all();
    }
}
