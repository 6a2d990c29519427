//! keygate's policy through `HmacService`: each refusal code, tampering,
//! replay, secret replacement, streaming bodies.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::fake::FakeStore;
use crate::clock::{ManualClock, MillisClock};
use crate::error::Error;
use crate::freshness::{Freshness, FreshnessMode, StalePolicy};
use crate::httpsig::base::{SignatureParams, sign_hmac_sha256};
use crate::httpsig::digest::content_digest_sha256;
use crate::httpsig::*;
use crate::keys::apikey::KeyId;
use crate::keys::cache::CacheConfig;
use crate::keys::pepper::Pepper;
use crate::keys::service::{Admin, KeyService};
use crate::model::{KeyRecord, Scope, Tenant};
use crate::ratelimit::GcraLimiter;
use crate::sealed::MasterKey;

pub(super) struct Fixture {
    store: Arc<FakeStore>,
    pub(super) clock: Arc<ManualClock>,
    pub(super) service: HmacService,
    key_id: KeyId,
    secret: Vec<u8>,
}

async fn fixture() -> Fixture {
    fixture_with(Arc::new(MemoryNonceStore::new(1000)), HmacPolicy::default()).await
}

/// A key with a signing secret, verified through `nonces` under `policy`.
pub(super) async fn fixture_with(nonces: Arc<dyn NonceStore>, policy: HmacPolicy) -> Fixture {
    fixture_gated(nonces, policy, Arc::new(Freshness::always())).await
}

/// As `fixture_with`, with the key service's caches gated on `freshness`.
async fn fixture_gated(
    nonces: Arc<dyn NonceStore>,
    policy: HmacPolicy,
    freshness: Arc<Freshness>,
) -> Fixture {
    let store = Arc::new(FakeStore::default());
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let keys = Arc::new(
        KeyService::new(
            store.clone(),
            Arc::new(Pepper::new(1, b"pepper-pepper-pepper-pepper-pepper").unwrap()),
            clock.clone(),
            Arc::new(GcraLimiter::new()),
            CacheConfig::default(),
        )
        .with_freshness(freshness),
    );
    let now = clock.now_secs();
    let key_id = KeyId::generate().unwrap();
    store.keys.lock().insert(
        key_id.clone(),
        KeyRecord {
            revoked_at: None,
            expires_at: None,
            remaining: None,
            rate_limit: None,
            tenant: Some(Tenant::parse("acme").unwrap()),
            scopes: vec![Scope::parse("orders:write").unwrap()],
            id: key_id.clone(),
            name: "signer".into(),
            owner: "svc".into(),
            metadata: Default::default(),
            env: crate::KeyEnv::Test,
            prefix: "kg_test_AbCd".into(),
            created_at: now,
            updated_at: now,
            last_used_at: None,
            version: 1,
        },
    );
    let master = Arc::new(MasterKey::generate().unwrap().0);
    let service = HmacService::new(keys, store.clone(), master, nonces, policy, 30_000).unwrap();
    let admin = Admin::new(KeyId::generate().unwrap(), None, Some("req-1".into()));
    let issued = service.create_secret(&admin, &key_id).await.unwrap();
    let secret = STANDARD.decode(issued.secret.as_str()).unwrap();
    Fixture {
        store,
        clock,
        service,
        key_id,
        secret,
    }
}

/// A signed request: headers, URL parts and body, as a client sends it.
pub(super) struct Signed {
    url: UrlParts,
    method: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Signed {
    pub(super) fn view(&self) -> RequestView<'_> {
        self.url.view(self.method, &self.headers)
    }
    pub(super) fn body(&self) -> BodyStatus<'_> {
        if self.body.is_empty() {
            BodyStatus::Empty
        } else {
            BodyStatus::Complete(&self.body)
        }
    }
    fn set(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
    }
}

