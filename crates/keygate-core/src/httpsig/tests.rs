//! The RFC 9421 known answer, and every refusal of `verify_request`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use parking_lot::Mutex;

use super::base::{SignatureParams, sign_hmac_sha256, signature_base, verify_hmac_sha256};
use super::digest::content_digest_sha256;
use super::*;
use crate::apikey::KeyId;
use crate::cache::CacheConfig;
use crate::clock::{Clock, ManualClock};
use crate::error::Error;
use crate::model::{
    AuditEntry, AuditFilter, KeyFilter, KeyRecord, PageRequest, Scope, SecretRecord, Tenant,
};
use crate::pepper::{KeyHash, Pepper};
use crate::ratelimit::GcraLimiter;
use crate::sealed::MasterKey;
use crate::service::{Admin, KeyService};
use crate::store::{AuditStore, HmacSecretRecord, HmacSecretStore, KeyStore, Store, UpdateOutcome};

const B15_SECRET: &str =
    "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==";

/// The request of RFC 9421 Appendix B.2, with the B.2.5 signature.
fn b2_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Host", "example.com"),
        ("Date", "Tue, 20 Apr 2021 02:07:55 GMT"),
        ("Content-Type", "application/json"),
        (
            "Content-Digest",
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
        ),
        ("Content-Length", "18"),
        (
            "Signature-Input",
            r#"sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret""#,
        ),
        (
            "Signature",
            "sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:",
        ),
    ]
}

fn b2_view(headers: &dyn HeaderLookup) -> RequestView<'_> {
    RequestView {
        method: "POST",
        scheme: "https",
        authority: "example.com",
        path: "/foo",
        query: Some("param=Value&Pet=dog"),
        headers,
    }
}

#[test]
fn rfc_9421_b_2_5_known_answer() {
    let headers = b2_headers();
    let view = b2_view(&headers);
    let secret = STANDARD.decode(B15_SECRET).unwrap();
    let params = verify_hmac_sha256(&view, Some("sig-b25"), &secret).unwrap();
    assert_eq!(
        signature_base(&view, &params).unwrap(),
        "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\
         \"@authority\": example.com\n\
         \"content-type\": application/json\n\
         \"@signature-params\": (\"date\" \"@authority\" \"content-type\");created=1618884473;keyid=\"test-shared-secret\""
    );
    // The signer reproduces the RFC's fields byte for byte.
    let (input, signature) = sign_hmac_sha256(&view, "sig-b25", &params, &secret).unwrap();
    assert_eq!(input, headers[5].1);
    assert_eq!(signature, headers[6].1);
    // One flipped bit of the secret, or of a covered value, and it fails.
    let mut wrong = secret.clone();
    wrong[0] ^= 1;
    let err = verify_hmac_sha256(&view, None, &wrong).unwrap_err();
    assert_eq!(err.code, SigCode::SignatureInvalid);
}

#[test]
fn derived_components_follow_the_rfc_examples() {
    let headers: Vec<(&str, &str)> = vec![];
    let view = RequestView {
        method: "POST",
        scheme: "HTTPS",
        authority: "WWW.Example.com:443",
        path: "/path",
        query: Some("param=value&foo=bar&baz=bat%2Dman"),
        headers: &headers,
    };
    let params = SignatureParams {
        components: [
            "@method",
            "@scheme",
            "@authority",
            "@path",
            "@query",
            "@request-target",
            "@target-uri",
        ]
        .map(String::from)
        .to_vec(),
        params: vec![],
    };
    let base = signature_base(&view, &params).unwrap();
    let lines: Vec<&str> = base.lines().collect();
    assert_eq!(lines[0], "\"@method\": POST");
    assert_eq!(lines[1], "\"@scheme\": https");
    assert_eq!(lines[2], "\"@authority\": www.example.com");
    assert_eq!(lines[3], "\"@path\": /path");
    assert_eq!(lines[4], "\"@query\": ?param=value&foo=bar&baz=bat%2Dman");
    assert_eq!(
        lines[5],
        "\"@request-target\": /path?param=value&foo=bar&baz=bat%2Dman"
    );
    assert_eq!(
        lines[6],
        "\"@target-uri\": https://www.example.com/path?param=value&foo=bar&baz=bat%2Dman"
    );
    let no_query = RequestView {
        query: None,
        path: "",
        authority: "[::1]:8443",
        ..view
    };
    let base = signature_base(&no_query, &params).unwrap();
    assert!(base.contains("\"@query\": ?\n"));
    assert!(base.contains("\"@path\": /\n"));
    assert!(base.contains("\"@authority\": [::1]:8443\n"));
    assert!(base.contains("\"@request-target\": /\n"));
}

