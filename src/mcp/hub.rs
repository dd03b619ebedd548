//! The shared hub and the stdio bridge (DESIGN.md section 7).
//!
//! Every `cograph serve` is a hub for its data directory: besides HTTP it
//! listens on a unix socket, `DIR/hub.sock`, where each connection is one
//! MCP session speaking newline-delimited JSON-RPC, exactly like stdio.
//! `DIR/hub.json` says where the hub listens. Only one process can own a
//! data directory (the store's file lock), so there is one hub per
//! directory.
//!
//! `cograph stdio` connects to the hub's socket (starting a hub in the
//! background if none answers) and copies bytes between its stdin/stdout
//! and the socket. The bridge knows nothing of MCP: when its stdin closes
//! it closes the socket, the hub sees end-of-file, and that session's agent
//! ends with its locks. A unix socket rather than HTTP keeps these stdio
//! semantics exact (one connection, one agent, EOF ends it) without a
//! protocol session that could outlive the process.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use rmcp::ServiceExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use super::lines::LineTransport;
use super::server::CographServer;
use crate::locks::Transport;
use crate::service::Hub;
use crate::store::private;

pub const SOCKET_FILE: &str = "hub.sock";
pub const INFO_FILE: &str = "hub.json";
pub const LOG_FILE: &str = "hub.log";

/// Where a running hub listens; written to `DIR/hub.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HubInfo {
    pub pid: u32,
    pub socket: PathBuf,
    /// `127.0.0.1:port` of its HTTP listener.
    pub http: String,
    pub version: String,
}

