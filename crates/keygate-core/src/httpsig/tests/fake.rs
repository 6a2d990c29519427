//! Just enough storage for `HmacService`: keys, signing secrets, audit. The
//! other stores answer an error: these tests never reach them.

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::error::Error;
use crate::jwt::SigningKeyRecord;
use crate::keys::apikey::KeyId;
use crate::keys::pepper::KeyHash;
use crate::model::{
    AuditEntry, AuditFilter, AuditRow, AuditTally, KeyFilter, KeyRecord, PageRequest, SecretRecord,
};
use crate::sessions::model::{
    BlockedJti, FamilyId, PresentedToken, PurgeCutoff, RefreshDecider, RefreshFamily,
    RefreshTokenRecord,
};
use crate::store::{
    AuditStore, ConsoleSessionRecord, ConsoleStore, HmacSecretRecord, HmacSecretStore, KeyStore,
    SessionStore, SigningKeyStore, Store, UpdateOutcome, UsageCount, UsageStore, UserStore,
};
use crate::users::model::{UserFilter, UserId, UserRecord};
use crate::users::password::PhcHash;

#[derive(Default)]
pub(super) struct FakeStore {
    pub(super) keys: Mutex<HashMap<KeyId, KeyRecord>>,
    pub(super) secrets: Mutex<HashMap<KeyId, HmacSecretRecord>>,
    pub(super) audit: Mutex<Vec<AuditEntry>>,
}

fn unused<T>() -> Result<T, Error> {
    Err(Error::Internal("not used by these tests".into()))
}

#[async_trait]
impl KeyStore for FakeStore {
    async fn insert_key(
        &self,
        _: &KeyRecord,
        _: &SecretRecord,
        _: &AuditEntry,
        _: Option<crate::store::KeyCap>,
    ) -> Result<(), Error> {
        unused()
    }
    async fn get_key(&self, id: &KeyId) -> Result<Option<KeyRecord>, Error> {
        Ok(self.keys.lock().get(id).cloned())
    }
    async fn find_by_hash(&self, _: &KeyHash) -> Result<Option<(SecretRecord, KeyRecord)>, Error> {
        unused()
    }
    async fn list_keys(
        &self,
        _: &KeyFilter,
        _: PageRequest,
    ) -> Result<Vec<(i64, KeyRecord)>, Error> {
        unused()
    }
    async fn update_key(
        &self,
        _: &KeyRecord,
        _: bool,
        _: &AuditEntry,
    ) -> Result<UpdateOutcome, Error> {
        unused()
    }
    async fn rotate_secret(
        &self,
        _: &KeyId,
        _: &SecretRecord,
        _: &str,
        _: Option<i64>,
        _: &AuditEntry,
    ) -> Result<(KeyRecord, Vec<KeyHash>), Error> {
        unused()
    }
    async fn revoke_key(
        &self,
        _: &KeyId,
        _: i64,
        _: &AuditEntry,
    ) -> Result<(KeyRecord, Vec<KeyHash>), Error> {
        unused()
    }
    async fn secret_hashes(&self, _: &KeyId) -> Result<Vec<KeyHash>, Error> {
        unused()
    }
    async fn take_credit(&self, _: &KeyId) -> Result<Option<i64>, Error> {
        unused()
    }
    async fn touch_last_used(&self, _: &[(KeyId, i64)]) -> Result<(), Error> {
        Ok(())
    }
    async fn count_keys(&self) -> Result<u64, Error> {
        Ok(self.keys.lock().len() as u64)
    }
    async fn count_keys_by_status(
        &self,
        _: Option<&crate::model::Tenant>,
        _: i64,
        _: i64,
    ) -> Result<crate::model::KeyCounts, Error> {
        unused()
    }
}

#[async_trait]
impl AuditStore for FakeStore {
    async fn append_audit(&self, entries: &[AuditEntry]) -> Result<(), Error> {
        self.audit.lock().extend_from_slice(entries);
        Ok(())
    }
    async fn add_audit_tallies(&self, _: &[AuditTally]) -> Result<(), Error> {
        unused()
    }
    async fn prune_audit(&self, _: i64, _: u32) -> Result<u64, Error> {
        unused()
    }
    async fn list_audit(&self, _: &AuditFilter, _: PageRequest) -> Result<Vec<AuditRow>, Error> {
        unused()
    }
}

#[async_trait]
impl HmacSecretStore for FakeStore {
    async fn put_hmac_secret(&self, s: &HmacSecretRecord, audit: &AuditEntry) -> Result<(), Error> {
        match self.keys.lock().get(&s.key_id) {
            None => return Err(Error::NotFound("key")),
            Some(k) if k.revoked_at.is_some() => return Err(Error::Revoked),
            Some(_) => {}
        }
        self.secrets.lock().insert(s.key_id.clone(), s.clone());
        self.audit.lock().push(audit.clone());
        Ok(())
    }
    async fn get_hmac_secret(&self, id: &KeyId) -> Result<Option<HmacSecretRecord>, Error> {
        Ok(self.secrets.lock().get(id).cloned())
    }
}

#[async_trait]
impl SigningKeyStore for FakeStore {
    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>, Error> {
        unused()
    }
    async fn insert_signing_key(
        &self,
        _: &SigningKeyRecord,
        _: &AuditEntry,
    ) -> Result<bool, Error> {
        unused()
    }
    async fn delete_signing_keys(&self, _: &[String]) -> Result<(), Error> {
        unused()
    }
}

