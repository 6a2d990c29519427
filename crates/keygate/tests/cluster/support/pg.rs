//! A private PostgreSQL: its own data directory, port and socket directory,
//! started with `pg_ctl` (as the `postgres` user when we are root, since
//! PostgreSQL refuses to run as root) and stopped immediately on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{free_port, services_required};

pub struct PrivatePg {
    pub port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
    run_as_postgres: bool,
    running: bool,
}

/// The newest installed server's bin directory.
fn find_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("KEYGATE_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The postgres user's uid and gid, from `id`.
fn postgres_ids() -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .map_err(|e| e.to_string())?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| "no postgres user".to_owned())
    };
    Ok((id("-u")?, id("-g")?))
}

impl PrivatePg {
    /// Initializes and starts one; None (after saying why) when PostgreSQL's
    /// server programs are not installed, a failure when services are required.
    pub fn start() -> Option<Self> {
        let Some(bin) = find_bin() else {
            assert!(
                !services_required(),
                "KEYGATE_TEST_REQUIRE_SERVICES=1 but no PostgreSQL server (initdb) is installed"
            );
            eprintln!("skipping: no PostgreSQL server programs under /usr/lib/postgresql");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let run_as_postgres = is_root();
        if run_as_postgres {
            let (uid, gid) = postgres_ids().expect("root, but no postgres user to run the server");
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
        }
        let mut pg = Self {
            port: free_port(),
            bin,
            dir,
            run_as_postgres,
            running: false,
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )
        .expect("initdb");
        pg.start_again();
        Some(pg)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("pg.log")
    }

    /// Runs one of the server programs, as postgres when we are root.
    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bin.join(program);
        let mut cmd = if self.run_as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Starts the stopped server on the same port and data.
    pub fn start_again(&mut self) {
        let opts = format!(
            // fsync off: the tests crash processes, never the machine, so
            // committed data is still in the page cache after an immediate
            // stop; the data directory is thrown away anyway.
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            path_str(self.dir.path())
        );
        let (data, log) = (self.data(), self.log_path());
        let started = self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-w",
                "-t",
                "30",
                "-o",
                &opts,
                "start",
            ],
        );
        if let Err(e) = started {
            panic!("{e}\n{}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        self.running = true;
    }

    /// `pg_ctl stop -m fast|immediate`.
    pub fn stop(&mut self, mode: &str) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &["-D", path_str(&data), "-m", mode, "-w", "-t", "30", "stop"],
        )
        .expect("pg_ctl stop");
        self.running = false;
    }

    /// `pg_ctl restart -m fast|immediate` (the same options as the start).
    pub fn restart(&mut self, mode: &str) {
        let (data, log) = (self.data(), self.log_path());
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-m",
                mode,
                "-w",
                "-t",
                "30",
                "restart",
            ],
        )
        .expect("pg_ctl restart");
        self.running = true;
    }

    /// Whether it accepts connections (bounded by `wait`).
    pub fn wait_ready(&self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// A connection for the test's own queries (the truth the assertions read).
    pub async fn connect(&self) -> sqlx::PgConnection {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&self.url())
            .await
            .expect("connect to the private PostgreSQL")
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        if self.running {
            let data = self.data();
            let _ = self.run(
                "pg_ctl",
                &[
                    "-D",
                    path_str(&data),
                    "-m",
                    "immediate",
                    "-w",
                    "-t",
                    "10",
                    "stop",
                ],
            );
        }
    }
}
