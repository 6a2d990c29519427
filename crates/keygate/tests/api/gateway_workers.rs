//! The gateway on worker runtimes (`[gateway] workers`): a key the cache
//! has not seen is read from storage, and its credit taken, from a
//! request served on a worker, on many connections at once.

use reqwest::StatusCode;
use serde_json::json;

use crate::gateway::assert_problem;
use crate::gateway_upstream::{Gw, routes_toml, spawn_upstream};
use crate::helpers::{Backend, spawn_app_with_toml};
use crate::on_both_backends;

on_both_backends!(
    spawn = super::spawn_on_workers;
    keys_not_yet_cached_are_verified_on_the_workers,
);

async fn spawn_on_workers(backend: Backend) -> Option<Gw> {
    let upstream = spawn_upstream().await;
    let toml = routes_toml(upstream.addr).replacen("[gateway]\n", "[gateway]\nworkers = 2\n", 1);
    let app = spawn_app_with_toml(backend, Some(&toml), |_| {}).await?;
    let url = format!("http://{}", app.gateway_addr.unwrap());
    Some(Gw { app, upstream, url })
}

/// A client that opens a new connection for every request, so requests
/// land on every worker in turn.
fn one_shot() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

async fn keys_not_yet_cached_are_verified_on_the_workers(gw: Gw) {
    let http = one_shot();
    let url = format!("{}/keys/1", gw.url);
    // Eight keys no request has presented yet, verified at once.
    let mut keys = Vec::new();
    for _ in 0..8 {
        keys.push(gw.key(&["orders:read"]).await.1);
    }
    let asks: Vec<_> = keys
        .iter()
        .map(|key| {
            let req = http.get(&url).header("x-api-key", key);
            tokio::spawn(async move { req.send().await.unwrap().status() })
        })
        .collect();
    for ask in asks {
        assert_eq!(ask.await.unwrap(), StatusCode::OK);
    }
    // A metered key: each request takes a credit from storage.
    let (id, metered) = gw
        .app
        .create_key(json!({ "name": "m", "owner": "o", "scopes": ["orders:read"], "remaining": 2 }))
        .await;
    for _ in 0..2 {
        let res = gw
            .app
            .raw(http.get(&url).header("x-api-key", &metered))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    }
    let res = gw
        .app
        .raw(http.get(&url).header("x-api-key", &metered))
        .await;
    assert_ne!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(
        gw.app.get(&format!("/v1/keys/{id}")).await.body["remaining"],
        0
    );
    // A change drops the cached key: the next request reads it again.
    let (id, key) = gw.key(&[]).await;
    let res = gw.app.raw(http.get(&url).header("x-api-key", &key)).await;
    assert_problem(&res, StatusCode::FORBIDDEN, "insufficient_scope");
    let patched = gw
        .app
        .patch(
            &format!("/v1/keys/{id}"),
            json!({ "scopes": ["orders:read"] }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let res = gw.app.raw(http.get(&url).header("x-api-key", &key)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
}
