//! Many nodes on one PostgreSQL database: a revoke on one node is refused
//! by the other well inside S, `?wait=all` reports every live node's
//! acknowledgement, `GET /v1/cluster` lists them, and a node that loses its
//! database answers 503 (never a stale VALID) once S has passed, then
//! recovers by itself. On SQLite the same calls answer as a single node.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::{Backend, TestApp};

crate::on_both_backends!(
    a_revoke_on_one_node_is_refused_on_the_other_within_s,
    session_revocations_reach_the_other_node,
    wait_all_reports_every_live_node,
    the_cluster_lists_its_nodes,
);

/// The default S.
const S: Duration = Duration::from_millis(2000);

fn node_id(app: &TestApp) -> String {
    let cluster = app.state().cluster.as_ref().expect("cluster on PostgreSQL");
    cluster.config.node_id.clone()
}

/// Polls `/v1/cluster` on `app` until it lists `n` live nodes.
async fn until_live(app: &TestApp, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let res = app.get("/v1/cluster").await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let live = res.body["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .filter(|n| n["live"] == true)
            .count();
        if live >= n {
            return res.body;
        }
        assert!(
            Instant::now() < deadline,
            "never {n} live nodes: {}",
            res.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_revoke_on_one_node_is_refused_on_the_other_within_s(a: TestApp) {
    if a.backend == Backend::Sqlite {
        return; // one node: covered by the keys suite
    }
    let b = a.second_node().await;
    let (id, key) = a.create_key(json!({"name": "k", "owner": "o"})).await;
    // Warm: B has the key cached (after the creation's own feed entry,
    // which would keep a racing fill out of the cache).
    settle(&a, &b).await;
    assert_eq!(b.verify_code(&key).await, "VALID");
    assert_eq!(b.verify(&key, &[]).await["code"], "VALID");
    let res = a.post(&format!("/v1/keys/{id}/revoke"), json!({})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let answered = Instant::now();
    loop {
        let code = b.verify_code(&key).await;
        if code == "REVOKED" {
            break;
        }
        assert_eq!(code, "VALID");
        assert!(answered.elapsed() < S, "B still accepts the key after S");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The lag was observed on B.
    assert!(b.metric("keygate_invalidation_lag_seconds_count").await >= 1.0);
}

/// A user's cut-off and a logged-out token's `jti` reach the other node:
/// after `?wait=all` it refuses both at once (its cut-off cache and its
/// blocklist sync would otherwise lag by up to a second).
async fn session_revocations_reach_the_other_node(a: TestApp) {
    use crate::sessions::{active, create_user, introspector, login};
    if a.backend == Backend::Sqlite {
        return;
    }
    let b = a.second_node().await;
    until_live(&a, 2).await;
    let uid = create_user(&a, "nodey").await;
    let inspector = introspector(&a).await;
    let (first, _) = login(&a, "nodey").await;
    assert_eq!(active(&b, &inspector, &first).await["active"], true);
    let res = a
        .post(
            &format!("/v1/users/{uid}/revoke-sessions?wait=all"),
            json!({}),
        )
        .await;
    assert_eq!(res.body["propagation"]["acked"], 2, "{}", res.body);
    assert_eq!(active(&b, &inspector, &first).await["active"], false);
    // A token issued after the cut-off, then logged out on A.
    let (second, _) = login(&a, "nodey").await;
    assert_eq!(active(&b, &inspector, &second).await["active"], true);
    let res = a
        .raw(
            a.http
                .post(format!("{}/v1/auth/logout?wait=all", a.base))
                .bearer_auth(&second),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["propagation"]["acked"], 2, "{}", res.body);
    assert_eq!(active(&b, &inspector, &second).await["active"], false);
}

async fn wait_all_reports_every_live_node(a: TestApp) {
    let (id, key) = a.create_key(json!({"name": "k", "owner": "o"})).await;
    let res = a
        .post(&format!("/v1/keys/{id}/revoke?wait=sometimes"), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    let res = a.post(&format!("/v1/keys/{id}/revoke"), json!({})).await;
    assert!(res.body.get("propagation").is_none(), "only when asked");
    if a.backend == Backend::Sqlite {
        let res = a
            .post(&format!("/v1/keys/{id}/revoke?wait=all"), json!({}))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let p = &res.body["propagation"];
        assert_eq!(
            (p["live_nodes"].as_u64(), p["acked"].as_u64()),
            (Some(1), Some(1))
        );
        return;
    }
    let b = a.second_node().await;
    until_live(&a, 2).await;
    let (id, key2) = a.create_key(json!({"name": "k2", "owner": "o"})).await;
    settle(&a, &b).await;
    assert_eq!(b.verify_code(&key2).await, "VALID");
    assert_eq!(b.verify_code(&key2).await, "VALID");
    let res = a
        .post(&format!("/v1/keys/{id}/revoke?wait=all"), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["status"], "revoked");
    let p = &res.body["propagation"];
    assert_eq!(p["live_nodes"], 2, "{p}");
    assert_eq!(p["acked"], 2, "{p}");
    assert_eq!(p["unconfirmed"], json!([]));
    assert_eq!(p["bound_ms"], 2000);
    assert!(p["seq"].as_i64().unwrap() > 0);
    // Acknowledged means applied: B refuses at once, no polling.
    assert_eq!(b.verify_code(&key2).await, "REVOKED");
    let _ = key;
    // The other writes that accept it answer the same shape.
    let user = a
        .post(
            "/v1/users",
            json!({"username": "wally", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(user.status, StatusCode::CREATED, "{}", user.body);
    let uid = user.body["id"].as_str().unwrap();
    let res = a
        .post(
            &format!("/v1/users/{uid}/revoke-sessions?wait=all"),
            json!({}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["propagation"]["acked"], 2, "{}", res.body);
    let (kid, _) = a.create_key(json!({"name": "s", "owner": "o"})).await;
    let res = a
        .post(
            &format!("/v1/keys/{kid}/signing-secret?wait=all"),
            json!({}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(res.body["propagation"]["acked"], 2, "{}", res.body);
}

async fn the_cluster_lists_its_nodes(a: TestApp) {
    if a.backend == Backend::Sqlite {
        let res = a.get("/v1/cluster").await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(res.body["mode"], "single_node");
        return;
    }
    let b = a.second_node().await;
    let body = until_live(&b, 2).await;
    assert_eq!(body["mode"], "cluster");
    assert_eq!(body["node_id"], node_id(&b));
    let mut ids: Vec<String> = body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut want = vec![node_id(&a), node_id(&b)];
    want.sort();
    assert_eq!(ids, want);
    for n in body["nodes"].as_array().unwrap() {
        assert!(n["applied_seq"].as_i64().is_some(), "{n}");
        assert!(n["lag"].as_i64().is_some_and(|l| l >= 0), "{n}");
    }
    // Root only: a tenant admin is refused.
    let (_, tenant_admin) = a
        .create_key(json!({"name": "t", "owner": "o", "tenant": "acme", "scopes": ["admin"]}))
        .await;
    let res = a
        .request(
            reqwest::Method::GET,
            "/v1/cluster",
            Some(&tenant_admin),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    // A node that stops cleanly leaves the list.
    let b_id = node_id(&b);
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let res = a.get("/v1/cluster").await;
        let live: Vec<&Value> = res.body["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["node_id"] == b_id.as_str() && n["live"] == true)
            .collect();
        if live.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "B still live: {}", res.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `b` has applied everything `a` has.
async fn settle(a: &TestApp, b: &TestApp) {
    // The database's head, not a's applied position: a hears its own
    // writes through the feed too, and may not have yet.
    let (head, _) = a
        .state()
        .cluster
        .as_ref()
        .unwrap()
        .node
        .sync_to_head()
        .await
        .unwrap();
    let node = &b.state().cluster.as_ref().unwrap().node;
    let deadline = Instant::now() + Duration::from_secs(5);
    while node.applied() < head {
        assert!(Instant::now() < deadline, "b never applied {head}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A TCP relay to PostgreSQL that can be cut (every connection dropped,
/// new ones refused) and restored: a database gone away for one node only.
struct Relay {
    addr: std::net::SocketAddr,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (c, k) = (cut.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection close
                }
                let target = target.clone();
                k.lock().push(tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Self {
            addr,
            cut,
            conns,
            accept,
        }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for task in self.conns.lock().drain(..) {
            task.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// `postgres://user@host:port/db?x` with `host:port` replaced by `addr`;
/// also answers the original `host:port`.
fn via(url: &str, addr: std::net::SocketAddr) -> (String, String) {
    let start = url.find("://").unwrap() + 3;
    let rest = &url[start..];
    let auth_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (&authority[..=i], &authority[i + 1..]),
        None => ("", authority),
    };
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    let rewritten = format!("{}{userinfo}{addr}{}", &url[..start], &rest[auth_end..]);
    (rewritten, host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_loses_its_database_answers_503_after_s_and_recovers() {
    let Some(a) = crate::helpers::spawn_app(Backend::Postgres).await else {
        return;
    };
    let url = a.args.database_url.clone().unwrap();
    let (_, target) = via(&url, "127.0.0.1:1".parse().unwrap());
    let relay = Relay::start(target).await;
    let (relayed, _) = via(&url, relay.addr);
    let s = Duration::from_millis(500);
    let b = a
        .second_node_with(|args| {
            args.database_url = Some(relayed);
            args.cluster.confirm_within_ms = Some(500);
        })
        .await
        .unwrap();
    let (_, key) = a.create_key(json!({"name": "k", "owner": "o"})).await;
    assert_eq!(b.verify_code(&key).await, "VALID");
    relay.cut();
    // Within S it may still answer from its cache; past S never VALID.
    tokio::time::sleep(s + Duration::from_millis(150)).await;
    for _ in 0..3 {
        let res = b
            .post(
                "/v1/keys/verify",
                json!({"key": key, "required_scopes": []}),
            )
            .await;
        assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.body);
        assert_eq!(res.body["code"], "storage_unavailable", "{}", res.body);
    }
    let ready = b.raw(b.http.get(format!("{}/readyz", b.base))).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    // A keeps working meanwhile.
    assert_eq!(a.verify_code(&key).await, "VALID");
    relay.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let res = b
            .post(
                "/v1/keys/verify",
                json!({"key": key, "required_scopes": []}),
            )
            .await;
        if res.status == StatusCode::OK {
            assert_eq!(res.body["code"], "VALID");
            break;
        }
        assert!(Instant::now() < deadline, "B never recovered: {}", res.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// With `[cluster] redis_url`, a key's limit is one budget across nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_two_nodes_share_one_rate_limit() {
    let Ok(redis) = std::env::var("KEYGATE_TEST_REDIS_URL") else {
        assert!(
            !crate::helpers::services_required(),
            "KEYGATE_TEST_REQUIRE_SERVICES=1 but KEYGATE_TEST_REDIS_URL is not set"
        );
        eprintln!("skipping: KEYGATE_TEST_REDIS_URL is not set");
        return;
    };
    let prefix = format!(
        "kgt-{}",
        keygate_core::keys::apikey::random_id("", 10)
            .unwrap()
            .to_ascii_lowercase()
    );
    // A loaded CI machine can take longer than the 50 ms default to answer,
    // and a node then counts locally: this test is about the shared budget,
    // not the deadline (the fault suite covers that).
    let toml = format!(
        "[cluster]\nredis_url = \"{redis}\"\nredis_prefix = \"{prefix}\"\nredis_timeout_ms = 5000\n"
    );
    let Some(a) = crate::helpers::spawn_app_with_toml(Backend::Postgres, Some(&toml), |_| {}).await
    else {
        return;
    };
    let b = a.second_node().await;
    let (_, key) = a
        .create_key(
            json!({"name": "k", "owner": "o", "rate_limit": {"limit": 3, "period_seconds": 3600}}),
        )
        .await;
    let mut codes = Vec::new();
    for node in [&a, &b, &a, &b] {
        codes.push(node.verify_code(&key).await);
    }
    assert_eq!(codes, ["VALID", "VALID", "VALID", "RATE_LIMITED"]);
    let body = until_live(&a, 2).await;
    for n in body["nodes"].as_array().unwrap() {
        assert_eq!(n["limiter"]["backend"], "redis", "{body}");
        assert_eq!(n["limiter"]["breaker"], "closed", "{body}");
    }
}

/// `stale_policy = "serve_cached"`: the opt-in keeps answering from the
/// caches past S, counted in a metric, while `/readyz` says the node is
/// not confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_cached_answers_from_the_caches_and_says_so() {
    let Some(a) = crate::helpers::spawn_app(Backend::Postgres).await else {
        return;
    };
    let url = a.args.database_url.clone().unwrap();
    let (_, target) = via(&url, "127.0.0.1:1".parse().unwrap());
    let relay = Relay::start(target).await;
    let (relayed, _) = via(&url, relay.addr);
    let b = a
        .second_node_with(|args| {
            args.database_url = Some(relayed);
            args.cluster.confirm_within_ms = Some(500);
            args.cluster.stale_policy = Some("serve_cached".into());
        })
        .await
        .unwrap();
    let (_, key) = a.create_key(json!({"name": "k", "owner": "o"})).await;
    settle(&a, &b).await;
    // Twice: a fill that raced a feed entry is not cached (the epoch rule).
    assert_eq!(b.verify_code(&key).await, "VALID");
    assert_eq!(b.verify_code(&key).await, "VALID");
    relay.cut();
    tokio::time::sleep(Duration::from_millis(650)).await;
    assert_eq!(
        b.verify_code(&key).await,
        "VALID",
        "served stale, by choice"
    );
    let ready = b.raw(b.http.get(format!("{}/readyz", b.base))).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(b.metric("keygate_stale_cache_answers_total").await >= 1.0);
}
