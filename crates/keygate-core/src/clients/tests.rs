//! The registry against real certificates made in the test, over an
//! in-memory `ClientStore` (the SQL stores have their own suite in
//! keygate-store, on both backends).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use keygate_test_support::certs::{LeafSpec, TestCa, TestCert, self_signed, unix};
use parking_lot::Mutex;

use super::*;
use crate::clock::ManualClock;
use crate::error::Error;
use crate::keys::apikey::KeyId;
use crate::keys::service::Admin;
use crate::model::{AuditEntry, PageRequest, Scope, Tenant};

#[derive(Default)]
struct MemStore {
    rows: Mutex<Vec<ClientRecord>>,
    audits: Mutex<Vec<AuditEntry>>,
    finds: AtomicUsize,
}

#[async_trait]
impl ClientStore for MemStore {
    async fn insert_client(&self, c: &ClientRecord, a: &AuditEntry) -> Result<(), Error> {
        let mut rows = self.rows.lock();
        if rows
            .iter()
            .any(|r| r.revoked_at.is_none() && r.matcher == c.matcher)
        {
            return Err(Error::AlreadyExists("a client with this matcher"));
        }
        rows.push(c.clone());
        self.audits.lock().push(a.clone());
        Ok(())
    }
    async fn get_client(&self, id: &ClientId) -> Result<Option<ClientRecord>, Error> {
        Ok(self.rows.lock().iter().find(|r| &r.id == id).cloned())
    }
    async fn list_clients(
        &self,
        f: &ClientFilter,
        _: PageRequest,
    ) -> Result<Vec<(i64, ClientRecord)>, Error> {
        let rows = self.rows.lock();
        Ok((1..)
            .zip(rows.iter().cloned())
            .filter(|(_, r)| f.tenant.is_none() || r.tenant == f.tenant)
            .collect())
    }
    async fn update_client(&self, c: &ClientRecord, a: &AuditEntry) -> Result<bool, Error> {
        let mut rows = self.rows.lock();
        let Some(row) = rows
            .iter_mut()
            .find(|r| r.id == c.id && r.version == c.version - 1)
        else {
            return Ok(false);
        };
        *row = c.clone();
        self.audits.lock().push(a.clone());
        Ok(true)
    }
    async fn revoke_client(
        &self,
        id: &ClientId,
        at: i64,
        a: &AuditEntry,
    ) -> Result<ClientRecord, Error> {
        let mut rows = self.rows.lock();
        let row = rows
            .iter_mut()
            .find(|r| &r.id == id)
            .ok_or(Error::NotFound("client"))?;
        row.revoked_at.get_or_insert(at);
        self.audits.lock().push(a.clone());
        Ok(row.clone())
    }
    async fn find_clients(
        &self,
        ca: Option<&CaName>,
        kind: &str,
        values: &[String],
    ) -> Result<Vec<ClientRecord>, Error> {
        self.finds.fetch_add(1, Ordering::SeqCst);
        Ok(self
            .rows
            .lock()
            .iter()
            .filter(|r| {
                r.matcher.ca() == ca
                    && r.matcher.kind() == kind
                    && values.contains(&r.matcher.value())
            })
            .cloned()
            .collect())
    }
}

struct World {
    mesh: TestCa,
    other: TestCa,
    store: Arc<MemStore>,
    clock: Arc<ManualClock>,
    service: ClientService,
}

fn root() -> Admin {
    Admin::new(KeyId::generate().unwrap(), None, None)
}

fn cas(mesh: &TestCa, other: &TestCa, crls: &[&[u8]]) -> ClientCas {
    ClientCas::new(
        [
            ("mesh", mesh.pem.as_bytes()),
            ("other", other.pem.as_bytes()),
        ],
        crls.iter().copied(),
    )
    .unwrap()
}

fn world() -> World {
    let mesh = TestCa::new("mesh root");
    let other = TestCa::new("other root");
    let store = Arc::new(MemStore::default());
    let clock = Arc::new(ManualClock::new(unix((2030, 1, 1)) * 1000));
    let service = ClientService::new(store.clone(), cas(&mesh, &other, &[]), clock.clone());
    World {
        mesh,
        other,
        store,
        clock,
        service,
    }
}

