//! Redis for tests: a key prefix of its own on the shared test Redis
//! (`KEYGATE_TEST_REDIS_URL`), and a private `redis-server` to break.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{Signal, free_port, random_hex, signal, skip_unless_required};

/// The shared test Redis: `KEYGATE_TEST_REDIS_URL`, or the local default.
pub fn redis_url() -> String {
    std::env::var("KEYGATE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix no other test (or run) uses, on the shared test Redis;
/// every key under it is deleted when this drops, panic or not.
pub struct TestPrefix {
    pub url: String,
    pub prefix: String,
}

/// Generous: a loaded CI machine is not what these tests measure.
const TIMEOUT: Duration = Duration::from_secs(2);

impl TestPrefix {
    /// None (after saying why) when the shared Redis does not answer; a
    /// failure instead when services are required.
    pub fn claim(name: &str) -> Option<Self> {
        static N: AtomicU64 = AtomicU64::new(0);
        let url = redis_url();
        let answers = connect(&url).is_some_and(|mut c| {
            redis::cmd("PING")
                .query::<String>(&mut c)
                .is_ok_and(|p| p == "PONG")
        });
        if !answers {
            skip_unless_required(&format!("Redis at {url} does not answer"));
            return None;
        }
        let prefix = format!(
            "kgtest:{name}:{}:{}:{}",
            std::process::id(),
            random_hex(4),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Some(Self { url, prefix })
    }
}

fn connect(url: &str) -> Option<redis::Connection> {
    let client = redis::Client::open(url).ok()?;
    let conn = client.get_connection_with_timeout(TIMEOUT).ok()?;
    conn.set_read_timeout(Some(TIMEOUT)).ok()?;
    conn.set_write_timeout(Some(TIMEOUT)).ok()?;
    Some(conn)
}

impl Drop for TestPrefix {
    fn drop(&mut self) {
        // Some keys never expire (the nonce epoch): delete them all.
        let Some(mut c) = connect(&self.url) else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query(&mut c)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<i64, _> = redis::cmd("DEL").arg(&keys).query(&mut c);
        }
    }
}

/// A private redis-server on its own port, keeping nothing on disk, so a
/// restart comes back empty (a Redis that lost its data). Stopped, paused
/// (SIGSTOP: a black hole that accepts connections and never answers) and
/// restarted by the tests; killed on drop.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
    paused: bool,
}

impl PrivateRedis {
    /// None (after saying why) when redis-server is missing, a failure when
    /// services are required.
    pub fn start() -> Option<Self> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            skip_unless_required("redis-server is not installed");
            return None;
        }
        let mut redis = Self {
            port: free_port(),
            child: None,
            paused: false,
        };
        redis.start_again();
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (empty) on the same port.
    pub fn start_again(&mut self) {
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        assert!(
            self.wait_ready(Duration::from_secs(10)),
            "redis-server did not answer PING on port {port}"
        );
    }

    /// Whether PING is answered within `wait`.
    pub fn wait_ready(&self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if self.ping() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").is_ok()
            && s.read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }

    /// SIGTERM and wait: connections are refused until `start_again`.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.paused {
                signal(child.id(), Signal::CONT);
                self.paused = false;
            }
            signal(child.id(), Signal::TERM);
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the port stays open, nothing answers.
    pub fn pause(&mut self) {
        if let Some(child) = &self.child {
            signal(child.id(), Signal::STOP);
            self.paused = true;
        }
    }

    pub fn resume(&mut self) {
        if let Some(child) = &self.child {
            signal(child.id(), Signal::CONT);
            self.paused = false;
        }
    }

    /// Stopped and started again: every key is gone and the run_id changed.
    pub fn restart_empty(&mut self) {
        self.stop();
        self.start_again();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
