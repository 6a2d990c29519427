//! The admin listener behind a TLS-terminating proxy: the per-address login
//! limit counts the client the proxy names, only when the proxy is trusted;
//! otherwise every forwarding header is ignored.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, TestApp, spawn_app_with_toml};
use crate::on_both_backends;

on_both_backends!(
    spawn = crate::trusted_proxies::spawn_behind_proxy;
    a_trusted_proxy_names_the_client_of_a_login,
);

mod untrusting {
    use super::forwarding_headers_from_an_untrusted_peer_are_ignored;
    use crate::on_both_backends;

    on_both_backends!(
        spawn = crate::trusted_proxies::spawn_untrusting;
        forwarding_headers_from_an_untrusted_peer_are_ignored,
    );
}

pub async fn spawn_behind_proxy(backend: Backend) -> Option<TestApp> {
    // The tests reach keygate from 127.0.0.1, standing in for the proxy.
    spawn_app_with_toml(
        backend,
        Some("trusted_proxies = [\"127.0.0.1/32\", \"::1\"]\n"),
        |_| {},
    )
    .await
}

pub async fn spawn_untrusting(backend: Backend) -> Option<TestApp> {
    spawn_app_with_toml(backend, None, |_| {}).await
}

/// The throttle's default: 20 failures per address per 15 minutes.
const PER_ADDRESS: usize = 20;

async fn failed_login(app: &TestApp, n: usize, forwarded_for: &str) -> StatusCode {
    // A new unknown user each time: the per-user limit stays out of it.
    let res = app
        .raw(
            app.http
                .post(format!("{}/v1/auth/login", app.base))
                .header("x-forwarded-for", forwarded_for)
                .header("x-real-ip", "192.0.2.99")
                .json(&json!({"username": format!("nobody-{n}"), "password": "not the password"})),
        )
        .await;
    res.status
}

async fn a_trusted_proxy_names_the_client_of_a_login(app: TestApp) {
    for n in 0..PER_ADDRESS {
        assert_eq!(
            failed_login(&app, n, "203.0.113.1").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        failed_login(&app, 100, "203.0.113.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the same proxy is not locked out.
    assert_eq!(
        failed_login(&app, 101, "203.0.113.2").await,
        StatusCode::UNAUTHORIZED
    );
    // A client cannot pick its address by prepending one: the proxy's
    // entry (the rightmost) is the one believed.
    assert_eq!(
        failed_login(&app, 102, "203.0.113.2, 203.0.113.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn forwarding_headers_from_an_untrusted_peer_are_ignored(app: TestApp) {
    for n in 0..PER_ADDRESS {
        let forged = format!("198.51.100.{n}");
        assert_eq!(
            failed_login(&app, n, &forged).await,
            StatusCode::UNAUTHORIZED
        );
    }
    // Every attempt counted against the peer, whatever the headers said.
    assert_eq!(
        failed_login(&app, 100, "198.51.100.200").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}