fn peer(certs: &[&TestCert]) -> PeerCertificate {
    PeerCertificate::new(
        certs.iter().map(|c| c.der.clone()).collect(),
        CertSource::Tls,
    )
    .unwrap()
}

fn pattern(ca: &str, kind: NameKind, p: &str) -> Matcher {
    Matcher::Pattern {
        ca: CaName::parse(ca).unwrap(),
        pattern: NamePattern::parse(kind, p).unwrap(),
    }
}

fn new_client(matcher: Matcher) -> NewClient {
    NewClient {
        name: "payments".into(),
        owner: "team-pay".into(),
        tenant: None,
        scopes: vec![Scope::parse("orders:read").unwrap()],
        rate_limit: None,
        matcher,
    }
}

async fn register(w: &World, matcher: Matcher) -> ClientRecord {
    w.service
        .create(&root(), new_client(matcher))
        .await
        .unwrap()
}

fn pin(cert: &TestCert) -> Matcher {
    let p = PeerCertificate::new(vec![cert.der.clone()], CertSource::Tls).unwrap();
    Matcher::Pinned(Thumbprint(*p.thumbprint()))
}

#[tokio::test]
async fn a_pinned_self_signed_certificate_names_its_client() {
    let w = world();
    let cert = self_signed(&LeafSpec::default());
    let client = register(&w, pin(&cert)).await;
    let got = w.service.identify(&peer(&[&cert])).await.unwrap();
    assert_eq!(got.client.id, client.id);
    assert_eq!(got.matched, MatchedBy::Thumbprint);
    assert_eq!(got.client.scopes, client.scopes);
    // Another self-signed certificate with the same names is someone else.
    let twin = self_signed(&LeafSpec::default());
    assert_eq!(
        w.service.identify(&peer(&[&twin])).await.unwrap_err(),
        ClientRefusal::Untrusted
    );
}

#[tokio::test]
async fn a_pinned_certificate_outside_its_dates_is_expired() {
    let w = world();
    let old = self_signed(&LeafSpec::default().valid((2000, 1, 1), (2001, 1, 1)));
    let early = self_signed(&LeafSpec::default().valid((2035, 1, 1), (2036, 1, 1)));
    register(&w, pin(&old)).await;
    register(&w, pin(&early)).await;
    assert_eq!(
        w.service.identify(&peer(&[&old])).await.unwrap_err(),
        ClientRefusal::Expired
    );
    assert_eq!(
        w.service.identify(&peer(&[&early])).await.unwrap_err(),
        ClientRefusal::Expired
    );
}

#[tokio::test]
async fn a_cached_answer_turns_expired_when_the_certificate_does() {
    let w = world();
    let cert = self_signed(&LeafSpec::default().valid((2020, 1, 1), (2030, 1, 2)));
    register(&w, pin(&cert)).await;
    w.service.identify(&peer(&[&cert])).await.unwrap();
    w.clock.advance_secs(2 * 86_400);
    assert_eq!(
        w.service.identify(&peer(&[&cert])).await.unwrap_err(),
        ClientRefusal::Expired
    );
}

#[tokio::test]
async fn a_spiffe_id_under_its_ca_names_the_client_and_under_another_ca_does_not() {
    let w = world();
    let leaf = w.mesh.leaf(&LeafSpec::spiffe("spiffe://a/ns/api"));
    let client = register(&w, pattern("mesh", NameKind::SpiffeId, "spiffe://a/ns/api")).await;
    let got = w.service.identify(&peer(&[&leaf])).await.unwrap();
    assert_eq!(got.client.id, client.id);
    assert_eq!(
        got.matched,
        MatchedBy::Pattern {
            ca: CaName::parse("mesh").unwrap(),
            kind: NameKind::SpiffeId
        }
    );

    // The same ID registered under "other" does not take a mesh leaf.
    let w = world();
    let leaf = w.mesh.leaf(&LeafSpec::spiffe("spiffe://a/ns/api"));
    register(
        &w,
        pattern("other", NameKind::SpiffeId, "spiffe://a/ns/api"),
    )
    .await;
    assert_eq!(
        w.service.identify(&peer(&[&leaf])).await.unwrap_err(),
        ClientRefusal::UnknownClient
    );
    // And an "other" leaf is no mesh leaf either.
    let theirs = w.other.leaf(&LeafSpec::spiffe("spiffe://a/ns/api"));
    assert!(w.service.identify(&peer(&[&theirs])).await.is_ok());
}