#[async_trait]
impl UserStore for FakeStore {
    async fn insert_user(&self, _: &UserRecord, _: &PhcHash, _: &AuditEntry) -> Result<(), Error> {
        unused()
    }
    async fn get_user(&self, _: &UserId) -> Result<Option<UserRecord>, Error> {
        unused()
    }
    async fn find_user_by_username(&self, _: &str) -> Result<Option<(UserRecord, PhcHash)>, Error> {
        unused()
    }
    async fn list_users(
        &self,
        _: &UserFilter,
        _: PageRequest,
    ) -> Result<Vec<(i64, UserRecord)>, Error> {
        unused()
    }
    async fn update_user(
        &self,
        _: &UserRecord,
        _: Option<&PhcHash>,
        _: &AuditEntry,
    ) -> Result<bool, Error> {
        unused()
    }
}

#[async_trait]
impl SessionStore for FakeStore {
    async fn insert_family(
        &self,
        _: &RefreshFamily,
        _: &RefreshTokenRecord,
        _: crate::store::SessionCap,
        _: &crate::store::SessionAudit<'_>,
    ) -> Result<Vec<FamilyId>, Error> {
        unused()
    }
    async fn get_family(&self, _: &FamilyId) -> Result<Option<RefreshFamily>, Error> {
        unused()
    }
    async fn families_of_user(&self, _: &str, _: u32) -> Result<Vec<RefreshFamily>, Error> {
        unused()
    }
    async fn find_refresh_token(
        &self,
        _: &KeyHash,
    ) -> Result<Option<(RefreshTokenRecord, RefreshFamily)>, Error> {
        unused()
    }
    async fn use_refresh_token(
        &self,
        _: &KeyHash,
        _: &RefreshDecider<'_>,
    ) -> Result<Option<(PresentedToken, RefreshFamily)>, Error> {
        unused()
    }
    async fn revoke_family(
        &self,
        _: &FamilyId,
        _: i64,
        _: &str,
        _: &AuditEntry,
    ) -> Result<RefreshFamily, Error> {
        unused()
    }
    async fn revoke_user_families(
        &self,
        _: &str,
        _: i64,
        _: &str,
        _: &AuditEntry,
    ) -> Result<u64, Error> {
        unused()
    }
    async fn purge_families(&self, _: PurgeCutoff, _: &AuditEntry) -> Result<u64, Error> {
        unused()
    }
    async fn block_jti(&self, _: &BlockedJti, _: &AuditEntry) -> Result<bool, Error> {
        unused()
    }
    async fn blocked_jtis(&self, _: i64, _: i64, _: i64, _: u32) -> Result<Vec<BlockedJti>, Error> {
        unused()
    }
    async fn purge_blocked_jtis(&self, _: i64, _: &AuditEntry) -> Result<u64, Error> {
        unused()
    }
}

#[async_trait]
impl UsageStore for FakeStore {
    async fn add_usage(&self, _: &[UsageCount]) -> Result<(), Error> {
        unused()
    }
    async fn usage(&self, _: &[KeyId], _: i64, _: i64) -> Result<Vec<UsageCount>, Error> {
        unused()
    }
    async fn purge_usage(&self, _: i64) -> Result<u64, Error> {
        unused()
    }
    async fn usage_totals(
        &self,
        _: Option<&crate::model::Tenant>,
        _: i64,
        _: i64,
    ) -> Result<Vec<(i64, crate::VerifyCode, u64)>, Error> {
        unused()
    }
}

#[async_trait]
impl ConsoleStore for FakeStore {
    async fn insert_console_session(
        &self,
        _: &ConsoleSessionRecord,
        _: &AuditEntry,
    ) -> Result<(), Error> {
        unused()
    }
    async fn get_console_session(
        &self,
        _: &KeyHash,
    ) -> Result<Option<ConsoleSessionRecord>, Error> {
        unused()
    }
    async fn touch_console_session(&self, _: &KeyHash, _: i64) -> Result<(), Error> {
        unused()
    }
    async fn delete_console_session(
        &self,
        _: &KeyHash,
        _: Option<&AuditEntry>,
    ) -> Result<bool, Error> {
        unused()
    }
    async fn purge_console_sessions(&self, _: i64, _: i64) -> Result<u64, Error> {
        unused()
    }
}

#[async_trait]
impl crate::clients::ClientStore for FakeStore {
    async fn insert_client(
        &self,
        _: &crate::clients::ClientRecord,
        _: &AuditEntry,
    ) -> Result<(), Error> {
        unused()
    }
    async fn get_client(
        &self,
        _: &crate::clients::ClientId,
    ) -> Result<Option<crate::clients::ClientRecord>, Error> {
        unused()
    }
    async fn list_clients(
        &self,
        _: &crate::clients::ClientFilter,
        _: PageRequest,
    ) -> Result<Vec<(i64, crate::clients::ClientRecord)>, Error> {
        unused()
    }
    async fn update_client(
        &self,
        _: &crate::clients::ClientRecord,
        _: &AuditEntry,
    ) -> Result<bool, Error> {
        unused()
    }
    async fn revoke_client(
        &self,
        _: &crate::clients::ClientId,
        _: i64,
        _: &AuditEntry,
    ) -> Result<crate::clients::ClientRecord, Error> {
        unused()
    }
    async fn find_clients(
        &self,
        _: Option<&crate::clients::CaName>,
        _: &str,
        _: &[String],
    ) -> Result<Vec<crate::clients::ClientRecord>, Error> {
        unused()
    }
}

#[async_trait]
impl Store for FakeStore {
    async fn ping(&self) -> Result<(), Error> {
        Ok(())
    }
    fn backend(&self) -> &'static str {
        "fake"
    }
    async fn setting_or_insert(&self, _: &str, value: &str) -> Result<String, Error> {
        Ok(value.to_owned())
    }
}