pub(super) fn sign_with(
    f: &Fixture,
    url: &str,
    body: &[u8],
    components: &[&str],
    tweak: impl FnOnce(&mut SignatureParams),
) -> Signed {
    let url = UrlParts::parse(url).unwrap();
    let mut headers = vec![
        ("Content-Type".to_owned(), "application/json".to_owned()),
        ("X-Unsigned".to_owned(), "free".to_owned()),
    ];
    if !body.is_empty() {
        headers.push(("Content-Digest".into(), content_digest_sha256(body)));
    }
    let nonce = crate::keys::apikey::random_id("", 22).unwrap();
    let mut params =
        SignatureParams::new(components, f.clock.now_secs(), &nonce, f.key_id.as_str());
    tweak(&mut params);
    let method = if body.is_empty() { "GET" } else { "POST" };
    let (input, sig) =
        sign_hmac_sha256(&url.view(method, &headers), "sig1", &params, &f.secret).unwrap();
    headers.push(("Signature-Input".into(), input));
    headers.push(("Signature".into(), sig));
    Signed {
        url,
        method,
        headers,
        body: body.to_vec(),
    }
}

const FULL: [&str; 6] = [
    "@method",
    "@authority",
    "@path",
    "@query",
    "content-digest",
    "content-type",
];

pub(super) fn signed(f: &Fixture) -> Signed {
    sign_with(
        f,
        "https://api.example.com/orders?id=7",
        b"{\"qty\":1}",
        &FULL,
        |_| {},
    )
}

async fn code(f: &Fixture, s: &Signed) -> SigCode {
    match f.service.verify_request(&s.view(), s.body()).await {
        Ok(_) => panic!("accepted"),
        Err(HmacError::Refused(r)) => r.code,
        Err(e) => panic!("not a refusal: {e:?}"),
    }
}

#[tokio::test]
async fn a_signed_request_verifies_once() {
    let f = fixture().await;
    let mut s = signed(&f);
    s.set("X-Unsigned", "changed freely");
    let who = f.service.verify_request(&s.view(), s.body()).await.unwrap();
    assert_eq!(who.key_id, f.key_id);
    assert_eq!(who.owner, "svc");
    assert_eq!(who.tenant.as_ref().unwrap().as_str(), "acme");
    assert_eq!(who.label, "sig1");
    assert_eq!(code(&f, &s).await, SigCode::SignatureReplayed);
    // A fresh nonce goes through again.
    let again = signed(&f);
    f.service
        .verify_request(&again.view(), again.body())
        .await
        .unwrap();
    // The audit entry names the key, never the secret.
    let audit = f.store.audit.lock().clone();
    assert_eq!(audit[0].action, "key.signing_secret_created");
    let b64 = STANDARD.encode(&f.secret);
    assert!(!serde_json::to_string(&audit).unwrap().contains(&b64));
}

#[tokio::test]
async fn tampering_any_covered_component_fails() {
    let f = fixture().await;
    type Tamper = fn(&mut Signed);
    let cases: [(&str, Tamper); 6] = [
        ("method", |s| s.method = "PUT"),
        ("authority", |s| s.url.authority = "evil.example.com".into()),
        ("path", |s| s.url.path = "/orders/8".into()),
        ("query", |s| s.url.query = Some("id=8".into())),
        ("content-type", |s| s.set("Content-Type", "text/plain")),
        ("content-digest", |s| {
            s.body = b"{\"qty\":9}".to_vec();
            s.set("Content-Digest", &content_digest_sha256(b"{\"qty\":9}"));
        }),
    ];
    for (what, tamper) in cases {
        let mut s = signed(&f);
        tamper(&mut s);
        assert_eq!(code(&f, &s).await, SigCode::SignatureInvalid, "{what}");
    }
    let mut s = signed(&f);
    s.body = b"{\"qty\":9}".to_vec();
    assert_eq!(code(&f, &s).await, SigCode::ContentDigestMismatch);
}

