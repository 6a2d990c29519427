//! TLS on the listener: HTTPS with the configured certificate, plain HTTP
//! refused on that port, and a new certificate taken up by `reload` (what
//! SIGHUP calls) without a restart. That test takes files the openssl CLI
//! made, as docs/operations/tls.md and the README tell an operator to; the
//! other suites' certificates come from keygate-test-support's `certs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use keygate_test_support::certs::{LeafSpec, self_signed};
use reqwest::StatusCode;

use crate::helpers::{Backend, services_required, spawn_app_with};

/// A self-signed server certificate for 127.0.0.1 and localhost, written
/// into `dir`: (certificate, key).
pub fn server_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    self_signed(&LeafSpec::server()).write(dir, name)
}

/// A self-signed certificate for 127.0.0.1 made by the openssl CLI.
fn openssl_self_signed(dir: &Path, name: &str) -> Option<(PathBuf, PathBuf)> {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={name}")])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        // rustls refuses a CA certificate as a server's own.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    match made {
        Ok(out) if out.status.success() => Some((cert, key)),
        _ if services_required() => panic!("openssl is needed to make test certificates"),
        _ => {
            eprintln!("skipping: the openssl CLI is not installed");
            None
        }
    }
}

pub fn client_trusting(cert: &Path) -> reqwest::Client {
    let pem = std::fs::read(cert).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_and_reloads_the_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let Some((cert, key)) = openssl_self_signed(certs.path(), "first") else {
        return;
    };
    let live_cert = certs.path().join("live.crt");
    let live_key = certs.path().join("live.key");
    std::fs::copy(&cert, &live_cert).unwrap();
    std::fs::copy(&key, &live_key).unwrap();
    let app = spawn_app_with(Backend::Sqlite, |args| {
        args.tls_cert = Some(live_cert.clone());
        args.tls_key = Some(live_key.clone());
    })
    .await
    .unwrap();
    let https = format!("https://127.0.0.1:{}/healthz", app.addr.port());
    let first = client_trusting(&cert);
    assert_eq!(
        first.get(&https).send().await.unwrap().status(),
        StatusCode::OK
    );
    // Plain HTTP on the TLS port gets no answer.
    let plain = reqwest::get(format!("http://127.0.0.1:{}/healthz", app.addr.port())).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    let (cert2, key2) = openssl_self_signed(certs.path(), "second").unwrap();
    std::fs::copy(&cert2, &live_cert).unwrap();
    std::fs::copy(&key2, &live_key).unwrap();
    app.tls.as_ref().unwrap().reload().await.unwrap();
    let second = client_trusting(&cert2);
    assert_eq!(
        second.get(&https).send().await.unwrap().status(),
        StatusCode::OK
    );
    // A fresh client that trusts only the old certificate is refused now.
    let stale = client_trusting(&cert);
    assert!(stale.get(&https).send().await.is_err());

    // A broken file is refused and the current certificate stays.
    std::fs::write(&live_cert, "not a certificate").unwrap();
    assert!(app.tls.as_ref().unwrap().reload().await.is_err());
    let again = client_trusting(&cert2);
    assert_eq!(
        again.get(&https).send().await.unwrap().status(),
        StatusCode::OK
    );

    // So is a key other users can read, with what to run.
    std::fs::copy(&cert2, &live_cert).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&live_key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = app
            .tls
            .as_ref()
            .unwrap()
            .reload()
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("chmod 600 {}", live_key.display())),
            "{err}"
        );
    }
}