#[tokio::test]
async fn a_leaf_from_an_unknown_ca_or_for_servers_only_is_untrusted() {
    let w = world();
    register(&w, pattern("mesh", NameKind::SpiffeId, "spiffe://a/*")).await;
    let stranger = TestCa::new("mesh root").leaf(&LeafSpec::spiffe("spiffe://a/x"));
    assert_eq!(
        w.service.identify(&peer(&[&stranger])).await.unwrap_err(),
        ClientRefusal::Untrusted
    );
    let server = w.mesh.leaf(&LeafSpec {
        server_only: true,
        ..LeafSpec::spiffe("spiffe://a/x")
    });
    assert_eq!(
        w.service.identify(&peer(&[&server])).await.unwrap_err(),
        ClientRefusal::Untrusted
    );
    assert!(
        w.service
            .identify(&peer(&[&w.mesh.leaf(&LeafSpec::spiffe("spiffe://a/x"))]))
            .await
            .is_ok()
    );
    // Garbage is untrusted, not a panic.
    let junk =
        PeerCertificate::new(vec![b"not a certificate".to_vec()], CertSource::Proxy).unwrap();
    assert_eq!(
        w.service.identify(&junk).await.unwrap_err(),
        ClientRefusal::Untrusted
    );
}

#[tokio::test]
async fn intermediates_come_from_the_peer() {
    let w = world();
    let issuing = w.mesh.intermediate("mesh issuing");
    let leaf = issuing.leaf(&LeafSpec::dns("api.svc.example"));
    register(&w, pattern("mesh", NameKind::Dns, "*.svc.example")).await;
    let with =
        PeerCertificate::new(vec![leaf.der.clone(), issuing.der.clone()], CertSource::Tls).unwrap();
    assert!(w.service.identify(&with).await.is_ok());
    let w2 = world();
    register(&w2, pattern("mesh", NameKind::Dns, "*.svc.example")).await;
    let leaf2 = w2
        .mesh
        .intermediate("i")
        .leaf(&LeafSpec::dns("api.svc.example"));
    assert_eq!(
        w2.service.identify(&peer(&[&leaf2])).await.unwrap_err(),
        ClientRefusal::Untrusted
    );
}

#[tokio::test]
async fn a_crl_listing_the_leaf_refuses_it_with_its_own_code() {
    let w = world();
    let leaf = w.mesh.leaf(&LeafSpec::spiffe("spiffe://a/ns/api"));
    let fine = w.mesh.leaf(&LeafSpec::spiffe("spiffe://a/ns/api"));
    register(&w, pattern("mesh", NameKind::SpiffeId, "spiffe://a/ns/api")).await;
    assert!(w.service.identify(&peer(&[&leaf])).await.is_ok());
    let (der, pem) = w.mesh.crl(&[&leaf]);
    // PEM and DER files alike; the reload drops cached answers.
    for crl in [der.as_slice(), pem.as_bytes()] {
        w.service.replace_cas(cas(&w.mesh, &w.other, &[crl]));
        assert_eq!(
            w.service.identify(&peer(&[&leaf])).await.unwrap_err(),
            ClientRefusal::RevokedCert
        );
        assert!(w.service.identify(&peer(&[&fine])).await.is_ok());
    }
}

#[tokio::test]
async fn a_revoked_client_is_refused_at_once_though_cached() {
    let w = world();
    let cert = self_signed(&LeafSpec::default());
    let client = register(&w, pin(&cert)).await;
    w.service.identify(&peer(&[&cert])).await.unwrap();
    assert_eq!(w.service.cache_len(), 1);
    w.service.revoke(&root(), &client.id).await.unwrap();
    assert_eq!(
        w.service.identify(&peer(&[&cert])).await.unwrap_err(),
        ClientRefusal::ClientRevoked
    );

    // The same through the feed: another node's write, this node's store.
    let leaf = w.mesh.leaf(&LeafSpec::spiffe("spiffe://a/b"));
    let c2 = register(&w, pattern("mesh", NameKind::SpiffeId, "spiffe://a/b")).await;
    w.service.identify(&peer(&[&leaf])).await.unwrap();
    w.store
        .rows
        .lock()
        .iter_mut()
        .find(|r| r.id == c2.id)
        .unwrap()
        .revoked_at = Some(1);
    assert!(
        w.service.identify(&peer(&[&leaf])).await.is_ok(),
        "cached until told"
    );
    w.service.invalidate_all();
    assert_eq!(
        w.service.identify(&peer(&[&leaf])).await.unwrap_err(),
        ClientRefusal::ClientRevoked
    );
}