#[tokio::test]
async fn each_refusal_has_its_code() {
    let f = fixture().await;
    let mut s = signed(&f);
    s.headers.retain(|(n, _)| !n.starts_with("Signature"));
    assert_eq!(code(&f, &s).await, SigCode::SignatureMissing);

    let mut s = signed(&f);
    s.set("Signature", "sig1=:not base64!:");
    assert_eq!(code(&f, &s).await, SigCode::SignatureMalformed);

    let s = sign_with(
        &f,
        "https://a.example/x?q=1",
        b"{}",
        &["@method", "@authority", "@path", "content-digest"],
        |_| {},
    );
    assert_eq!(code(&f, &s).await, SigCode::SignatureComponentMissing);
    let s = sign_with(
        &f,
        "https://a.example/x",
        b"{}",
        &["@method", "@authority", "@path"],
        |_| {},
    );
    assert_eq!(code(&f, &s).await, SigCode::SignatureComponentMissing);

    let s = sign_with(
        &f,
        "https://a.example/x",
        b"",
        &["@method", "@authority", "@path"],
        |p| {
            p.params[0].1 = structured::BareItem::Integer(f.clock.now_secs() - 301);
        },
    );
    assert_eq!(code(&f, &s).await, SigCode::SignatureExpired);
    let s = sign_with(
        &f,
        "https://a.example/x",
        b"",
        &["@method", "@authority", "@path"],
        |p| {
            p.params.push((
                "expires".into(),
                structured::BareItem::Integer(f.clock.now_secs()),
            ));
        },
    );
    assert_eq!(code(&f, &s).await, SigCode::SignatureExpired);

    let mut s = signed(&f);
    s.headers.retain(|(n, _)| n != "Content-Digest");
    assert_eq!(code(&f, &s).await, SigCode::ContentDigestMissing);

    let s = sign_with(
        &f,
        "https://a.example/x",
        b"",
        &["@method", "@authority", "@path"],
        |p| {
            p.params[2].1 = structured::BareItem::String(KeyId::generate().unwrap().to_string());
        },
    );
    assert_eq!(code(&f, &s).await, SigCode::SignatureKeyUnknown);
    let s = sign_with(
        &f,
        "https://a.example/x",
        b"",
        &["@method", "@authority", "@path"],
        |p| {
            p.params[2].1 = structured::BareItem::String("test-shared-secret".into());
        },
    );
    assert_eq!(code(&f, &s).await, SigCode::SignatureKeyUnknown);

    for (alg, why) in [("rsa-pss-sha512", "not accepted"), ("", "must include")] {
        let s = sign_with(
            &f,
            "https://a.example/x",
            b"",
            &["@method", "@authority", "@path"],
            |p| {
                p.params.retain(|(k, _)| k != "alg");
                if !alg.is_empty() {
                    p.params
                        .push(("alg".into(), structured::BareItem::String(alg.into())));
                }
            },
        );
        match f.service.verify_request(&s.view(), s.body()).await {
            Err(HmacError::Refused(r)) => {
                assert_eq!(r.code, SigCode::SignatureMalformed);
                assert!(r.detail.contains(why), "{}", r.detail);
            }
            other => panic!("{alg}: {other:?}"),
        }
    }
    for missing in ["created", "nonce", "keyid"] {
        let s = sign_with(
            &f,
            "https://a.example/x",
            b"",
            &["@method", "@authority", "@path"],
            |p| {
                p.params.retain(|(k, _)| k != missing);
            },
        );
        assert_eq!(code(&f, &s).await, SigCode::SignatureMalformed, "{missing}");
    }

    let s = signed(&f);
    f.store.keys.lock().get_mut(&f.key_id).unwrap().revoked_at = Some(1);
    f.service.forget(&f.key_id);
    assert_eq!(code(&f, &s).await, SigCode::SignatureKeyRevoked);
    let record = f.store.keys.lock().get_mut(&f.key_id).map(|k| {
        k.revoked_at = None;
        k.expires_at = Some(f.clock.now_secs());
    });
    assert!(record.is_some());
    f.service.forget(&f.key_id);
    assert_eq!(code(&f, &s).await, SigCode::SignatureKeyRevoked);
}

