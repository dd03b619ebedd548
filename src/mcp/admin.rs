//! The operator's channel to a running hub: `DIR/admin.sock`, a unix
//! socket created 0600 so that file permissions are the authorisation
//! (only the hub's user can connect). Each line a client sends is one
//! [`AdminRequest`] in JSON; each answer is one [`AdminReply`] line (a
//! waiting `lock` sends `waiting` lines before its answer). The protocol
//! is one small typed enum so that a command is added by adding a variant
//! (and its arm in `answer`). Operators use it (`agents`, `end-agent`,
//! `break-lock`, `set-capacity`, `import`), and so do shell scripts and
//! the git guard (`agent`, `lock`, `unlock`, `locks`, `guard`: see
//! `admin/shell.rs`, and `admin/text.rs` for how their answers read).
//!
//! This file carries requests and shows answers; what an action does is
//! decided in `service::operator`, and what an import does in
//! `service::import`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

mod shell;
pub mod text;

pub use shell::{AdminGuard, AdminLock, AdminRefusedPath, AdminStarted, Refusal};

use super::convert;
use super::types::{GrantedView, LockView, ReleasedView};
use crate::service::time::rfc3339;
use crate::service::{ActionReport, Hub, ImportOutcome};
use crate::store::OperatorEvent;

pub const ADMIN_SOCKET_FILE: &str = "admin.sock";

/// The longest request line the hub reads; a longer one is refused. An
/// `import` line carries a whole program file (a 600-function program is
/// about 60 KiB of text, JSON escaping adds more), so the bound is set by
/// the largest program one would load, not by the small commands. It is
/// still a bound: the line is held in memory whole. Only the hub's own
/// user can connect (the socket is 0600), so it guards against mistakes,
/// not against strangers.
const MAX_LINE: usize = 64 * 1024 * 1024;

/// How long the client waits for the hub's answer to a command, and to an
/// import (which parses, verifies and commits a whole program).
const COMMAND_WAIT: Duration = Duration::from_secs(30);
const IMPORT_WAIT: Duration = Duration::from_secs(600);

/// One operator command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminRequest {
    /// Who is connected, with what they hold and wait for.
    Agents,
    /// End an agent (by id or unique name): its locks and queue places go.
    EndAgent { agent: String },
    /// Break every lock on a resource: a function by id or qualified name,
    /// anything else as `kind:name` (`path:src/net/`, `semaphore:gpu`).
    BreakLock {
        #[serde(alias = "function")]
        resource: String,
    },
    /// Set a semaphore's capacity (`gpu` or `semaphore:gpu`).
    SetCapacity { semaphore: String, capacity: u32 },
    /// Start a stateless agent for a shell script; answers its handle.
    AgentStart {
        name: String,
        #[serde(default)]
        purpose: Option<String>,
    },
    /// End the agent a secret handle names: its locks and queue places go.
    AgentEnd { agent: String },
    /// Lock resources for the agent a handle names, all or none, waiting
    /// while this connection stays open.
    Lock(AdminLock),
    /// Release the named resources (none: all) of the agent a handle names.
    Unlock {
        agent: String,
        #[serde(default)]
        resources: Vec<String>,
    },
    /// The lock table: every resource held or waited for, of `kind`
    /// (`path`, `semaphore`, ...) and starting with `prefix` if given.
    Locks {
        #[serde(default)]
        kind: Option<String>,
        #[serde(default)]
        prefix: Option<String>,
    },
    /// The git guard: may the agent `agent` (a handle; none: nobody's)
    /// commit changes to `paths`?
    CheckPaths {
        #[serde(default)]
        agent: Option<String>,
        paths: Vec<String>,
        #[serde(default)]
        require_lock: bool,
    },
    /// Import a program file (`content`, text or JSON) as one commit.
    /// `source` names it in errors and in the commit's purpose; `replace`
    /// replaces functions whose names exist instead of refusing.
    Import {
        content: String,
        source: String,
        replace: bool,
    },
}

