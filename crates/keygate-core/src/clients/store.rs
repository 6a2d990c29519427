//! What the client registry needs from storage. Every mutating call writes
//! its audit entry and a `ClientChanged` feed entry in one transaction.

use async_trait::async_trait;

use crate::clients::model::{CaName, ClientFilter, ClientId, ClientRecord};
use crate::error::Error;
use crate::model::{AuditEntry, PageRequest};

#[async_trait]
pub trait ClientStore: Send + Sync {
    /// A live (unrevoked) client with the same matcher answers
    /// `Error::AlreadyExists` and nothing is written.
    async fn insert_client(&self, client: &ClientRecord, audit: &AuditEntry) -> Result<(), Error>;

    async fn get_client(&self, id: &ClientId) -> Result<Option<ClientRecord>, Error>;

    /// Clients in creation order, each with its storage sequence for the cursor.
    async fn list_clients(
        &self,
        filter: &ClientFilter,
        page: PageRequest,
    ) -> Result<Vec<(i64, ClientRecord)>, Error>;

    /// Writes every field but `created_at` and `revoked_at`, only if the
    /// stored version is `client.version - 1` and it is not revoked.
    /// `false`: someone wrote first; nothing was written. A matcher a
    /// live client already has answers `Error::AlreadyExists`.
    async fn update_client(&self, client: &ClientRecord, audit: &AuditEntry)
    -> Result<bool, Error>;

    /// Marks the client revoked (idempotent; the first time is kept) and
    /// returns it as it now is.
    async fn revoke_client(
        &self,
        id: &ClientId,
        at: i64,
        audit: &AuditEntry,
    ) -> Result<ClientRecord, Error>;

    /// Clients, revoked ones included, whose matcher is exactly
    /// `(ca, kind, value)` for one of `values` (`ca` is `None` for pinned
    /// thumbprints): identification's lookup, one indexed query.
    async fn find_clients(
        &self,
        ca: Option<&CaName>,
        kind: &str,
        values: &[String],
    ) -> Result<Vec<ClientRecord>, Error>;
}