#[tokio::test]
async fn a_replaced_secret_refuses_old_signatures_at_once() {
    let f = fixture().await;
    let old = signed(&f);
    let admin = Admin::new(KeyId::generate().unwrap(), None, None);
    f.service.create_secret(&admin, &f.key_id).await.unwrap();
    assert_eq!(code(&f, &old).await, SigCode::SignatureInvalid);
    // A tenant admin of another tenant sees no such key.
    let other = Admin::new(
        KeyId::generate().unwrap(),
        Some(Tenant::parse("other").unwrap()),
        None,
    );
    assert!(matches!(
        f.service.create_secret(&other, &f.key_id).await,
        Err(Error::NotFound("key"))
    ));
}

#[tokio::test]
async fn an_empty_body_needs_no_digest() {
    let f = fixture().await;
    let s = sign_with(
        &f,
        "https://a.example/x",
        b"",
        &["@method", "@authority", "@path"],
        |_| {},
    );
    f.service
        .verify_request(&s.view(), BodyStatus::Complete(b""))
        .await
        .unwrap();
}

#[tokio::test]
async fn streaming_bodies_are_checked_at_the_end() {
    let f = fixture().await;
    let s = signed(&f);
    let mut who = f
        .service
        .verify_request(&s.view(), BodyStatus::Streaming)
        .await
        .unwrap();
    let mut digest = who.pending_digest.take().unwrap();
    digest.update(&s.body[..3]);
    digest.update(&s.body[3..]);
    digest.finish().unwrap();
    let s = signed(&f);
    let mut who = f
        .service
        .verify_request(&s.view(), BodyStatus::Streaming)
        .await
        .unwrap();
    let mut digest = who.pending_digest.take().unwrap();
    digest.update(b"something else");
    assert_eq!(
        digest.finish().unwrap_err().code,
        SigCode::ContentDigestMismatch
    );
}

