//! Services that call with a client certificate (mTLS): the certificate a
//! transport saw (`peer`), and the registry of clients it names.
//!
//! - `model`: `ClientId`, `Thumbprint`, `CaName`, `Matcher`, `ClientRecord`.
//! - `pattern`: SPIFFE ID, DNS and subject patterns and their wildcards.
//! - `cert`: the leaf's dates and names (x509-parser).
//! - `cas`: the named client CAs and CRLs, and the chain check (webpki).
//! - `store`: the `ClientStore` trait keygate-store implements.
//! - `service`: the registry's admin operations behind an `Admin`;
//!   `identify`: a `PeerCertificate` to an `Identified` client or a
//!   `ClientRefusal` (`refusal`: the stable codes; `outcome`: `Identified`),
//!   through `cache`.

mod cache;
pub mod cas;
pub mod cert;
pub mod identify;
pub mod model;
mod outcome;
pub mod pattern;
pub mod peer;
pub mod refusal;
pub mod service;
pub mod store;

pub use cas::{CaError, ClientCas};
pub use identify::{Identified, MatchedBy};
pub use model::{
    CaName, ClientFilter, ClientId, ClientPatch, ClientRecord, Matcher, NewClient, Thumbprint,
};
pub use pattern::{NameKind, NamePattern};
pub use peer::{CertSource, PeerCertificate};
pub use refusal::ClientRefusal;
pub use service::ClientService;
pub use store::ClientStore;

#[cfg(test)]
mod tests;