/// What an import did, as `import` answers (and as the CLI reports an
/// import it ran itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminImport {
    /// The commit's revision; `None` if the import changed nothing.
    pub revision: Option<u64>,
    pub n_functions: usize,
    /// Function ids, node ids and counters are exactly the file's.
    pub exact: bool,
    pub n_replaced: usize,
}

impl From<&ImportOutcome> for AdminImport {
    fn from(out: &ImportOutcome) -> AdminImport {
        AdminImport {
            revision: out.commit.revision.map(|r| r.0),
            n_functions: out.n_functions,
            exact: out.exact,
            n_replaced: out.n_replaced,
        }
    }
}

impl AdminImport {
    /// `imported 600 functions from big.cg through the running hub at r12
    /// (ids and counters as in the file)`.
    pub fn summary(&self, source: &str, through_hub: bool) -> String {
        format!(
            "imported {} functions from {source}{} at r{}{}{}",
            self.n_functions,
            if through_hub {
                " through the running hub"
            } else {
                ""
            },
            self.revision.unwrap_or(0),
            if self.exact {
                " (ids and counters as in the file)"
            } else {
                " (new function ids: the store already had functions)"
            },
            match self.n_replaced {
                0 => String::new(),
                n => format!("; {n} replaced"),
            }
        )
    }
}

/// A connected agent, as `agents` answers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdminAgent {
    pub agent_id: String,
    pub name: String,
    pub transport: String,
    pub connected_since: String,
    pub last_active: String,
    pub idle_s: u64,
    /// `module::name (mode)` of each lock held.
    pub holds: Vec<String>,
    /// `module::name (mode)` of each lock waited for.
    pub waits_for: Vec<String>,
}

/// One recorded operator action.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdminEvent {
    pub seq: u64,
    pub action: String,
    pub agent_id: String,
    pub agent_name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub function: Option<String>,
    pub detail: String,
}

/// The hub's answer to one request.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AdminReply {
    Agents {
        agents: Vec<AdminAgent>,
    },
    Done {
        events: Vec<AdminEvent>,
    },
    Imported(AdminImport),
    /// A semaphore's capacity was set; `before` is the one it had.
    Capacity {
        semaphore: String,
        capacity: u32,
        before: Option<u32>,
    },
    /// A shell agent was started.
    Started(AdminStarted),
    /// An agent was ended at its own request.
    Ended {
        agent_id: String,
        name: String,
        n_released: usize,
    },
    /// A lock request waits; one line per resource that blocks it. Sent
    /// before the answer whenever that changes.
    Waiting {
        lines: Vec<String>,
    },
    /// The locks were granted, all under one fencing token.
    Granted {
        token: u64,
        waited_ms: u64,
        locks: Vec<GrantedView>,
    },
    Released {
        released: Vec<ReleasedView>,
        n_still_held: usize,
    },
    Locks {
        locks: Vec<LockView>,
    },
    Guard(AdminGuard),
    /// A refusal: what went wrong, what kind of refusal it is (a script's
    /// exit code), what to do, and per blocked resource a line naming its
    /// holders and the queue.
    Error {
        message: String,
        #[serde(default, skip_serializing_if = "Refusal::is_failed")]
        refusal: Refusal,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lines: Vec<String>,
    },
}

impl AdminReply {
    /// A plain failure with its message.
    pub fn error(message: impl Into<String>) -> AdminReply {
        AdminReply::Error {
            message: message.into(),
            refusal: Refusal::Failed,
            hint: None,
            lines: Vec::new(),
        }
    }
}

impl From<&OperatorEvent> for AdminEvent {
    fn from(e: &OperatorEvent) -> AdminEvent {
        AdminEvent {
            seq: e.seq,
            action: e.action.as_str().to_string(),
            agent_id: e.agent_id.clone(),
            agent_name: e.agent_name.clone(),
            function: e.function_name.clone(),
            detail: e.detail.clone(),
        }
    }
}

