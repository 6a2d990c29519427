//! One keygate process (`keygate serve`, the binary cargo built for this
//! test target) on 127.0.0.1:0; its address comes from its own JSON log
//! line "keygate listening". Killed on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::{BOUND, signal};

const BIN: &str = env!("CARGO_BIN_EXE_keygate");

/// What a node is started with; `config` is the whole TOML file.
#[derive(Clone)]
pub struct NodeSpec {
    pub id: String,
    pub config: String,
    pub redis_url: Option<String>,
}

pub struct Node {
    pub spec: NodeSpec,
    pub addr: SocketAddr,
    pub base: String,
    dir: PathBuf,
    child: Option<Child>,
    starts: u32,
}

/// A `keygate` command with none of the caller's KEYGATE_* settings, so the
/// test's files are the whole configuration.
pub fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("KEYGATE_") {
            cmd.env_remove(name);
        }
    }
    cmd.current_dir(dir);
    cmd
}

impl Node {
    pub fn start(spec: NodeSpec, dir: &Path) -> Result<Self, String> {
        let mut node = Self {
            spec,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            base: String::new(),
            dir: dir.to_path_buf(),
            child: None,
            starts: 0,
        };
        node.start_again()?;
        Ok(node)
    }

    fn log_path(&self) -> PathBuf {
        self.dir
            .join(format!("{}-{}.log", self.spec.id, self.starts))
    }

    /// Starts the (stopped or killed) node again, on a new port.
    pub fn start_again(&mut self) -> Result<(), String> {
        self.kill();
        self.starts += 1;
        let config = self.dir.join(format!("{}.toml", self.spec.id));
        std::fs::write(&config, &self.spec.config).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(self.log_path()).map_err(|e| e.to_string())?;
        let mut cmd = command(&self.dir);
        cmd.args(["serve", "--config"])
            .arg(&config)
            .env("KEYGATE_NODE_ID", &self.spec.id)
            .env("RUST_LOG", "info,sqlx=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        if let Some(url) = &self.spec.redis_url {
            cmd.env("KEYGATE_REDIS_URL", url);
        }
        self.child = Some(cmd.spawn().map_err(|e| format!("spawn keygate: {e}"))?);
        self.addr = self.wait_listening()?;
        self.base = format!("http://{}", self.addr);
        Ok(())
    }

    /// Reads the log until the server says where it listens (or exits).
    fn wait_listening(&mut self) -> Result<SocketAddr, String> {
        let until = Instant::now() + BOUND;
        while Instant::now() < until {
            let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
            if let Some(addr) = text.lines().find_map(listening_addr) {
                return Ok(addr);
            }
            let exited = self
                .child
                .as_mut()
                .map(|c| c.try_wait().ok().flatten().is_some())
                .unwrap_or(true);
            if exited {
                return Err(format!("{} exited at start:\n{text}", self.spec.id));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("{} did not start within {BOUND:?}", self.spec.id))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL and reap: nothing of it runs afterwards.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM (graceful) and wait, at most BOUND, then SIGKILL.
    pub fn stop(&mut self) {
        if let Some(pid) = self.pid() {
            signal(pid, Signal::TERM);
            let until = Instant::now() + BOUND;
            while Instant::now() < until {
                if let Some(c) = self.child.as_mut()
                    && c.try_wait().ok().flatten().is_some()
                {
                    self.child = None;
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.kill();
    }

    /// Everything the node logged since its last start (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

/// The address in a JSON log line `{"fields":{"message":"keygate listening","addr":...}}`.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = v.get("fields")?;
    if fields.get("message")?.as_str()? != "keygate listening" {
        return None;
    }
    fields.get("addr")?.as_str()?.parse().ok()
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}
