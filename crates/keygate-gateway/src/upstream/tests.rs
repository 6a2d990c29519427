//! The pool against real sockets: reuse, separation by endpoint, caps.

#![allow(clippy::unwrap_used)]
use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An upstream that counts the connections it accepts and answers every
/// request on them with `ok`.
async fn upstream() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut seen = Vec::new();
                loop {
                    let Ok(n) = tcp.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    // Not HTTP (a TLS ClientHello): hang up, as a plain server would.
                    if seen.first().is_some_and(|b| !b.is_ascii_alphabetic()) {
                        return;
                    }
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if tcp.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, accepted)
}

fn get(addr: &str) -> Request<Body> {
    Request::builder()
        .uri("/x")
        .header("host", addr)
        .body(Body::empty())
        .unwrap()
}

async fn read_through(res: Response<Incoming>, lease: Lease) -> Bytes {
    use http_body_util::BodyExt;
    lease
        .attach(res.into_body())
        .collect()
        .await
        .unwrap()
        .to_bytes()
}

#[tokio::test]
async fn a_connection_is_reused_once_its_body_is_read() {
    let (addr, accepted) = upstream().await;
    let address = Endpoint::plain(Arc::from(addr.as_str()));
    let pool = Upstreams::new();
    let affinity = Affinity::new(pool.clone());
    for _ in 0..5 {
        let (res, lease) = pool
            .send(Some(&affinity), &address, None, get(&addr))
            .await
            .unwrap();
        assert_eq!(read_through(res, lease).await, "ok");
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    // Without affinity the idle list serves, once the affinity is gone.
    drop(affinity);
    for _ in 0..3 {
        let (res, lease) = pool.send(None, &address, None, get(&addr)).await.unwrap();
        assert_eq!(read_through(res, lease).await, "ok");
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// One request through `pool` from a worker of its own (a current-thread
/// runtime on a new thread, as the gateway's are), its connection then
/// idle in the pool. The worker runs on, driving that connection, until
/// the answer is dropped.
fn request_from_a_worker(pool: &Arc<Upstreams>, addr: &str) -> tokio::sync::oneshot::Sender<()> {
    let (pool, addr) = (pool.clone(), addr.to_owned());
    let (done_tx, done) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let address = Endpoint::plain(Arc::from(addr.as_str()));
            let affinity = Affinity::new(pool.clone());
            let (res, lease) = pool
                .send(Some(&affinity), &address, None, get(&addr))
                .await
                .unwrap();
            assert_eq!(read_through(res, lease).await, "ok");
            drop(affinity);
            done_tx.send(()).unwrap();
            let _ = stopped.await;
        });
    });
    done.recv_timeout(Duration::from_secs(10)).unwrap();
    stop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_worker_never_takes_a_connection_another_worker_drives() {
    let (addr, accepted) = upstream().await;
    let pool = Upstreams::new();
    let _first = request_from_a_worker(&pool, &addr);
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    // Had it taken the first worker's idle connection, every request of a
    // client on this worker would cross threads twice: its task wakes the
    // connection's, which wakes it back.
    let _second = request_from_a_worker(&pool, &addr);
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn switching_upstreams_keeps_both_connections() {
    let (a, accepted_a) = upstream().await;
    let (b, accepted_b) = upstream().await;
    let (addr_a, addr_b) = (
        Endpoint::plain(Arc::from(a.as_str())),
        Endpoint::plain(Arc::from(b.as_str())),
    );
    let pool = Upstreams::new();
    let affinity = Affinity::new(pool.clone());
    for (address, host) in [(&addr_a, &a), (&addr_b, &b), (&addr_a, &a), (&addr_b, &b)] {
        let (res, lease) = pool
            .send(Some(&affinity), address, None, get(host))
            .await
            .unwrap();
        assert_eq!(read_through(res, lease).await, "ok");
    }
    // The connection the client connection held for one upstream went to
    // the idle list when it turned to the other, and was taken back.
    assert_eq!(accepted_a.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(accepted_b.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_answered_before_its_request_body_was_sent_is_not_reused() {
    let (addr, accepted) = upstream().await;
    let address = Endpoint::plain(Arc::from(addr.as_str()));
    let pool = Upstreams::new();
    let affinity = Affinity::new(pool.clone());
    // The test upstream answers as soon as it has the headers, as one
    // refusing an upload would; the request body is still open.
    let (mut tx, body) =
        http_body_util::channel::Channel::<Bytes, std::convert::Infallible>::new(1);
    let _ = tx.send_data(Bytes::from_static(b"part")).await;
    let upload = Request::builder()
        .method("POST")
        .uri("/upload")
        .header("host", &addr)
        .body(Body::new(body))
        .unwrap();
    let (res, lease) = pool
        .send(Some(&affinity), &address, None, upload)
        .await
        .unwrap();
    assert_eq!(read_through(res, lease).await, "ok");
    // Reusing that connection would wait for the upload to finish.
    let next = pool.send(Some(&affinity), &address, None, get(&addr));
    let (res, lease) = tokio::time::timeout(Duration::from_secs(5), next)
        .await
        .expect("a connection still sending a body was handed out")
        .unwrap();
    assert_eq!(read_through(res, lease).await, "ok");
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    drop(tx);
}

#[tokio::test]
async fn a_body_dropped_early_closes_its_connection() {
    let (addr, accepted) = upstream().await;
    let address = Endpoint::plain(Arc::from(addr.as_str()));
    let pool = Upstreams::new();
    let (res, lease) = pool.send(None, &address, None, get(&addr)).await.unwrap();
    // Read nothing: the connection is mid-message and must not be reused.
    drop(lease.attach(res.into_body()));
    let (res, lease) = pool.send(None, &address, None, get(&addr)).await.unwrap();
    assert_eq!(read_through(res, lease).await, "ok");
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn concurrent_exchanges_get_their_own_connections() {
    let (addr, accepted) = upstream().await;
    let address = Endpoint::plain(Arc::from(addr.as_str()));
    let pool = Upstreams::new();
    let (res1, lease1) = pool.send(None, &address, None, get(&addr)).await.unwrap();
    let (res2, lease2) = pool.send(None, &address, None, get(&addr)).await.unwrap();
    assert_eq!(read_through(res1, lease1).await, "ok");
    assert_eq!(read_through(res2, lease2).await, "ok");
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn exchanges_beyond_the_caps_are_busy_until_one_ends() {
    let (a, _) = upstream().await;
    let (b, _) = upstream().await;
    let (addr_a, addr_b) = (
        Endpoint::plain(Arc::from(a.as_str())),
        Endpoint::plain(Arc::from(b.as_str())),
    );
    let pool = Upstreams::new();
    // One in flight per upstream: a second to it is refused, another
    // upstream is not.
    let (res, lease) = pool.send(None, &addr_a, Some(1), get(&a)).await.unwrap();
    let second = pool.send(None, &addr_a, Some(1), get(&a)).await;
    assert!(matches!(second, Err(SendError::Busy)));
    let (res_b, lease_b) = pool.send(None, &addr_b, Some(1), get(&b)).await.unwrap();
    assert_eq!(read_through(res, lease).await, "ok");
    let (res, lease) = pool.send(None, &addr_a, Some(1), get(&a)).await.unwrap();
    // Two in flight over all upstreams: a third is refused anywhere.
    pool.limit_requests(2);
    let third = pool.send(None, &addr_a, None, get(&a)).await;
    assert!(matches!(third, Err(SendError::Busy)));
    assert_eq!(read_through(res_b, lease_b).await, "ok");
    assert_eq!(read_through(res, lease).await, "ok");
    let (res, lease) = pool.send(None, &addr_a, None, get(&a)).await.unwrap();
    assert_eq!(read_through(res, lease).await, "ok");
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let address = Endpoint::plain(Arc::from(addr.as_str()));
    match Upstreams::new()
        .send(None, &address, None, get(&addr))
        .await
    {
        Err(e) => assert!(e.is_connect(), "{e}"),
        Ok(_) => unreachable!("nothing listens at {addr}"),
    }
}

#[tokio::test]
async fn a_plain_connection_never_serves_a_tls_endpoint() {
    let (addr, accepted) = upstream().await;
    let plain = Endpoint::plain(Arc::from(addr.as_str()));
    let pool = Upstreams::new();
    let affinity = Affinity::new(pool.clone());
    let (res, lease) = pool
        .send(Some(&affinity), &plain, None, get(&addr))
        .await
        .unwrap();
    assert_eq!(read_through(res, lease).await, "ok");
    // Same address, over TLS: the idle plain connection (held by the
    // client connection) must not carry it; a new one is opened, and its
    // handshake fails against a server that speaks no TLS.
    let mut trusts = tls::Trusts::default();
    let connector = trusts
        .connect("127.0.0.1", &tls::Trust::Unverified)
        .unwrap();
    let secure = Endpoint::tls(Arc::from(addr.as_str()), connector);
    match pool.send(Some(&affinity), &secure, None, get(&addr)).await {
        Err(e) => assert!(e.tls_failure().is_some(), "{e}"),
        Ok(_) => unreachable!("a plain connection carried a TLS endpoint's request"),
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// A CA, another CA and a server certificate for 127.0.0.1 only that the
/// first one signed, written into `dir`: (CA, another CA, certificate, key).
fn certificates(dir: &std::path::Path) -> [std::path::PathBuf; 4] {
    use keygate_test_support::certs::{LeafSpec, TestCa};
    let ca = TestCa::new("ca");
    let spec = LeafSpec {
        common_name: "leaf".into(),
        dns: Vec::new(),
        ..LeafSpec::server()
    };
    let (cert, key) = ca.leaf(&spec).write(dir, "leaf");
    let other = TestCa::new("other").write(dir, "other.crt");
    [ca.write(dir, "ca.crt"), other, cert, key]
}

/// A TLS upstream answering `ok` to every request (`upstream()` behind rustls).
async fn tls_upstream(cert: &std::path::Path, key: &std::path::Path) -> String {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                while let Ok(n) = tls.read(&mut buf).await {
                    let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if n == 0 || tls.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A clock past the test certificates' end (2040): 2100-01-01.
#[derive(Debug)]
struct Later;

impl tokio_rustls::rustls::time_provider::TimeProvider for Later {
    fn current_time(&self) -> Option<tokio_rustls::rustls::pki_types::UnixTime> {
        Some(tokio_rustls::rustls::pki_types::UnixTime::since_unix_epoch(
            Duration::from_secs(4_102_444_800),
        ))
    }
}

#[tokio::test]
async fn a_certificate_is_checked_for_its_issuer_name_and_dates() {
    let dir = std::env::temp_dir().join(format!("kg-upstream-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let [ca, other, cert, key] = certificates(&dir);
    let addr = tls_upstream(&cert, &key).await;
    let pool = Upstreams::new();
    let mut trusts = tls::Trusts::default();
    let endpoint = |trusts: &mut tls::Trusts, host: &str, ca: &std::path::Path| {
        let connector = trusts
            .connect(host, &tls::Trust::Bundle(ca.to_owned()))
            .unwrap();
        let port = addr.rsplit(':').next().unwrap();
        Endpoint::tls(Arc::from(format!("{host}:{port}")), connector)
    };
    let good = endpoint(&mut trusts, "127.0.0.1", &ca);
    let (res, lease) = pool.send(None, &good, None, get(&addr)).await.unwrap();
    assert_eq!(read_through(res, lease).await, "ok");
    let reason = |sent: Result<(Response<Incoming>, Lease), SendError>| match sent {
        Err(e) => e
            .tls_failure()
            .map(|f| f.reason)
            .unwrap_or("not a TLS failure"),
        Ok(_) => "verified",
    };
    let foreign = endpoint(&mut trusts, "127.0.0.1", &other);
    let sent = pool.send(None, &foreign, None, get(&addr)).await;
    assert_eq!(reason(sent), "unknown_issuer");
    let misnamed = endpoint(&mut trusts, "localhost", &ca);
    let sent = pool.send(None, &misnamed, None, get(&addr)).await;
    assert_eq!(reason(sent), "name_mismatch");
    let mut late = endpoint(&mut trusts, "127.0.0.1", &ca);
    if let Some(tls) = late.tls.as_mut() {
        let mut config = (*tls.config).clone();
        config.time_provider = Arc::new(Later);
        *tls = Arc::new(tls::TlsConnect {
            config: Arc::new(config),
            server_name: tls.server_name.clone(),
            trust_id: "later".into(),
        });
    }
    late.key = Arc::from("later");
    let sent = pool.send(None, &late, None, get(&addr)).await;
    assert_eq!(reason(sent), "expired");
    std::fs::remove_dir_all(&dir).unwrap();
}
