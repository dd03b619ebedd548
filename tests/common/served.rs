//! The built binary as an operator runs it: a `cograph serve` process on
//! 127.0.0.1:0 over a fresh data directory, MCP clients of it over HTTP
//! (with and without a protocol session), and one-shot CLI commands
//! against its data directory.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::ProtocolVersion;
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::StreamableHttpClientTransport;

use super::{Client, EXE, Recorder, wait_for_hub};

/// A `cograph serve` process, killed when dropped.
pub struct Served {
    child: Child,
    pub dir: tempfile::TempDir,
    pub addr: String,
}

impl Served {
    /// Starts `cograph serve` with `extra` flags and waits for its hub.json.
    pub fn start(extra: &[&str]) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(EXE)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path())
            .args(extra)
            .env("COGRAPH_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = wait_for_hub(dir.path(), child.id()).http;
        Served { child, dir, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    pub fn data(&self) -> &Path {
        self.dir.path()
    }

    /// A client with a protocol session (initialize).
    pub async fn session_client(&self) -> Client {
        Recorder::default()
            .serve(StreamableHttpClientTransport::from_uri(self.url()))
            .await
            .unwrap()
    }

    /// A client without a protocol session (2026-07-28).
    pub async fn stateless_client(&self) -> Client {
        Recorder::default()
            .serve_with_lifecycle(
                StreamableHttpClientTransport::from_uri(self.url()),
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                },
            )
            .await
            .unwrap()
    }

    /// Runs `cograph ARGS --data DIR` to its end.
    pub fn cli(&self, args: &[&str]) -> CliRun {
        cli(args, self.data())
    }

    /// Runs `cograph ARGS --data DIR` to its end as the shell agent whose
    /// handle is `agent` (`COGRAPH_AGENT`).
    pub fn cli_as(&self, agent: &str, args: &[&str]) -> CliRun {
        finish(self.spawn_as(agent, args), Duration::from_secs(60))
    }

    /// Starts `cograph ARGS --data DIR` as the shell agent `agent`, for a
    /// command that waits; `finish` collects it.
    pub fn spawn_as(&self, agent: &str, args: &[&str]) -> Child {
        self.spawn_with(args, Some(agent))
    }

    /// Starts `cograph ARGS --data DIR`, as nobody's agent, with its
    /// output piped.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.spawn_with(args, None)
    }

    fn spawn_with(&self, args: &[&str], agent: Option<&str>) -> Child {
        let mut command = command(args, self.data());
        if let Some(agent) = agent {
            command.env("COGRAPH_AGENT", agent);
        }
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Kills the hub with SIGKILL and waits for it, leaving what a crashed
    /// hub leaves: hub.json and its sockets, with nobody answering.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a one-shot CLI command did.
#[derive(Debug)]
pub struct CliRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// `cograph ARGS --data DIR`, quiet, as nobody's agent.
fn command(args: &[&str], data: &Path) -> Command {
    let mut command = Command::new(EXE);
    command
        .args(args)
        .arg("--data")
        .arg(data)
        .env("COGRAPH_LOG", "warn")
        .env_remove("COGRAPH_AGENT");
    command
}

/// Runs `cograph ARGS --data DIR` to its end.
pub fn cli(args: &[&str], data: &Path) -> CliRun {
    run(command(args, data).output().unwrap())
}

fn run(out: std::process::Output) -> CliRun {
    CliRun {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Waits for a spawned command to end, at most `within` (then kills it
/// and fails the test), and returns what it did.
pub fn finish(mut child: Child, within: Duration) -> CliRun {
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a cograph command ran longer than {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    run(child.wait_with_output().unwrap())
}