#[tokio::test]
async fn revoking_the_exact_client_does_not_fall_back_to_a_wildcard() {
    let w = world();
    let leaf = w.mesh.leaf(&LeafSpec::spiffe("spiffe://a/ns/api"));
    let wide = register(&w, pattern("mesh", NameKind::SpiffeId, "spiffe://a/*")).await;
    let narrow = register(&w, pattern("mesh", NameKind::SpiffeId, "spiffe://a/ns/*")).await;
    let exact = register(&w, pattern("mesh", NameKind::SpiffeId, "spiffe://a/ns/api")).await;
    assert_eq!(
        w.service.identify(&peer(&[&leaf])).await.unwrap().client.id,
        exact.id
    );
    let other = w.mesh.leaf(&LeafSpec::spiffe("spiffe://a/ns/web"));
    assert_eq!(
        w.service
            .identify(&peer(&[&other]))
            .await
            .unwrap()
            .client
            .id,
        narrow.id
    );
    let far = w.mesh.leaf(&LeafSpec::spiffe("spiffe://a/x/y"));
    assert_eq!(
        w.service.identify(&peer(&[&far])).await.unwrap().client.id,
        wide.id
    );
    w.service.revoke(&root(), &exact.id).await.unwrap();
    assert_eq!(
        w.service.identify(&peer(&[&leaf])).await.unwrap_err(),
        ClientRefusal::ClientRevoked
    );
    // Registered again, the new client takes over.
    let again = register(&w, pattern("mesh", NameKind::SpiffeId, "spiffe://a/ns/api")).await;
    assert_eq!(
        w.service.identify(&peer(&[&leaf])).await.unwrap().client.id,
        again.id
    );
}

#[tokio::test]
async fn wildcard_edges_hold_with_real_certificates() {
    let w = world();
    register(&w, pattern("mesh", NameKind::SpiffeId, "spiffe://a/ns/*")).await;
    for (id, ok) in [
        ("spiffe://a/ns/x", true),
        ("spiffe://a/ns/x/y", true),
        ("spiffe://a/ns", false),
        ("spiffe://a/nsx/y", false),
        ("spiffe://b/ns/x", false),
    ] {
        let leaf = w.mesh.leaf(&LeafSpec::spiffe(id));
        let got = w.service.identify(&peer(&[&leaf])).await;
        assert_eq!(got.is_ok(), ok, "{id}: {got:?}");
        if !ok {
            assert_eq!(got.unwrap_err(), ClientRefusal::UnknownClient);
        }
    }
    // Two SPIFFE IDs in one certificate name nobody.
    let two = w.mesh.leaf(&LeafSpec {
        spiffe_ids: vec!["spiffe://a/ns/x".into(), "spiffe://a/ns/y".into()],
        ..LeafSpec::default()
    });
    assert_eq!(
        w.service.identify(&peer(&[&two])).await.unwrap_err(),
        ClientRefusal::UnknownClient
    );
}

#[tokio::test]
async fn subjects_and_dns_names_match_as_documented() {
    let w = world();
    let subject = register(
        &w,
        pattern("mesh", NameKind::Subject, "CN=batch, O=Example"),
    )
    .await;
    let leaf = w.mesh.leaf(&LeafSpec {
        common_name: "batch".into(),
        organization: Some("Example".into()),
        ..LeafSpec::default()
    });
    assert_eq!(
        w.service.identify(&peer(&[&leaf])).await.unwrap().client.id,
        subject.id
    );
    let dns = register(&w, pattern("mesh", NameKind::Dns, "api.svc.example")).await;
    let leaf = w.mesh.leaf(&LeafSpec::dns("API.svc.example"));
    assert_eq!(
        w.service.identify(&peer(&[&leaf])).await.unwrap().client.id,
        dns.id
    );
}

