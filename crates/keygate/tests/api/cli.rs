//! The real binary: `init`, `serve`, the `keys` commands, and the proof that
//! no issued secret reaches the log output or the database file.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_keygate");

struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// Starts `keygate serve` on a free port and waits until it listens.
    fn start(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(dir)
            .env("RUST_LOG", "trace")
            .env_remove("KEYGATE_DATABASE_URL")
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("server.log")).unwrap(),
            ))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self { child, url };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "keygate serve exited: {status}: {}",
                    std::fs::read_to_string(dir.join("server.log")).unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("keygate serve did not start listening");
    }

    /// SIGTERM, then wait: a graceful shutdown exits 0.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "graceful shutdown exited {status}");
    }
}

fn cli(dir: &Path, url: &str, admin: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("keys")
        .args(args)
        .current_dir(dir)
        .env("KEYGATE_URL", url)
        .env("KEYGATE_ADMIN_KEY", admin)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_of(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn init_serve_and_the_keys_commands_never_leak_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let init = Command::new(BIN)
        .args(["init", "--json"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let root = json_of(&String::from_utf8_lossy(&init.stdout))["admin_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(root.starts_with("kg_live_"));
    assert!(d.join("keygate.db").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("keygate.db.pepper"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let server = Server::start(d);
    let mut secrets = vec![root.clone()];

    let (ok, out, err) = cli(
        d,
        &server.url,
        &root,
        &[
            "create",
            "--name",
            "ci",
            "--owner",
            "ci-bot",
            "--scope",
            "deploy",
            "--rate-limit",
            "100/60",
            "--remaining",
            "5",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let created = json_of(&out);
    let id = created["id"].as_str().unwrap().to_owned();
    let key = created["key"].as_str().unwrap().to_owned();
    secrets.push(key.clone());

    let (ok, out, _) = cli(d, &server.url, &root, &["list"]);
    assert!(ok);
    assert!(out.lines().next().unwrap().starts_with("ID"), "{out}");
    assert!(out.contains(&id) && !out.contains(&key));
    // Search and filters.
    let list = |args: &[&str]| {
        let mut all = vec!["list"];
        all.extend_from_slice(args);
        cli(d, &server.url, &root, &all)
    };
    let (ok, out, err) = list(&["--search", "CI-BOT", "--status", "active"]);
    assert!(ok && out.contains(&id), "{out}{err}");
    let (ok, out, _) = list(&["--search", "nobody-is-called-this"]);
    assert!(ok && !out.contains(&id), "{out}");
    let (ok, out, _) = list(&["--expiring-within", "7d"]);
    assert!(ok && !out.contains(&id), "no expiry: {out}");
    let (ok, _, err) = list(&["--expiring-within", "7w"]);
    assert!(!ok && err.contains("7d"), "{err}");
    let (ok, _, err) = list(&["--status", "gone"]);
    assert!(!ok && err.contains("400"), "{err}");

    let (ok, out, _) = cli(
        d,
        &server.url,
        &root,
        &["verify", &key, "--scope", "deploy"],
    );
    assert!(ok, "{out}");
    assert!(out.contains("VALID"));
    let (ok, out, _) = cli(d, &server.url, &root, &["verify", &key, "--scope", "admin"]);
    assert!(!ok, "a refused key exits non-zero");
    assert!(out.contains("INSUFFICIENT_SCOPE"));

    let (ok, out, _) = cli(
        d,
        &server.url,
        &root,
        &["update", &id, "--name", "ci2", "--unlimited"],
    );
    assert!(ok, "{out}");
    assert!(out.contains("ci2"));

    let (ok, out, _) = cli(
        d,
        &server.url,
        &root,
        &["rotate", &id, "--grace-seconds", "60", "--json"],
    );
    assert!(ok);
    let rotated = json_of(&out)["key"].as_str().unwrap().to_owned();
    secrets.push(rotated.clone());
    let (ok, out, _) = cli(d, &server.url, &root, &["show", &id]);
    assert!(ok && out.contains("ci2"));
    let (ok, _, _) = cli(d, &server.url, &root, &["revoke", &id]);
    assert!(ok);
    let (ok, out, _) = cli(d, &server.url, &root, &["verify", &rotated, "--json"]);
    assert!(!ok);
    assert_eq!(json_of(&out)["code"], "REVOKED");

    // Errors are one clear sentence.
    let (ok, _, err) = cli(d, &server.url, &root, &["show", "key_0000000000000000"]);
    assert!(!ok);
    assert!(err.contains("no such key") && err.contains("404"), "{err}");
    let (ok, _, err) = cli(d, &server.url, "kg_live_wrong", &["list"]);
    assert!(!ok);
    assert!(err.contains("401"), "{err}");
    let (ok, _, err) = cli(d, "http://127.0.0.1:9", &root, &["list"]);
    assert!(!ok);
    assert!(err.contains("cannot reach keygate"), "{err}");
    let (ok, _, err) = cli(d, &server.url, &root, &["show", "../../etc"]);
    assert!(!ok && err.contains("not a key id"), "{err}");

    // A credential in the URL is refused and not logged.
    {
        use std::io::{Read, Write};
        let mut stream =
            std::net::TcpStream::connect(server.url.trim_start_matches("http://")).unwrap();
        write!(
            stream,
            "GET /v1/keys?api_key={key} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    }

    server.stop();

    let log = std::fs::read(d.join("server.log")).unwrap();
    let mut stored = Vec::new();
    for name in ["keygate.db", "keygate.db-wal", "keygate.db-shm"] {
        if let Ok(bytes) = std::fs::read(d.join(name)) {
            stored.extend(bytes);
        }
    }
    assert!(!log.is_empty(), "the server logged at trace level");
    // A log file or journald is not a terminal: no colour escape sequences.
    assert!(!contains(&log, b"\x1b["), "ANSI escape codes in a log file");
    // The server's own secrets: the pepper and the master key, in their
    // text form and as the raw bytes of the master key.
    for file in ["keygate.db.pepper", "keygate.db.master-key"] {
        let text = std::fs::read_to_string(d.join(file)).unwrap();
        let text = text.trim();
        assert!(!contains(&log, text.as_bytes()), "{file} in the log");
        assert!(
            !contains(&stored, text.as_bytes()),
            "{file} in the database"
        );
    }
    {
        use base64::Engine as _;
        let text = std::fs::read_to_string(d.join("keygate.db.master-key")).unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .unwrap();
        assert!(!contains(&stored, &raw), "raw master key in the database");
    }
    for secret in &secrets {
        let sha = Sha256::digest(secret.as_bytes());
        let sha_hex = hex::encode(sha);
        for (what, haystack) in [("log", &log), ("database", &stored)] {
            assert!(
                !contains(haystack, secret.as_bytes()),
                "secret found in {what}"
            );
            assert!(
                !contains(haystack, sha.as_slice()),
                "raw SHA-256 of a secret found in {what}"
            );
            assert!(
                !contains(haystack, sha_hex.as_bytes()),
                "hex SHA-256 of a secret found in {what}"
            );
            // The part after the display prefix is the secret proper.
            assert!(
                !contains(haystack, &secret.as_bytes()[12..]),
                "secret body found in {what}"
            );
        }
    }
    // serve printed no secret at all: init had already made the root key.
    let log_text = String::from_utf8_lossy(&log);
    assert!(!log_text.contains("will not be shown again"));
    assert!(
        !log_text.contains("kg_live_"),
        "a key-shaped string in the log"
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn first_serve_prints_the_root_key_once_and_postgres_needs_a_pepper() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(d);
    server.stop();
    let log = std::fs::read_to_string(d.join("server.log")).unwrap();
    assert!(log.contains("will not be shown again"), "{log}");
    let root_line = log
        .lines()
        .find(|l| l.trim_start().starts_with("kg_live_"))
        .expect("root key printed");
    assert!(keygate_core::ApiKey::parse(root_line.trim()).is_ok());
    // Second start: nothing secret.
    let server = Server::start(d);
    server.stop();
    let log = std::fs::read_to_string(d.join("server.log")).unwrap();
    assert!(!log.contains("kg_live_"), "{log}");

    let out = Command::new(BIN)
        .args(["serve", "--database-url", "postgres://127.0.0.1:1/none"])
        .env_remove("KEYGATE_PEPPER")
        .env_remove("KEYGATE_PEPPER_FILE")
        .current_dir(d)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("KEYGATE_PEPPER_FILE"), "{err}");
}

#[test]
fn a_lost_or_wrong_pepper_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let init = Command::new(BIN)
        .args(["init", "--json"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(init.status.success());
    let pepper = d.join("keygate.db.pepper");
    let saved = std::fs::read(&pepper).unwrap();

    std::fs::remove_file(&pepper).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pepper file") && err.contains("missing"),
        "{err}"
    );
    assert!(
        !pepper.exists(),
        "no new pepper was generated for a database with keys"
    );

    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "KEYGATE_PEPPER",
            "a-different-pepper-that-is-long-enough-0123456789",
        )
        .current_dir(d)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not the one this database was set up with"),
        "{err}"
    );

    // The original pepper brings it back.
    crate::helpers::write_private(&pepper, saved);
    Server::start(d).stop();
}

#[test]
fn a_lost_or_wrong_master_key_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let init = Command::new(BIN)
        .args(["init", "--json"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(init.status.success());
    let master = d.join("keygate.db.master-key");
    let saved = std::fs::read(&master).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&master).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    std::fs::remove_file(&master).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("master key file") && err.contains("missing"),
        "{err}"
    );
    assert!(
        !master.exists(),
        "no new master key for a database with signing keys"
    );

    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KEYGATE_MASTER_KEY", "11".repeat(32))
        .current_dir(d)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("master key is not the one"), "{err}");
    assert!(!err.contains(&"11".repeat(32)), "the key is never echoed");

    crate::helpers::write_private(&master, saved);
    Server::start(d).stop();
}

#[test]
fn flags_beat_environment_beats_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (file_port, env_port, flag_port) = (free(), free(), free());
    std::fs::write(
        d.join("keygate.toml"),
        format!("listen = \"127.0.0.1:{file_port}\"\n"),
    )
    .unwrap();
    let listens_on = |args: &[&str], env: Option<u16>| {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--config", "keygate.toml"])
            .args(args)
            .current_dir(d);
        cmd.env_remove("KEYGATE_LISTEN")
            .stderr(Stdio::null())
            .stdout(Stdio::null());
        if let Some(p) = env {
            cmd.env("KEYGATE_LISTEN", format!("127.0.0.1:{p}"));
        }
        let mut child = cmd.spawn().unwrap();
        let mut found = None;
        for _ in 0..200 {
            found = [file_port, env_port, flag_port]
                .into_iter()
                .find(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok());
            if found.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
        found
    };
    assert_eq!(listens_on(&[], None), Some(file_port));
    assert_eq!(listens_on(&[], Some(env_port)), Some(env_port));
    let flag = format!("127.0.0.1:{flag_port}");
    assert_eq!(
        listens_on(&["--listen", &flag], Some(env_port)),
        Some(flag_port)
    );
}