impl HubInfo {
    pub fn read(dir: &Path) -> Option<HubInfo> {
        let text = std::fs::read_to_string(dir.join(INFO_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes the file atomically (temp file, then rename), 0600.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!("{INFO_FILE}.{}", self.pid));
        std::io::Write::write_all(
            &mut private::create(&tmp)?,
            &serde_json::to_vec_pretty(self).expect("serialises"),
        )?;
        std::fs::rename(tmp, dir.join(INFO_FILE))
    }
}

/// Counts the hub's live socket sessions.
#[derive(Default)]
pub struct Connections(AtomicUsize);

impl Connections {
    pub fn live(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Binds the hub's socket in `dir`. The caller owns the store (and so the
/// directory), so a socket file left by a dead hub can be removed.
pub fn bind_socket(dir: &Path) -> anyhow::Result<UnixListener> {
    let path = dir.join(SOCKET_FILE);
    if path.as_os_str().len() > 100 {
        bail!(
            "the data directory path is too long for a unix socket ({} bytes; at most about 100): use a shorter --data path",
            path.as_os_str().len()
        );
    }
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    private::restrict(&path).with_context(|| format!("cannot restrict {}", path.display()))?;
    Ok(listener)
}

/// Serves MCP sessions on the hub's socket until `shutdown` fires.
pub async fn serve_socket(
    hub: Arc<Hub>,
    listener: UnixListener,
    connections: Arc<Connections>,
    shutdown: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a hub connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let hub = hub.clone();
        let connections = connections.clone();
        let ct = shutdown.child_token();
        connections.0.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let server =
                CographServer::for_connection(hub.clone(), Transport::Stdio, "stdio agent");
            let (read, write) = stream.into_split();
            // End-of-file ends the agent at once: rmcp lets in-flight calls
            // run for a few seconds before it drops the handler, and a
            // waiting acquire must not keep its queue place or be granted
            // in that time.
            let agent = server.bound_agent();
            let read = EndOnEof {
                inner: read,
                on_eof: agent.map(|agent| {
                    Box::new(move || hub.end_agent(agent)) as Box<dyn FnOnce() + Send>
                }),
            };
            match server
                .serve_with_ct(LineTransport::new(read, write), ct)
                .await
            {
                Ok(running) => {
                    let _ = running.waiting().await;
                }
                Err(e) => tracing::debug!(error = %e, "a hub session ended before it started"),
            }
            connections.0.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// A reader that runs `on_eof` once, when its peer closes.
struct EndOnEof<R> {
    inner: R,
    on_eof: Option<Box<dyn FnOnce() + Send>>,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for EndOnEof<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let wanted = buf.remaining() > 0;
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let closed = match &poll {
            std::task::Poll::Ready(Ok(())) => wanted && buf.filled().len() == before,
            std::task::Poll::Ready(Err(_)) => true,
            std::task::Poll::Pending => false,
        };
        if closed && let Some(on_eof) = self.on_eof.take() {
            on_eof();
        }
        poll
    }
}

/// Serves one agent on this process's stdin/stdout until stdin closes
/// (`cograph stdio --standalone`).
pub async fn serve_stdio(hub: Arc<Hub>) -> anyhow::Result<()> {
    let server = CographServer::for_connection(hub, Transport::Stdio, "stdio agent");
    let running = server
        .serve(LineTransport::new(tokio::io::stdin(), tokio::io::stdout()))
        .await
        .context("the MCP session did not start")?;
    let _ = running.waiting().await;
    Ok(())
}

/// Connects to the hub for `dir`, starting one in the background if none
/// answers (on the PostgreSQL store `store` names, if given; the URL goes
/// through the environment, out of the process list).
pub async fn connect_or_start(dir: &Path, store: Option<&str>) -> anyhow::Result<UnixStream> {
    let socket = dir.join(SOCKET_FILE);
    if let Ok(stream) = UnixStream::connect(&socket).await {
        return Ok(stream);
    }
    let exe = std::env::current_exe().context("cannot find the cograph executable")?;
    let log = private::open_append(&dir.join(LOG_FILE))
        .with_context(|| format!("cannot open {}", dir.join(LOG_FILE).display()))?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("serve")
        .arg("--data")
        .arg(dir)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--idle-exit")
        .arg("30")
        .envs(store.map(|url| (crate::store::STORE_ENV, url)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log);
    // Its own process group, so the terminal's Ctrl-C for the agent that
    // started it does not stop the hub other agents use.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn().context("cannot start a hub")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(stream) = UnixStream::connect(&socket).await {
            report_start(dir, &mut child).await;
            // Reap the child later without blocking: it runs on its own.
            std::thread::spawn(move || child.wait());
            return Ok(stream);
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Another bridge may have started the hub that won the race.
            if let Ok(stream) = UnixStream::connect(&socket).await {
                return Ok(stream);
            }
            if !status.success() {
                let tail = std::fs::read_to_string(dir.join(LOG_FILE)).unwrap_or_default();
                let last: Vec<&str> = tail.lines().rev().take(5).collect();
                let in_use = last.iter().any(|l| l.contains("in use"));
                if !in_use {
                    bail!(
                        "the hub exited with {status}; its log ({}) ends with:\n{}",
                        dir.join(LOG_FILE).display(),
                        last.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                }
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "no hub answered on {} within 20 s; see {}",
                socket.display(),
                dir.join(LOG_FILE).display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Says "started a hub" only if the hub that answered is `child`: when
/// several bridges start at once, each spawns a hub, one wins the store's
/// lock and the others exit. The winner's pid appears in `hub.json` just
/// after its socket answers; a loser exits. Bounded: after 5 s without
/// either, it says nothing.
async fn report_start(dir: &Path, child: &mut std::process::Child) {
    let pid = child.id();
    for _ in 0..250 {
        if HubInfo::read(dir).is_some_and(|info| info.pid == pid) {
            tracing::info!(pid, dir = %dir.display(), "started a hub");
            return;
        }
        if let Ok(Some(_)) = child.try_wait() {
            tracing::debug!(dir = %dir.display(), "another process started the hub first");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Bridges stdin/stdout to an agent session on the hub. Returns when stdin
/// closes (the session then ends) or the hub goes away.
pub async fn bridge(dir: &Path, store: Option<&str>) -> anyhow::Result<()> {
    let stream = connect_or_start(dir, store).await?;
    let (mut from_hub, mut to_hub) = stream.into_split();
    let upstream = async move {
        let mut stdin = tokio::io::stdin();
        let copied = tokio::io::copy(&mut stdin, &mut to_hub).await;
        let _ = to_hub.shutdown().await;
        copied
    };
    let downstream = async move {
        let mut stdout = tokio::io::stdout();
        let copied = tokio::io::copy(&mut from_hub, &mut stdout).await;
        let _ = stdout.flush().await;
        copied
    };
    tokio::pin!(upstream, downstream);
    tokio::select! {
        up = &mut upstream => {
            up.context("reading stdin")?;
            // Let the hub's last responses through, then stop.
            let _ = tokio::time::timeout(Duration::from_secs(5), downstream).await;
            Ok(())
        }
        down = &mut downstream => {
            down.context("writing stdout")?;
            bail!("the hub closed the connection")
        }
    }
}
