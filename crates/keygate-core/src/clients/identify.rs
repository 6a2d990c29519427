//! Identification: a peer certificate in, the registered client it names
//! (or a typed refusal) out. The one entry point for every transport.
//!
//! Order: the cache; the leaf's own dates; a pinned thumbprint (no CA
//! needed, a self-signed certificate too; one a CA issued still answers to
//! its CRLs); else the chain against each
//! named CA, then the patterns registered under the CAs it verifies to.
//! Among matching clients the most specific matcher wins (SPIFFE ID, then
//! DNS, then subject; exact before wildcard, narrow before wide), and if
//! its client is revoked the answer is `client_revoked`, never a fallback
//! to a wider pattern: revoking a client must stop it.

use std::sync::Arc;

use crate::clients::cas::ChainRefusal;
use crate::clients::cert::LeafFacts;
use crate::clients::model::{CaName, ClientRecord, Thumbprint};
pub use crate::clients::outcome::{Identified, MatchedBy};
use crate::clients::pattern::{NameKind, candidates};
use crate::clients::peer::PeerCertificate;
use crate::clients::refusal::ClientRefusal;
use crate::clients::service::ClientService;
use crate::error::Error;

/// Patterns asked for per name kind: a certificate with hundreds of names
/// or path segments must not become a query with hundreds of values. The
/// most specific come first, so a cut drops only the widest wildcards.
const MAX_CANDIDATES: usize = 64;

const KINDS: [NameKind; 3] = [NameKind::SpiffeId, NameKind::Dns, NameKind::Subject];

fn unavailable(e: &Error) -> ClientRefusal {
    tracing::error!(error = %e, "the client registry could not be read");
    ClientRefusal::Unavailable
}

/// The live client among records of one matcher, else a revoked one.
fn choose(records: Vec<ClientRecord>) -> Option<ClientRecord> {
    let mut revoked = None;
    for r in records {
        if r.revoked_at.is_none() {
            return Some(r);
        }
        revoked = Some(r);
    }
    revoked
}

impl ClientService {
    pub async fn identify(&self, cert: &PeerCertificate) -> Result<Identified, ClientRefusal> {
        self.freshness.ensure().await.map_err(|e| unavailable(&e))?;
        let now_ms = self.clock.now_millis();
        if let Some(hit) = self.cache.get(cert.thumbprint(), now_ms) {
            return hit;
        }
        let since = self.cache.epoch();
        let facts = LeafFacts::parse(cert.leaf()).ok_or(ClientRefusal::Untrusted)?;
        let now = now_ms.div_euclid(1000);
        if now < facts.not_before || now > facts.not_after {
            return Err(ClientRefusal::Expired);
        }
        let outcome = self.look_up(cert, &facts, now).await;
        // Store failures and chain refusals are not remembered: the first
        // may pass, the second may change with the intermediates sent.
        if matches!(
            outcome,
            Ok(_) | Err(ClientRefusal::UnknownClient | ClientRefusal::ClientRevoked)
        ) {
            let thumb = *cert.thumbprint();
            self.cache
                .insert(thumb, outcome.clone(), facts.not_after, now_ms, since);
        }
        outcome
    }

    async fn look_up(
        &self,
        cert: &PeerCertificate,
        facts: &LeafFacts,
        now: i64,
    ) -> Result<Identified, ClientRefusal> {
        let thumbprint = Thumbprint(*cert.thumbprint());
        let pinned = self
            .store
            .find_clients(None, "thumbprint", &[thumbprint.to_b64url()])
            .await
            .map_err(|e| unavailable(&e))?;
        let cas = self.cas();
        if let Some(client) = choose(pinned) {
            // Pinning does not outlive revocation: a pinned certificate a
            // configured CA issued answers to that CA's CRLs, as the TLS
            // handshake's self-signed mode checks a CA-issued one in full.
            if let Err(why @ (ChainRefusal::RevokedCert | ChainRefusal::RevocationUnknown)) =
                cas.trusting(cert.chain(), now)
            {
                return Err(refusal(why));
            }
            return found(client, thumbprint, MatchedBy::Thumbprint);
        }
        let trusted = cas.trusting(cert.chain(), now).map_err(refusal)?;
        for kind in KINDS {
            let wanted: Vec<String> = facts
                .names(kind)
                .into_iter()
                .flat_map(|n| candidates(kind, n))
                .take(MAX_CANDIDATES)
                .collect();
            if wanted.is_empty() {
                continue;
            }
            if let Some((client, ca)) = self.best_of(&trusted, kind, &wanted).await? {
                return found(client, thumbprint, MatchedBy::Pattern { ca, kind });
            }
        }
        Err(ClientRefusal::UnknownClient)
    }

    /// The client of the most specific pattern in `wanted` (ordered most
    /// specific first) under any of `cas`.
    async fn best_of(
        &self,
        cas: &[&CaName],
        kind: NameKind,
        wanted: &[String],
    ) -> Result<Option<(ClientRecord, CaName)>, ClientRefusal> {
        let mut found: Vec<(usize, ClientRecord, CaName)> = Vec::new();
        for ca in cas {
            let rows = self
                .store
                .find_clients(Some(ca), kind.as_str(), wanted)
                .await
                .map_err(|e| unavailable(&e))?;
            for r in rows {
                let rank = wanted
                    .iter()
                    .position(|w| *w == r.matcher.value())
                    .unwrap_or(usize::MAX);
                found.push((rank, r, (*ca).clone()));
            }
        }
        let Some(best) = found.iter().map(|(rank, _, _)| *rank).min() else {
            return Ok(None);
        };
        let mut ca_of_best = None;
        let best_rows: Vec<ClientRecord> = found
            .into_iter()
            .filter(|(rank, _, _)| *rank == best)
            .map(|(_, r, ca)| {
                ca_of_best.get_or_insert(ca);
                r
            })
            .collect();
        Ok(choose(best_rows).zip(ca_of_best))
    }
}

fn refusal(why: ChainRefusal) -> ClientRefusal {
    match why {
        ChainRefusal::Untrusted => ClientRefusal::Untrusted,
        ChainRefusal::Expired => ClientRefusal::Expired,
        ChainRefusal::RevokedCert => ClientRefusal::RevokedCert,
        ChainRefusal::RevocationUnknown => ClientRefusal::RevocationUnknown,
    }
}

fn found(
    client: ClientRecord,
    thumbprint: Thumbprint,
    matched: MatchedBy,
) -> Result<Identified, ClientRefusal> {
    if client.revoked_at.is_some() {
        return Err(ClientRefusal::ClientRevoked);
    }
    Ok(Identified {
        client: Arc::new(client),
        thumbprint,
        matched,
    })
}
