//! The real binary as a gateway: `serve` starts the gateway listener from
//! the config file, SIGHUP reloads the routes, and the access log names the
//! route and key id but never a credential or a token.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::gateway_upstream::{closed_port, spawn_upstream};

const BIN: &str = env!("CARGO_BIN_EXE_keygate");

fn config(admin: u16, gateway: u16, upstream: &str, extra_route: bool) -> String {
    let mut t = format!(
        "listen = \"127.0.0.1:{admin}\"\n[gateway]\nlisten = \"127.0.0.1:{gateway}\"\n\
         [[gateway.routes]]\nname = \"keys\"\nmatch = {{ path_prefix = \"/keys\" }}\n\
         upstream = \"http://{upstream}\"\nauth = \"api_key\"\n"
    );
    if extra_route {
        t += &format!(
            "[[gateway.routes]]\nname = \"added\"\nmatch = {{ path_prefix = \"/added\" }}\n\
             upstream = \"http://{upstream}\"\nauth = \"none\"\n"
        );
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_gateway_reloads_on_sighup_and_logs_no_secret() {
    let upstream = spawn_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (admin, gateway) = (closed_port(), closed_port());
    let path = d.join("keygate.toml");
    let up = upstream.addr.to_string();
    std::fs::write(&path, config(admin, gateway, &up, false)).unwrap();
    let init = Command::new(BIN)
        .args(["init", "--json", "--config"])
        .arg(&path)
        .current_dir(d)
        .env_remove("KEYGATE_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let root: serde_json::Value = serde_json::from_slice(&init.stdout).unwrap();
    let root = root["admin_key"].as_str().unwrap().to_owned();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .current_dir(d)
        .env("RUST_LOG", "trace")
        .env_remove("KEYGATE_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(d.join("server.log")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let mut up_and_running = false;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", gateway)).is_ok()
            && std::net::TcpStream::connect(("127.0.0.1", admin)).is_ok()
        {
            up_and_running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let http = reqwest::Client::new();
    let result = async {
        assert!(up_and_running, "serve did not open both listeners");
        let created: serde_json::Value = http
            .post(format!("http://127.0.0.1:{admin}/v1/keys"))
            .bearer_auth(&root)
            .json(&json!({ "name": "gw", "owner": "o" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = created["key"].as_str().unwrap().to_owned();
        let key_id = created["id"].as_str().unwrap().to_owned();
        let res = http
            .get(format!("http://127.0.0.1:{gateway}/keys/1?q=private-query"))
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let seen: serde_json::Value = res.json().await.unwrap();
        let token = seen["headers"]["authorization"]
            .as_str()
            .unwrap()
            .to_owned();
        let refused = http
            .get(format!("http://127.0.0.1:{gateway}/keys/1"))
            .header("x-api-key", format!("{key}x"))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);

        std::fs::write(&path, config(admin, gateway, &up, true)).unwrap();
        let status = Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut reloaded = false;
        for _ in 0..100 {
            let res = http
                .get(format!("http://127.0.0.1:{gateway}/added"))
                .send()
                .await
                .unwrap();
            if res.status() == 200 {
                reloaded = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(reloaded, "SIGHUP did not add the route");
        (key, key_id, token)
    }
    .await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exited {exit}");
    let (key, key_id, token) = result;
    let log = strip_ansi(&std::fs::read_to_string(d.join("server.log")).unwrap());
    let access: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("keygate::access"))
        .collect();
    assert!(access.len() >= 3, "{log}");
    assert!(
        access
            .iter()
            .any(|l| l.contains("route=keys") && l.contains(&key_id) && l.contains("status=200")),
        "{log}"
    );
    assert!(access.iter().any(|l| l.contains("status=401")), "{log}");
    let bearer = token.strip_prefix("Bearer ").unwrap();
    for secret in [key.as_str(), bearer, root.as_str(), "private-query"] {
        assert!(!log.contains(secret), "a secret or query reached the log");
    }
    assert!(log.contains("gateway routes reloaded"), "{log}");
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
