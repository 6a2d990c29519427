//! `keygate serve` and `init` exit with a code that says whose move it is
//! (sysexits.h): 78 for a configuration to fix, 69 for a dependency that
//! is down. Run through the real binary.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_keygate");

fn keygate(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("KEYGATE_DATABASE_URL")
        .env_remove("KEYGATE_PEPPER")
        .env_remove("KEYGATE_MASTER_KEY")
        .env_remove("KEYGATE_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn private_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn a_bad_configuration_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = keygate(dir.path(), &["init", "--log-format", "yaml"]);
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("log_format"), "{err}");
    std::fs::write(dir.path().join("k.toml"), "lisen = \"x\"\n").unwrap();
    let (code, err) = keygate(dir.path(), &["serve", "--config", "k.toml"]);
    assert_eq!(code, Some(78), "{err}");
    let (code, err) = keygate(
        dir.path(),
        &["init", "--database-url", "mysql://db/keygate"],
    );
    assert_eq!(code, Some(78), "{err}");
    assert!(!dir.path().join("keygate.db").exists(), "nothing ran");
}

#[test]
fn an_unreachable_database_exits_69() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    private_file(
        &d.join("pepper"),
        "a-pepper-that-is-long-enough-for-keygate-0123456789",
    );
    private_file(&d.join("master-key"), &"11".repeat(32));
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://keygate:secret-password@127.0.0.1:{port}/keygate");
    let (code, err) = keygate(
        d,
        &[
            "init",
            "--database-url",
            &url,
            "--pepper-file",
            "pepper",
            "--master-key-file",
            "master-key",
        ],
    );
    assert_eq!(code, Some(69), "{err}");
    assert!(err.contains("cannot connect to postgres"), "{err}");
    assert!(
        !err.contains("secret-password"),
        "the password is printed: {err}"
    );
}
