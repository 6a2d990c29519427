//! A private redis-server on its own port, keeping nothing on disk, so a
//! restart comes back empty (a Redis that lost its data). Stopped, paused
//! (SIGSTOP: a black hole that accepts connections and never answers) and
//! restarted by the tests; killed on drop.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::{free_port, services_required, signal};

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
            assert!(
                !services_required(),
                "KEYGATE_TEST_REQUIRE_SERVICES=1 but redis-server is not installed"
            );
            eprintln!("skipping: redis-server is not installed");
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
