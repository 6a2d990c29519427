//! The files keygate writes and the secrets it reads, through the real
//! binary: everything it creates is private to its user, a secret file
//! others can read is refused, and no secret is taken from the command line
//! (where `ps` shows it to every user of the machine).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_keygate");

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `keygate ARGS` under the permissive umask most shells have, so a file
/// created with default permissions would be readable by everyone.
fn keygate(dir: &Path) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "umask 022 && exec \"$0\" \"$@\"", BIN])
        .current_dir(dir)
        .env_remove("KEYGATE_DATABASE_URL")
        .env_remove("KEYGATE_PEPPER")
        .env_remove("KEYGATE_PEPPER_FILE")
        .env_remove("KEYGATE_MASTER_KEY")
        .env_remove("KEYGATE_MASTER_KEY_FILE")
        .env_remove("KEYGATE_CONFIG");
    cmd
}

fn run(cmd: &mut Command) -> (bool, String) {
    let Output { status, stderr, .. } = cmd.output().unwrap();
    (
        status.success(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn every_file_a_running_server_writes_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let mut child = keygate(d)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut listening = false;
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            listening = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Read while it runs: SQLite removes -wal and -shm at a clean close.
    let mut files: Vec<(String, u32)> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                mode(&e.path()),
            )
        })
        .collect();
    files.sort();
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening, "keygate serve did not start");
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "keygate.db",
        "keygate.db-shm",
        "keygate.db-wal",
        "keygate.db.master-key",
        "keygate.db.pepper",
    ] {
        assert!(names.contains(&expected), "{files:?}");
    }
    for (name, mode) in &files {
        assert_eq!(mode & 0o077, 0, "{name} is {mode:o}: {files:?}");
    }
}

#[test]
fn an_existing_world_readable_database_is_made_private() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, err) = run(keygate(d).args(["init", "--json"]));
    assert!(ok, "{err}");
    let db = d.join("keygate.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, err) = run(keygate(d).args(["init", "--json"]));
    assert!(ok, "{err}");
    assert_eq!(mode(&db), 0o600);
}

#[test]
fn secrets_are_not_taken_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let secret = "a-pepper-that-is-long-enough-for-keygate-0123456789";
    for args in [
        &["init", "--pepper", secret][..],
        &["init", "--master-key", secret],
        &["keys", "list", "--admin-key", secret],
    ] {
        let (ok, err) = run(keygate(d).args(args));
        assert!(!ok, "{} was accepted", args[args.len() - 2]);
        assert!(err.contains("unexpected argument"), "{err}");
        assert!(!err.contains(secret), "the secret is echoed: {err}");
    }
    assert!(!d.join("keygate.db").exists(), "nothing ran");
}

#[test]
fn secret_files_others_can_read_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Each case in a directory (a database) of its own.
    let case = |name: &str| {
        let path = d.join(name);
        std::fs::create_dir(&path).unwrap();
        path
    };
    let pepper = d.join("pepper");
    std::fs::write(
        &pepper,
        "a-pepper-that-is-long-enough-for-keygate-0123456789",
    )
    .unwrap();
    let master = d.join("master-key");
    std::fs::write(&master, "11".repeat(32)).unwrap();
    for (var, file) in [
        ("KEYGATE_PEPPER_FILE", &pepper),
        ("KEYGATE_MASTER_KEY_FILE", &master),
    ] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let (ok, err) = run(keygate(&case(var)).args(["init", "--json"]).env(var, file));
        assert!(!ok, "{var} readable by its group was accepted");
        assert!(
            err.contains(&format!("chmod 600 {}", file.display())),
            "{err}"
        );
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // A config file holding a secret value is a secret file too.
    let d = &case("config");
    let config = d.join("keygate.toml");
    std::fs::write(
        &config,
        "pepper = \"a-pepper-that-is-long-enough-for-keygate-0123456789\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, err) = run(keygate(d).args(["init", "--config", "keygate.toml"]));
    assert!(
        !ok,
        "a world-readable config file with a pepper was accepted"
    );
    assert!(err.contains("chmod 600 keygate.toml"), "{err}");
    // Private files work.
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (ok, err) = run(keygate(d)
        .args(["init", "--json", "--config", "keygate.toml"])
        .env("KEYGATE_MASTER_KEY_FILE", &master));
    assert!(ok, "{err}");
}