#[tokio::test]
async fn an_unknown_certificate_is_remembered_until_a_client_changes() {
    let w = world();
    let unknown = w.mesh.leaf(&LeafSpec::spiffe("spiffe://a/q"));
    for _ in 0..5 {
        assert_eq!(
            w.service.identify(&peer(&[&unknown])).await.unwrap_err(),
            ClientRefusal::UnknownClient
        );
    }
    // Once: the pinned lookup, then one per name the leaf carries (its
    // SPIFFE ID and its subject).
    assert_eq!(w.store.finds.load(Ordering::SeqCst), 3);
    let c = register(&w, pattern("mesh", NameKind::SpiffeId, "spiffe://a/q")).await;
    assert_eq!(
        w.service
            .identify(&peer(&[&unknown]))
            .await
            .unwrap()
            .client
            .id,
        c.id
    );
}

#[tokio::test]
async fn bad_registrations_are_refused_and_store_nothing() {
    let w = world();
    let nope = pattern("nope", NameKind::SpiffeId, "spiffe://a/b");
    let err = w
        .service
        .create(&root(), new_client(nope))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { field: "ca", .. }), "{err:?}");
    let mut empty = new_client(pattern("mesh", NameKind::Dns, "a.example"));
    empty.name = " ".into();
    assert!(w.service.create(&root(), empty).await.is_err());
    assert!(w.store.rows.lock().is_empty());
    assert!(w.store.audits.lock().is_empty());
}

#[tokio::test]
async fn tenant_admins_are_confined_and_everything_is_audited() {
    let w = world();
    let acme = Tenant::parse("acme").unwrap();
    let admin = Admin::new(
        KeyId::generate().unwrap(),
        Some(acme.clone()),
        Some("req-1".into()),
    );
    let mine = w
        .service
        .create(
            &admin,
            new_client(pattern("mesh", NameKind::Dns, "a.example")),
        )
        .await
        .unwrap();
    assert_eq!(mine.tenant, Some(acme));
    let mut theirs = new_client(pattern("mesh", NameKind::Dns, "b.example"));
    theirs.tenant = Some(Tenant::parse("globex").unwrap());
    assert!(matches!(
        w.service.create(&admin, theirs.clone()).await,
        Err(Error::Forbidden(_))
    ));
    let theirs = w.service.create(&root(), theirs).await.unwrap();
    assert!(matches!(
        w.service.get(&admin, &theirs.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        w.service.revoke(&admin, &theirs.id).await,
        Err(Error::NotFound(_))
    ));
    audited(&w, &admin, &mine).await;
}

/// A tenant admin's own client, updated then revoked: three audit
/// entries after the two creations, with the admin's request id.
async fn audited(w: &World, admin: &Admin, mine: &ClientRecord) {
    let patch = ClientPatch {
        name: Some("renamed".into()),
        ..ClientPatch::default()
    };
    assert_eq!(
        w.service.update(admin, &mine.id, patch).await.unwrap().name,
        "renamed"
    );
    w.service.revoke(admin, &mine.id).await.unwrap();
    let actions: Vec<String> = w
        .store
        .audits
        .lock()
        .iter()
        .map(|a| a.action.clone())
        .collect();
    assert_eq!(
        actions,
        [
            "client.created",
            "client.created",
            "client.updated",
            "client.revoked"
        ]
    );
    assert_eq!(
        w.store.audits.lock()[0].request_id.as_deref(),
        Some("req-1")
    );
}

#[test]
fn ca_bundles_and_crls_that_cannot_be_used_are_refused() {
    let ca = TestCa::new("x");
    assert!(ClientCas::new([("a", b"not pem".as_slice())], []).is_err());
    assert!(ClientCas::new([("bad name!", ca.pem.as_bytes())], []).is_err());
    assert!(ClientCas::new([("a", ca.pem.as_bytes())], [b"junk".as_slice()]).is_err());
    let ok = ClientCas::new([("a", ca.pem.as_bytes())], [ca.crl(&[]).0.as_slice()]).unwrap();
    assert!(ok.contains(&CaName::parse("a").unwrap()));
}

mod revocation;