#[tokio::test]
async fn created_in_the_future_is_refused_and_split_fields_are_joined() {
    let f = fixture().await;
    let s = sign_with(
        &f,
        "https://a.example/x",
        b"",
        &["@method", "@authority", "@path"],
        |p| {
            p.params[0].1 = structured::BareItem::Integer(f.clock.now_secs() + 301);
        },
    );
    assert_eq!(code(&f, &s).await, SigCode::SignatureExpired);
    // Just inside the window either way is fine.
    let s = sign_with(
        &f,
        "https://a.example/x",
        b"",
        &["@method", "@authority", "@path"],
        |p| {
            p.params[0].1 = structured::BareItem::Integer(f.clock.now_secs() + 300);
        },
    );
    f.service.verify_request(&s.view(), s.body()).await.unwrap();
    // A dictionary split over two field lines reads as one.
    let mut s = signed(&f);
    let sig = s
        .headers
        .iter()
        .find(|(n, _)| n == "Signature")
        .unwrap()
        .1
        .clone();
    s.set("Signature", "other=:AAAA:");
    s.headers.push(("signature".into(), sig));
    f.service.verify_request(&s.view(), s.body()).await.unwrap();
    // Over-long component names are refused before anything is echoed.
    let mut s = signed(&f);
    s.set(
        "Signature-Input",
        &format!(
            "sig1=(\"{}\");created=1;keyid=\"k\";alg=\"hmac-sha256\";nonce=\"n\"",
            "x".repeat(200)
        ),
    );
    match f.service.verify_request(&s.view(), s.body()).await {
        Err(HmacError::Refused(r)) => {
            assert_eq!(r.code, SigCode::SignatureMalformed);
            assert!(r.detail.len() < 200, "{}", r.detail);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn another_signature_beside_keygates_is_ignored() {
    let f = fixture().await;
    let mut s = signed(&f);
    let input = s
        .headers
        .iter()
        .find(|(n, _)| n == "Signature-Input")
        .unwrap()
        .1
        .clone();
    let sig = s
        .headers
        .iter()
        .find(|(n, _)| n == "Signature")
        .unwrap()
        .1
        .clone();
    s.set(
        "Signature-Input",
        &format!("proxy=(\"@method\");created=1;keyid=\"p\";alg=\"ed25519\", {input}"),
    );
    s.set("Signature", &format!("proxy=:AAAA:, {sig}"));
    f.service.verify_request(&s.view(), s.body()).await.unwrap();
}

/// The gateway awaits `verify_request` inside axum handlers and tower
/// services, which need `Send` futures.
#[tokio::test]
async fn verification_futures_are_send() {
    fn assert_send<T: Send>(t: T) -> T {
        t
    }
    let f = fixture().await;
    let s = signed(&f);
    let view = s.view();
    assert_send(f.service.verify_request(&view, s.body()))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_body_must_cover_the_content_headers_it_sends() {
    let f = fixture().await;
    let url = "https://api.example.com/orders";
    let digest_only = ["@method", "@authority", "@path", "content-digest"];
    // `sign_with` sends Content-Type: unsigned, it is refused with a body.
    let s = sign_with(&f, url, b"{}", &digest_only, |_| {});
    assert_eq!(code(&f, &s).await, SigCode::SignatureComponentMissing);
    // Content-Encoding likewise, once Content-Type is covered.
    let mut typed = digest_only.to_vec();
    typed.push("content-type");
    let mut s = sign_with(&f, url, b"{}", &typed, |_| {});
    s.set("Content-Encoding", "gzip");
    assert_eq!(code(&f, &s).await, SigCode::SignatureComponentMissing);
    // Covered, or not sent, they pass.
    let s = sign_with(&f, url, b"{}", &typed, |_| {});
    f.service.verify_request(&s.view(), s.body()).await.unwrap();
    let mut s = sign_with(&f, url, b"{}", &digest_only, |_| {});
    s.headers.retain(|(n, _)| n != "Content-Type");
    f.service.verify_request(&s.view(), s.body()).await.unwrap();
    // Without a body they need not be covered.
    let s = sign_with(&f, url, b"", &["@method", "@authority", "@path"], |_| {});
    f.service.verify_request(&s.view(), s.body()).await.unwrap();
    // A caller (a gateway route) may waive the rule.
    let s = sign_with(&f, url, b"{}", &digest_only, |_| {});
    f.service
        .verify_request_covering(&s.view(), s.body(), false)
        .await
        .unwrap();
}

/// Many nodes: past S without confirming the feed, a node answers 503
/// rather than trust its cached secret (which another node may have
/// replaced), and serves again once confirmed.
#[tokio::test]
async fn an_unconfirmed_node_refuses_to_use_its_cached_secret() {
    let boot = Arc::new(ManualClock::new(0));
    let mode = FreshnessMode::Bounded {
        bound_ms: 2000,
        stale: StalePolicy::FailClosed,
        deadline_ms: 20,
    };
    let freshness = Arc::new(Freshness::new(mode, boot.clone()));
    freshness.confirmed(0);
    let f = fixture_gated(
        Arc::new(MemoryNonceStore::new(1000)),
        HmacPolicy::default(),
        freshness.clone(),
    )
    .await;
    let s = signed(&f);
    f.service.verify_request(&s.view(), s.body()).await.unwrap();
    boot.advance_millis(2001);
    let s = signed(&f);
    match f.service.verify_request(&s.view(), s.body()).await {
        Err(HmacError::Unavailable(Error::Storage(_))) => {}
        other => panic!("not a 503: {other:?}"),
    }
    freshness.confirmed(boot.now_millis());
    f.service.verify_request(&s.view(), s.body()).await.unwrap();
}
