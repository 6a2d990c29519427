//! Changing keys after creation: update, rotate, revoke, with the cache
//! kept exact; and the usage bookkeeping that goes with them.

use serde_json::json;

use crate::error::Error;
use crate::keys::apikey::KeyId;
use crate::keys::service::{Admin, IssuedKey, KeyPatch, KeyService, MAX_GRACE_SECS};
use crate::model::{KeyRecord, validate_metadata, validate_scopes, validate_text};
use crate::store::UpdateOutcome;

const UPDATE_RETRIES: usize = 5;

/// The patch with every field it sets checked, scopes and rate limit in
/// their validated form.
fn validated(mut patch: KeyPatch, now: i64) -> Result<KeyPatch, Error> {
    if let Some(name) = &patch.name {
        validate_text("name", name)?;
    }
    if let Some(metadata) = &patch.metadata {
        validate_metadata(metadata)?;
    }
    patch.scopes = patch.scopes.as_deref().map(validate_scopes).transpose()?;
    if let Some(Some(spec)) = patch.rate_limit {
        patch.rate_limit = Some(Some(spec.validate()?));
    }
    if matches!(patch.remaining, Some(Some(r)) if r < 0) {
        return Err(Error::invalid("remaining", "must not be negative"));
    }
    if matches!(patch.expires_at, Some(Some(at)) if at <= now) {
        return Err(Error::invalid("expires_at", "must be in the future"));
    }
    Ok(patch)
}

/// `current` with the patch applied, as the next version.
fn patched(current: &KeyRecord, patch: &KeyPatch, now: i64) -> KeyRecord {
    let mut next = current.clone();
    if let Some(name) = &patch.name {
        next.name = name.clone();
    }
    if let Some(scopes) = &patch.scopes {
        next.scopes = scopes.clone();
    }
    if let Some(metadata) = &patch.metadata {
        next.metadata = metadata.clone();
    }
    if let Some(expires_at) = patch.expires_at {
        next.expires_at = expires_at;
    }
    if let Some(rate_limit) = patch.rate_limit {
        next.rate_limit = rate_limit;
    }
    if let Some(remaining) = patch.remaining {
        next.remaining = remaining;
    }
    next.updated_at = now;
    next.version = current.version + 1;
    next
}

/// The names of the fields the patch sets, for the audit entry.
fn changed_fields(patch: &KeyPatch) -> Vec<&'static str> {
    [
        ("name", patch.name.is_some()),
        ("scopes", patch.scopes.is_some()),
        ("metadata", patch.metadata.is_some()),
        ("expires_at", patch.expires_at.is_some()),
        ("rate_limit", patch.rate_limit.is_some()),
        ("remaining", patch.remaining.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, set)| set.then_some(f))
    .collect()
}

impl KeyService {
    pub async fn update(
        &self,
        admin: &Admin,
        id: &KeyId,
        patch: KeyPatch,
    ) -> Result<KeyRecord, Error> {
        let now = self.clock.now_secs();
        let patch = validated(patch, now)?;
        let changed = changed_fields(&patch);
        // Read, patch, write if nobody wrote in between; else read again.
        for _ in 0..UPDATE_RETRIES {
            let current = self.get(admin, id).await?;
            if current.revoked_at.is_some() {
                return Err(Error::Revoked);
            }
            let next = patched(&current, &patch, now);
            let audit = self.audit(
                &admin.actor,
                admin.request_id.as_deref(),
                "key.updated",
                &next,
                json!({ "fields": changed }),
            )?;
            let written = self
                .store
                .update_key(&next, patch.remaining.is_some(), &audit)
                .await;
            match self.guarded(written)? {
                UpdateOutcome::Updated(hashes) => {
                    self.cache.invalidate(&hashes);
                    return Ok(next);
                }
                UpdateOutcome::Stale => continue,
            }
        }
        Err(Error::Conflict)
    }

    /// Issues a new secret. The old one keeps working until now + `grace_secs`
    /// (and never past the key's own expiry, which is checked separately).
    pub async fn rotate(
        &self,
        admin: &Admin,
        id: &KeyId,
        grace_secs: i64,
    ) -> Result<IssuedKey, Error> {
        if !(0..=MAX_GRACE_SECS).contains(&grace_secs) {
            return Err(Error::invalid(
                "grace_seconds",
                format!("must be between 0 and {MAX_GRACE_SECS} (7 days)"),
            ));
        }
        let record = self.get(admin, id).await?;
        if record.revoked_at.is_some() {
            return Err(Error::Revoked);
        }
        let now = self.clock.now_secs();
        let (key, secret) = self.new_secret(id, record.env, now)?;
        let old_expire_at = (grace_secs > 0).then_some(now + grace_secs);
        let audit = self.audit(
            &admin.actor,
            admin.request_id.as_deref(),
            "key.rotated",
            &record,
            json!({ "grace_seconds": grace_secs }),
        )?;
        let written = self
            .store
            .rotate_secret(id, &secret, &key.display_prefix(), old_expire_at, &audit)
            .await;
        let (record, old) = self.guarded(written)?;
        self.cache.invalidate(&old);
        self.cache
            .forget_negative(std::slice::from_ref(&secret.hash));
        Ok(IssuedKey { record, key })
    }

    pub async fn revoke(&self, admin: &Admin, id: &KeyId) -> Result<KeyRecord, Error> {
        let record = self.get(admin, id).await?;
        let audit = self.audit(
            &admin.actor,
            admin.request_id.as_deref(),
            "key.revoked",
            &record,
            json!({}),
        )?;
        let written = self
            .store
            .revoke_key(id, self.clock.now_secs(), &audit)
            .await;
        let (record, hashes) = self.guarded(written)?;
        self.cache.invalidate(&hashes);
        Ok(record)
    }

    /// Passes a store result through. On a storage failure the write may
    /// still have committed (the reply was lost, not the transaction), so
    /// every cached key is dropped rather than risk serving a stale one.
    fn guarded<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(Error::Storage(_)) = &result {
            self.cache.invalidate_all();
        }
        result
    }

    /// Writes queued `last_used_at` times; a failed batch is put back.
    pub async fn flush_usage(&self) -> Result<usize, Error> {
        let batch = self.usage.drain();
        if batch.is_empty() {
            return Ok(0);
        }
        let n = batch.len();
        if let Err(e) = self.store.touch_last_used(&batch).await {
            self.usage.requeue(batch);
            return Err(e);
        }
        Ok(n)
    }
}
