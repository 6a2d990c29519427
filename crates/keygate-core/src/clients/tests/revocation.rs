//! One CRL policy for the registry and the TLS handshake: with CRLs
//! configured, a revoked certificate is refused, so is one whose issuer
//! published none (fail closed), and a CRL past its nextUpdate still
//! counts.

use super::*;

/// The world's CAs with `crls`, and a client of each CA matched by DNS.
async fn with_crls(w: &World, crls: &[&[u8]]) {
    w.service.replace_cas(cas(&w.mesh, &w.other, crls));
    register(w, pattern("mesh", NameKind::Dns, "*.mesh.example")).await;
    register(w, pattern("other", NameKind::Dns, "*.other.example")).await;
}

#[tokio::test]
async fn with_crls_a_revoked_leaf_and_one_whose_issuer_has_none_are_refused() {
    let w = world();
    let (revoked, kept) = (
        w.mesh.leaf(&LeafSpec::dns("a.mesh.example")),
        w.mesh.leaf(&LeafSpec::dns("b.mesh.example")),
    );
    let unlisted = w.other.leaf(&LeafSpec::dns("c.other.example"));
    let (mesh_crl, _) = w.mesh.crl(&[&revoked]);
    with_crls(&w, &[&mesh_crl]).await;
    let refusal = |c: &TestCert| {
        let p = peer(&[c]);
        let s = &w.service;
        async move { s.identify(&p).await.err() }
    };
    assert_eq!(refusal(&revoked).await, Some(ClientRefusal::RevokedCert));
    assert_eq!(refusal(&kept).await, None);
    // No CRL from `other`: the status is unknown, and unknown is refused.
    let unknown = refusal(&unlisted).await;
    assert_eq!(unknown, Some(ClientRefusal::RevocationUnknown));
    assert_eq!(unknown.unwrap().code(), "mtls_revocation_unknown");
    assert_eq!(unknown.unwrap().status(), 401);
    // Its CRL given, it passes; with no CRL at all nothing is checked.
    let (other_crl, _) = w.other.crl(&[]);
    w.service
        .replace_cas(cas(&w.mesh, &w.other, &[&mesh_crl, &other_crl]));
    assert_eq!(refusal(&unlisted).await, None);
    w.service.replace_cas(cas(&w.mesh, &w.other, &[]));
    assert_eq!(refusal(&revoked).await, None);
}

#[tokio::test]
async fn every_certificate_of_the_chain_needs_its_issuers_crl() {
    let w = world();
    let issuing = w.mesh.intermediate("mesh issuing");
    let leaf = issuing.leaf(&LeafSpec::dns("api.mesh.example"));
    let chain =
        PeerCertificate::new(vec![leaf.der.clone(), issuing.der.clone()], CertSource::Tls).unwrap();
    let (issuing_crl, _) = issuing.crl(&[]);
    with_crls(&w, &[&issuing_crl]).await;
    // The leaf's issuer has a CRL, the intermediate's (the root) none.
    assert_eq!(
        w.service.identify(&chain).await.unwrap_err(),
        ClientRefusal::RevocationUnknown
    );
    let (root_crl, _) = w.mesh.crl(&[]);
    w.service
        .replace_cas(cas(&w.mesh, &w.other, &[&issuing_crl, &root_crl]));
    assert!(w.service.identify(&chain).await.is_ok());
}

#[tokio::test]
async fn a_crl_past_its_next_update_still_counts() {
    let w = world();
    let revoked = w.mesh.leaf(&LeafSpec::dns("a.mesh.example"));
    let kept = w.mesh.leaf(&LeafSpec::dns("b.mesh.example"));
    // The clock says 2030; this CRL was due to be replaced in 2025.
    let (stale, _) = w.mesh.crl_dated(&[&revoked], (2024, 1, 1), (2025, 1, 1));
    let (other_crl, _) = w.other.crl(&[]);
    with_crls(&w, &[&stale, &other_crl]).await;
    assert_eq!(
        w.service.identify(&peer(&[&revoked])).await.unwrap_err(),
        ClientRefusal::RevokedCert
    );
    assert!(w.service.identify(&peer(&[&kept])).await.is_ok());
}

#[tokio::test]
async fn a_pinned_certificate_a_ca_issued_still_answers_to_its_crls() {
    let w = world();
    let issued = w.mesh.leaf(&LeafSpec::dns("pinned.mesh.example"));
    let own = self_signed(&LeafSpec::default());
    register(&w, pin(&issued)).await;
    register(&w, pin(&own)).await;
    let refusal = |c: &TestCert| {
        let p = peer(&[c]);
        let s = &w.service;
        async move { s.identify(&p).await.err() }
    };
    let (revoking, _) = w.mesh.crl(&[&issued]);
    let (other_crl, _) = w.other.crl(&[]);
    w.service
        .replace_cas(cas(&w.mesh, &w.other, &[&revoking, &other_crl]));
    assert_eq!(refusal(&issued).await, Some(ClientRefusal::RevokedCert));
    // No CRL from its issuer: unknown, refused as a pattern's would be.
    w.service.replace_cas(cas(&w.mesh, &w.other, &[&other_crl]));
    assert_eq!(
        refusal(&issued).await,
        Some(ClientRefusal::RevocationUnknown)
    );
    // A self-signed pin has no CA to answer to; without CRLs nothing is
    // checked at all.
    assert_eq!(refusal(&own).await, None);
    w.service.replace_cas(cas(&w.mesh, &w.other, &[]));
    assert_eq!(refusal(&issued).await, None);
}