#[test]
fn header_values_are_trimmed_and_joined() {
    let headers = vec![("X-Multi", "  a  "), ("x-multi", "b,c"), ("X-Empty", "")];
    let view = b2_view(&headers);
    let params = SignatureParams {
        components: vec!["x-multi".into(), "x-empty".into()],
        params: vec![],
    };
    let base = signature_base(&view, &params).unwrap();
    assert!(
        base.starts_with("\"x-multi\": a, b,c\n\"x-empty\": \n"),
        "{base}"
    );
}

#[test]
fn covered_component_errors_are_precise() {
    let headers: Vec<(&str, &str)> = vec![("x", "1\r\nInjected: 2")];
    let view = b2_view(&headers);
    let case = |c: &[&str]| {
        let p = SignatureParams {
            components: c.iter().map(|s| (*s).to_owned()).collect(),
            params: vec![],
        };
        signature_base(&view, &p).unwrap_err()
    };
    assert_eq!(case(&["absent"]).code, SigCode::SignatureInvalid);
    assert!(case(&["@method", "@method"]).detail.contains("twice"));
    assert!(case(&["@status"]).detail.contains("not supported"));
    assert!(
        case(&["@signature-params"])
            .detail
            .contains("cannot be covered")
    );
    assert!(case(&["Content-Type"]).detail.contains("lowercase"));
    assert!(case(&["signature"]).detail.contains("cannot be covered"));
    assert!(case(&["x"]).detail.contains("ASCII"));
}

// ---- keygate's policy through the service ----

/// Just enough storage for `HmacService`: keys, signing secrets, audit.
#[derive(Default)]
struct FakeStore {
    keys: Mutex<HashMap<KeyId, KeyRecord>>,
    secrets: Mutex<HashMap<KeyId, HmacSecretRecord>>,
    audit: Mutex<Vec<AuditEntry>>,
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
}

#[async_trait]
impl AuditStore for FakeStore {
    async fn append_audit(&self, entries: &[AuditEntry]) -> Result<(), Error> {
        self.audit.lock().extend_from_slice(entries);
        Ok(())
    }
    async fn list_audit(&self, _: &AuditFilter, _: PageRequest) -> Result<Vec<AuditEntry>, Error> {
        Ok(self.audit.lock().clone())
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

struct Fixture {
    store: Arc<FakeStore>,
    clock: Arc<ManualClock>,
    service: HmacService,
    key_id: KeyId,
    secret: Vec<u8>,
}

async fn fixture() -> Fixture {
    let store = Arc::new(FakeStore::default());
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let keys = Arc::new(KeyService::new(
        store.clone(),
        Arc::new(Pepper::new(1, b"pepper-pepper-pepper-pepper-pepper").unwrap()),
        clock.clone(),
        Arc::new(GcraLimiter::new()),
        CacheConfig::default(),
    ));
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
    let (master, _) = MasterKey::generate().unwrap();
    let service = HmacService::new(
        keys,
        Arc::new(master),
        Arc::new(MemoryNonceStore::new(1000)),
        HmacPolicy::default(),
        30_000,
    )
    .unwrap();
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
struct Signed {
    url: UrlParts,
    method: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Signed {
    fn view(&self) -> RequestView<'_> {
        self.url.view(self.method, &self.headers)
    }
    fn body(&self) -> BodyStatus<'_> {
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

fn sign_with(
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
    let nonce = crate::apikey::random_id("", 22).unwrap();
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

fn signed(f: &Fixture) -> Signed {
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
        Err(HmacError::Unavailable(e)) => panic!("unavailable: {e}"),
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

#[test]
fn the_first_hmac_signature_is_chosen_and_codes_are_stable() {
    let codes: Vec<&str> = SigCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(codes.len(), 10);
    assert!(
        codes
            .iter()
            .all(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'))
    );
    assert!(UrlParts::parse("ftp://x/").is_err());
    assert!(UrlParts::parse("https://u:p@x/").is_err());
    let u = UrlParts::parse("https://Host:8443?a=b#frag").unwrap();
    assert_eq!((u.path.as_str(), u.query.as_deref()), ("/", Some("a=b")));
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
