//! What identification answers when a certificate names a live client.

use std::sync::Arc;

use crate::clients::model::{CaName, ClientRecord, Thumbprint};
use crate::clients::pattern::NameKind;

/// How the certificate was tied to its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchedBy {
    Thumbprint,
    Pattern { ca: CaName, kind: NameKind },
}

/// A certificate that names a live registered client.
#[derive(Debug, Clone)]
pub struct Identified {
    pub client: Arc<ClientRecord>,
    /// The leaf's `x5t#S256`, for RFC 8705 bound tokens.
    pub thumbprint: Thumbprint,
    pub matched: MatchedBy,
}