/// Binds `DIR/admin.sock` readable and writable by this user only. The
/// socket is bound under a temporary name, restricted, then renamed into
/// place, so there is no instant at which another user could connect.
pub fn bind(dir: &Path) -> anyhow::Result<UnixListener> {
    let path = dir.join(ADMIN_SOCKET_FILE);
    let tmp = dir.join(format!("{ADMIN_SOCKET_FILE}.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener =
        UnixListener::bind(&tmp).with_context(|| format!("cannot listen on {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(listener)
}

/// Answers operator requests on the admin socket until `shutdown`.
pub async fn serve(hub: Arc<Hub>, listener: UnixListener, shutdown: CancellationToken) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an admin connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let hub = hub.clone();
        let ct = shutdown.child_token();
        tokio::spawn(async move {
            tokio::select! {
                _ = ct.cancelled() => {}
                r = serve_one(&hub, stream) => if let Err(e) = r {
                    tracing::warn!(error = %e, "admin connection failed");
                },
            }
        });
    }
}

async fn serve_one(hub: &Arc<Hub>, stream: UnixStream) -> std::io::Result<()> {
    let operator = match stream.peer_cred() {
        Ok(cred) => format!("uid {} via the admin socket", cred.uid()),
        Err(_) => "the admin socket".to_string(),
    };
    let (read, mut write) = stream.into_split();
    let mut lines = tokio::io::BufReader::new(read);
    let mut line = String::new();
    loop {
        line.clear();
        let n = (&mut lines)
            .take(MAX_LINE as u64 + 1)
            .read_line(&mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        let reply = if line.len() > MAX_LINE {
            AdminReply::error(format!("a request line is at most {MAX_LINE} bytes"))
        } else {
            match serde_json::from_str::<AdminRequest>(line.trim()) {
                // A lock writes its own answers: it may wait, and it gives
                // back a grant whose answer cannot be written.
                Ok(AdminRequest::Lock(lock)) => {
                    shell::serve_lock(hub, lock, &mut lines, &mut write).await?;
                    continue;
                }
                Ok(request) => answer(hub, request, &operator).await,
                Err(e) => AdminReply::error(format!(
                    "not an admin request ({e}); send one JSON object per line, e.g. {{\"command\":\"agents\"}}"
                )),
            }
        };
        write_reply(&mut write, &reply).await?;
        if line.len() > MAX_LINE {
            return Ok(());
        }
    }
}

/// Writes one answer line.
async fn write_reply(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    reply: &AdminReply,
) -> std::io::Result<()> {
    let mut out = serde_json::to_vec(reply).unwrap_or_default();
    out.push(b'\n');
    write.write_all(&out).await
}

async fn answer(hub: &Arc<Hub>, request: AdminRequest, operator: &str) -> AdminReply {
    let done = |reports: Vec<ActionReport>| AdminReply::Done {
        events: reports.iter().map(|r| AdminEvent::from(&r.event)).collect(),
    };
    let result = match request {
        AdminRequest::Agents => {
            return AdminReply::Agents {
                agents: agents(hub),
            };
        }
        AdminRequest::EndAgent { agent } => hub
            .operator_end_agent(&agent, operator)
            .await
            .map(|r| done(vec![r])),
        AdminRequest::BreakLock { resource } => {
            hub.operator_break_lock(&resource, operator).await.map(done)
        }
        AdminRequest::SetCapacity {
            semaphore,
            capacity,
        } => hub
            .operator_set_capacity(&semaphore, capacity, operator)
            .map(|(name, before)| AdminReply::Capacity {
                semaphore: format!("semaphore:{name}"),
                capacity,
                before,
            }),
        AdminRequest::Import {
            content,
            source,
            replace,
        } => {
            return match hub.import_file(&content, &source, replace).await {
                Ok(out) => AdminReply::Imported(AdminImport::from(&out)),
                Err(e) => AdminReply::error(e.to_string()),
            };
        }
        AdminRequest::AgentStart { name, purpose } => {
            return shell::agent_start(hub, name, purpose);
        }
        AdminRequest::AgentEnd { agent } => return shell::agent_end(hub, &agent),
        // Served by `serve_one` itself; an answer here is only a fallback.
        AdminRequest::Lock(_) => {
            return AdminReply::error("a lock is served on its own connection");
        }
        AdminRequest::Unlock { agent, resources } => return shell::unlock(hub, &agent, &resources),
        AdminRequest::Locks { kind, prefix } => {
            return shell::locks(hub, kind.as_deref(), prefix.as_deref());
        }
        AdminRequest::CheckPaths {
            agent,
            paths,
            require_lock,
        } => return shell::check_paths(hub, agent.as_deref(), &paths, require_lock),
    };
    result.unwrap_or_else(|e| AdminReply::error(e.to_string()))
}

fn agents(hub: &Hub) -> Vec<AdminAgent> {
    let program = hub.snapshot();
    let name = |r: &crate::locks::Resource| crate::service::resource_text(&program, r);
    hub.agents_report()
        .into_iter()
        .map(|r| AdminAgent {
            agent_id: r.info.id.to_string(),
            transport: convert::transport(r.info.transport).as_str().to_string(),
            connected_since: rfc3339(r.info.connected_since),
            last_active: rfc3339(r.info.last_active),
            idle_s: r.info.idle_for().as_secs(),
            holds: r
                .held
                .iter()
                .map(|l| format!("{} ({})", name(&l.resource), l.claim))
                .collect(),
            waits_for: r
                .waiting
                .iter()
                .map(|(r, c)| format!("{} ({c})", name(r)))
                .collect(),
            name: r.info.name,
        })
        .collect()
}

/// The admin socket of `dir`'s hub, if one answers there (a socket file
/// left by a killed hub refuses the connection).
fn connect(dir: &Path) -> Option<std::os::unix::net::UnixStream> {
    std::os::unix::net::UnixStream::connect(dir.join(ADMIN_SOCKET_FILE)).ok()
}

/// Sends one request to the hub of `dir` and returns its answer. Fails
/// with `no_hub` in the message when no hub runs there.
pub fn request(dir: &Path, request: &AdminRequest, no_hub: &str) -> anyhow::Result<AdminReply> {
    let Some(stream) = connect(dir) else {
        bail!("no hub is running for {}; {no_hub}", dir.display());
    };
    exchange(stream, request)
}

/// Sends `request` on `stream` and reads the one answer line.
fn exchange(
    stream: std::os::unix::net::UnixStream,
    request: &AdminRequest,
) -> anyhow::Result<AdminReply> {
    exchange_waiting(stream, request, |_| {})
}

/// Sends `request` on `stream` and reads its answer, handing each
/// `waiting` line before it to `waiting`.
fn exchange_waiting(
    mut stream: std::os::unix::net::UnixStream,
    request: &AdminRequest,
    mut waiting: impl FnMut(&[String]),
) -> anyhow::Result<AdminReply> {
    let wait = match request {
        AdminRequest::Import { .. } => IMPORT_WAIT,
        AdminRequest::Lock(lock) => Duration::from_millis(lock.wait_ms) + COMMAND_WAIT,
        _ => COMMAND_WAIT,
    };
    stream.set_read_timeout(Some(wait))?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut answers = BufReader::new(&stream);
    loop {
        let mut answer = String::new();
        let n = answers
            .read_line(&mut answer)
            .context("the hub did not answer")?;
        if n == 0 {
            bail!("the hub closed the connection without an answer (did it stop?)");
        }
        match serde_json::from_str(&answer).context("the hub's answer is not an admin reply")? {
            AdminReply::Waiting { lines } => waiting(&lines),
            reply => return Ok(reply),
        }
    }
}

/// Sends a request to the hub of `dir` and returns its answer, handing
/// each `waiting` line before it to `waiting`: `None` when no hub answers
/// there.
pub fn call(
    dir: &Path,
    request: &AdminRequest,
    waiting: impl FnMut(&[String]),
) -> anyhow::Result<Option<AdminReply>> {
    match connect(dir) {
        Some(stream) => exchange_waiting(stream, request, waiting).map(Some),
        None => Ok(None),
    }
}

/// Runs an operator command against the hub of `dir` and returns what to
/// print, or the hub's refusal as an error.
pub fn run(dir: &Path, command: AdminRequest) -> anyhow::Result<String> {
    let (no_hub, source) = match &command {
        AdminRequest::Agents => ("no agents are connected", ""),
        AdminRequest::EndAgent { .. } => ("nothing to end", ""),
        AdminRequest::BreakLock { .. } => ("no locks to break", ""),
        AdminRequest::SetCapacity { .. } => ("no semaphores to set", ""),
        AdminRequest::Import { source, .. } => (
            "`cograph import` opens the store itself then",
            source.as_str(),
        ),
        _ => ("", ""),
    };
    match request(dir, &command, no_hub)? {
        AdminReply::Error { message, .. } => bail!("{message}"),
        AdminReply::Agents { agents } => Ok(agents_text(&agents)),
        AdminReply::Done { events } => Ok(events
            .iter()
            .map(|e| format!("{}\n", event_line(e)))
            .collect()),
        AdminReply::Imported(import) => Ok(format!("{}\n", import.summary(source, true))),
        AdminReply::Capacity {
            semaphore,
            capacity,
            before,
        } => Ok(format!(
            "{semaphore} has capacity {capacity}{}\n",
            before.map(|b| format!(" (was {b})")).unwrap_or_default()
        )),
        other => bail!("the hub answered with {other:?}"),
    }
}

/// Imports a program file through the running hub of `dir`: `None` when no
/// hub answers there (the caller then opens the store itself), the import
/// otherwise, or the hub's refusal as an error.
pub fn import(
    dir: &Path,
    content: String,
    source: &str,
    replace: bool,
) -> anyhow::Result<Option<AdminImport>> {
    let Some(stream) = connect(dir) else {
        return Ok(None);
    };
    let request = AdminRequest::Import {
        content,
        source: source.to_string(),
        replace,
    };
    match exchange(stream, &request)? {
        AdminReply::Imported(import) => Ok(Some(import)),
        AdminReply::Error { message, .. } => bail!("{message}"),
        other => bail!("the hub answered an import with {other:?}"),
    }
}

fn agents_text(agents: &[AdminAgent]) -> String {
    let mut out = format!("{} agents connected\n", agents.len());
    for a in agents {
        let idle = super::views::idle_text(a.idle_s);
        out.push_str(&format!(
            "{} {} [{}] connected {}, last active {} ({idle})\n  holds: {}\n  waits for: {}\n",
            a.agent_id,
            a.name,
            a.transport,
            a.connected_since,
            a.last_active,
            list_or_none(&a.holds),
            list_or_none(&a.waits_for),
        ));
    }
    out
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".into()
    } else {
        items.join(", ")
    }
}

/// `event 3: end_agent alice (ag_…): released 1 locks: demo::f (write, token 7)`.
pub fn event_line(e: &AdminEvent) -> String {
    format!(
        "event {}: {} {} ({}){}: {}",
        e.seq,
        e.action,
        e.agent_name,
        e.agent_id,
        e.function
            .as_deref()
            .map(|f| format!(" on {f}"))
            .unwrap_or_default(),
        e.detail
    )
}

/// One operator event as a line of `cograph log`.
pub fn log_line(e: &OperatorEvent) -> String {
    super::views::operator_event_line(&super::views::operator_event(e))
}
