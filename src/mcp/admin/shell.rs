//! What shell scripts and the git guard ask of the hub over the admin
//! socket (`cograph agent start|end`, `lock`, `unlock`, `locks`, `guard`):
//! a stateless agent named by its secret handle, locks taken all or none
//! with a wait that ends when the asking process goes away, releases, the
//! lock table, and the guard's check of a commit's paths.
//!
//! A waiting lock watches its connection: when the client closes it (the
//! script was killed, its terminal closed), the request leaves the queue,
//! and a grant made in that instant is given back, so it is never granted
//! to nobody. Each answer names its kind of refusal (`Refusal`), which the
//! command line turns into an exit code.
//!
//! The hub decides (`Hub::acquire`, `Hub::release`, `Hub::check_paths`);
//! this file resolves handles, checks and converts arguments, and words
//! refusals for a shell. How answers read is `text.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::sync::CancellationToken;

use super::{AdminReply, write_reply};
use crate::locks::{AgentId, LockMode, LockTarget, Resource, ResourceKind};
use crate::mcp::error::{self, ToolFailure};
use crate::mcp::server::MAX_WAIT;
use crate::mcp::types::{ClaimView, ErrorCode};
use crate::mcp::views;
use crate::service::{Hub, LockSpec, ResourceRef, ServiceError};

/// At most this many resources in one `lock`, as in `acquire_locks`.
const MAX_RESOURCES: usize = 1000;

/// At most this many holders named per blocked resource in a shell's
/// lines: a semaphore used as a rate limit may have thousands.
const MAX_HOLDERS_SHOWN: usize = 5;

/// `cograph lock`'s request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminLock {
    /// The agent's secret handle.
    pub agent: String,
    /// What to lock, as `ResourceRef::parse` reads it: `path:src/net/`,
    /// `module:math`, `named:deploy:staging`, `semaphore:gpu`, or a
    /// function by qualified name or `#id`.
    pub resources: Vec<String>,
    /// Read (shared) locks instead of write locks; not for semaphores.
    #[serde(default)]
    pub read: bool,
    /// How long to wait in the queues; 0 answers at once.
    #[serde(default)]
    pub wait_ms: u64,
    #[serde(default)]
    pub ttl_ms: Option<u64>,
    #[serde(default)]
    pub purpose: Option<String>,
    /// Permits of each semaphore named (default 1).
    #[serde(default)]
    pub permits: Option<u32>,
    /// The capacity of each semaphore named, as the requester believes it.
    #[serde(default)]
    pub capacity: Option<u32>,
}

/// Kinds of refusal a script can branch on (the command line's exit
/// codes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Anything else.
    #[default]
    Failed,
    /// Held by others; nothing was granted.
    Denied,
    /// The request was malformed or named nothing that exists.
    Invalid,
    /// The wait ran out.
    Timeout,
    /// Waiting would deadlock.
    Deadlock,
    /// The agent handle is unknown, or the agent ended.
    UnknownAgent,
}

impl Refusal {
    pub fn is_failed(&self) -> bool {
        *self == Refusal::Failed
    }
}

/// A started shell agent.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdminStarted {
    pub agent_id: String,
    pub name: String,
    /// The secret handle, for `COGRAPH_AGENT`.
    pub session: String,
    /// It ends after this long without a command (`--agent-idle`).
    pub idle_s: u64,
}

/// The guard's answer: the paths it refuses, with why.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdminGuard {
    pub n_checked: usize,
    /// The committer's name, if one was given.
    pub committer: Option<String>,
    pub refused: Vec<AdminRefusedPath>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdminRefusedPath {
    pub path: String,
    /// Others' locks that meet it, as denials show holders.
    pub held_by: Vec<ClaimView>,
    /// With `--require-lock`: the committer holds no write lock on it or
    /// a directory above it.
    pub not_locked: bool,
}

fn refused(refusal: Refusal, message: impl Into<String>, hint: &str) -> AdminReply {
    AdminReply::Error {
        message: message.into(),
        refusal,
        hint: Some(hint.to_string()),
        lines: Vec::new(),
    }
}

fn invalid(message: impl Into<String>) -> AdminReply {
    refused(
        Refusal::Invalid,
        message,
        "functions are `module::name` or `#id`; other resources are `kind:name`: `path:src/net/`, `module:math`, `named:deploy`, `semaphore:gpu`",
    )
}

/// The agent a secret handle names, or the refusal a script gets.
fn agent_of(hub: &Hub, handle: &str) -> Result<AgentId, AdminReply> {
    hub.resolve_session(handle).ok_or_else(|| {
        refused(
            Refusal::UnknownAgent,
            "the agent handle is unknown or expired (an agent ends after the hub's --agent-idle without a command, or with `cograph agent end`)",
            "start a new agent: export COGRAPH_AGENT=$(cograph agent start NAME)",
        )
    })
}

/// Checks a free-text argument: at most `max` characters, no control
/// characters (the bounds the MCP tools apply).
fn check_text(what: &str, text: Option<&str>, max: usize) -> Result<(), AdminReply> {
    match text {
        Some(t) if t.chars().count() > max || t.chars().any(char::is_control) => Err(invalid(
            format!("{what} is at most {max} characters, without control characters"),
        )),
        _ => Ok(()),
    }
}

pub(super) fn agent_start(hub: &Hub, name: String, purpose: Option<String>) -> AdminReply {
    let checked = check_text("a name", Some(&name), 100)
        .and_then(|()| check_text("a purpose", purpose.as_deref(), 500));
    if let Err(reply) = checked {
        return reply;
    }
    if name.trim().is_empty() {
        return invalid("an agent needs a name: `cograph agent start ci-bot`");
    }
    match hub.register_stateless(name, purpose) {
        Ok((id, handle)) => {
            let name = hub.agent_name(id);
            tracing::info!(agent = %id, %name, "shell agent started");
            AdminReply::Started(AdminStarted {
                agent_id: id.to_string(),
                name,
                session: handle.expose().to_string(),
                idle_s: hub.config().stateless_idle.as_secs(),
            })
        }
        Err(e) => refused(
            Refusal::Failed,
            e.to_string(),
            "end agents you no longer need (`cograph agent end`), or ask the operator to raise `cograph serve --max-agents`",
        ),
    }
}

pub(super) fn agent_end(hub: &Hub, handle: &str) -> AdminReply {
    let id = match agent_of(hub, handle) {
        Ok(id) => id,
        Err(reply) => return reply,
    };
    let name = hub.agent_name(id);
    let n_released = hub.locks_held_by(id).len();
    hub.end_agent(id);
    AdminReply::Ended {
        agent_id: id.to_string(),
        name,
        n_released,
    }
}

pub(super) fn unlock(hub: &Hub, handle: &str, resources: &[String]) -> AdminReply {
    let id = match agent_of(hub, handle) {
        Ok(id) => id,
        Err(reply) => return reply,
    };
    let _call = hub.begin_call(id);
    let mut named = Vec::with_capacity(resources.len());
    for text in resources {
        match ResourceRef::parse(text) {
            Ok(r) => named.push(r),
            Err(e) => return invalid(format!("`{text}`: {e}")),
        }
    }
    let all = resources.is_empty();
    match hub.release(id, (!all).then_some(named.as_slice())) {
        Ok(released) => {
            let program = hub.snapshot();
            AdminReply::Released {
                released: released
                    .iter()
                    .map(|(r, c)| {
                        let (mode, permits) = views::claim(*c);
                        crate::mcp::types::ReleasedView {
                            resource: views::resource(&program, r),
                            mode,
                            permits,
                        }
                    })
                    .collect(),
                n_still_held: hub.locks_held_by(id).len(),
            }
        }
        Err(e) => refusal(hub, e),
    }
}

pub(super) fn locks(hub: &Hub, kind: Option<&str>, prefix: Option<&str>) -> AdminReply {
    let kind = match kind {
        None => None,
        Some(k) => match ResourceKind::ALL.into_iter().find(|x| x.as_str() == k) {
            Some(k) => Some(k),
            None => {
                return invalid(format!(
                    "no kind `{k}`; kinds are function, module, path, named, semaphore"
                ));
            }
        },
    };
    let program = hub.snapshot();
    AdminReply::Locks {
        locks: hub
            .locks_matching(kind, prefix)
            .into_iter()
            .map(|(name, v)| views::lock_view(hub, &program, name, &v))
            .collect(),
    }
}

pub(super) fn check_paths(
    hub: &Hub,
    handle: Option<&str>,
    paths: &[String],
    require_lock: bool,
) -> AdminReply {
    let committer = match handle.map(|h| agent_of(hub, h)).transpose() {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    let report = hub.check_paths(committer, paths, require_lock);
    let program = hub.snapshot();
    AdminReply::Guard(AdminGuard {
        n_checked: report.n_checked,
        committer: committer.map(|c| hub.agent_name(c)),
        refused: report
            .refused
            .iter()
            .map(|r| AdminRefusedPath {
                path: r.path.clone(),
                held_by: match &r.checked_as {
                    // A holder of something else (a directory above)
                    // says what it holds.
                    Some(p) => {
                        let shown = Resource::Path(p.clone());
                        r.held_by_others
                            .iter()
                            .map(|h| views::holder(hub, &program, &shown, h))
                            .collect()
                    }
                    None => Vec::new(),
                },
                not_locked: r.not_locked,
            })
            .collect(),
    })
}

/// The specs `lock` asks for, or the refusal of a malformed request.
fn lock_specs(lock: &AdminLock) -> Result<Vec<LockSpec>, AdminReply> {
    if lock.resources.is_empty() {
        return Err(invalid(
            "name at least one resource: `cograph lock path:src/net/`",
        ));
    }
    if lock.resources.len() > MAX_RESOURCES {
        return Err(invalid(format!(
            "at most {MAX_RESOURCES} resources in one lock"
        )));
    }
    let mode = if lock.read {
        LockMode::Read
    } else {
        LockMode::Write
    };
    let mut specs = Vec::with_capacity(lock.resources.len());
    for text in &lock.resources {
        let spec = match ResourceRef::parse(text) {
            Err(e) => return Err(invalid(format!("`{text}`: {e}"))),
            Ok(ResourceRef::Function(function)) => LockSpec::Function { function, mode },
            Ok(ResourceRef::Other(Resource::Semaphore(name))) => LockSpec::Other(
                LockTarget::permits(name, lock.permits.unwrap_or(1), lock.capacity),
            ),
            Ok(ResourceRef::Other(r)) => LockSpec::Other(LockTarget::new(r, mode)),
        };
        specs.push(spec);
    }
    let semaphores = specs
        .iter()
        .filter(|s| matches!(s, LockSpec::Other(t) if t.claim.permits().is_some()))
        .count();
    if semaphores == 0 && (lock.permits.is_some() || lock.capacity.is_some()) {
        return Err(invalid(
            "--permits and --capacity are for semaphores, and no resource is one (`semaphore:gpu`)",
        ));
    }
    if semaphores == specs.len() && lock.read {
        return Err(invalid(
            "--read is for functions, modules, paths and named resources; a semaphore takes --permits",
        ));
    }
    Ok(specs)
}

/// Serves one `lock`: checks it, waits in the queues while the client's
/// connection stays open (writing a `waiting` line whenever what blocks it
/// changes), and writes the answer. A client gone before its answer is
/// written holds nothing from this request.
pub(super) async fn serve_lock(
    hub: &Arc<Hub>,
    lock: AdminLock,
    reader: &mut BufReader<OwnedReadHalf>,
    writer: &mut OwnedWriteHalf,
) -> std::io::Result<()> {
    let prepared = agent_of(hub, &lock.agent).and_then(|agent| {
        check_text("a purpose", lock.purpose.as_deref(), 500)?;
        if Duration::from_millis(lock.wait_ms) > MAX_WAIT {
            return Err(invalid(format!(
                "--wait is at most {} s",
                MAX_WAIT.as_secs()
            )));
        }
        if lock.ttl_ms == Some(0) {
            return Err(invalid("--ttl must be above 0 (for example 30m)"));
        }
        Ok((agent, lock_specs(&lock)?))
    });
    let (agent, specs) = match prepared {
        Ok(p) => p,
        Err(reply) => return write_reply(writer, &reply).await,
    };
    let _call = hub.begin_call(agent);
    let started = Instant::now();
    let cancel = CancellationToken::new();
    let (progress, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let acquire = hub.acquire(
        agent,
        &specs,
        Duration::from_millis(lock.wait_ms),
        lock.ttl_ms.map(Duration::from_millis),
        lock.purpose.clone(),
        &cancel,
        Some(progress),
    );
    tokio::pin!(acquire);
    let mut gone = false;
    let mut shown: Vec<String> = Vec::new();
    let result = loop {
        tokio::select! {
            result = &mut acquire => break result,
            Some(report) = reports.recv() => {
                let program = hub.snapshot();
                let lines = blocked_lines(
                    report
                        .blocked
                        .iter()
                        .map(|b| views::blocked(hub, &program, b))
                        .collect(),
                );
                if lines != shown && !gone {
                    let waiting = AdminReply::Waiting { lines: lines.clone() };
                    if write_reply(writer, &waiting).await.is_err() {
                        gone = true;
                        cancel.cancel();
                    }
                    shown = lines;
                }
            }
            () = closed(reader), if !gone => {
                gone = true;
                cancel.cancel();
            }
        }
    };
    let (reply, grant) = match result {
        Ok(grant) => {
            let program = hub.snapshot();
            let reply = AdminReply::Granted {
                token: grant.token.0,
                waited_ms: started.elapsed().as_millis() as u64,
                locks: grant
                    .locks
                    .iter()
                    .map(|l| views::granted(&program, l))
                    .collect(),
            };
            (reply, Some(grant))
        }
        Err(_) if gone => (AdminReply::error("the client went away"), None),
        Err(e) => (refusal(hub, e), None),
    };
    let delivered = !gone && write_reply(writer, &reply).await.is_ok();
    if let Some(grant) = &grant
        && !delivered
    {
        // Nobody will ever learn it holds these: they go back at once.
        hub.give_back(agent, grant);
    }
    if gone {
        tracing::info!(%agent, "a shell lock request's client went away; it left the queue");
    }
    Ok(())
}

/// Resolves when the client has closed its side of the connection (end of
/// file or an error), without consuming what it may have sent meanwhile:
/// data waiting to be read means it is still there.
async fn closed(reader: &mut BufReader<OwnedReadHalf>) {
    match reader.fill_buf().await {
        Ok([]) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}

/// One line per blocked resource, as denials word them, naming at most
/// `MAX_HOLDERS_SHOWN` holders of each.
fn blocked_lines(mut views: Vec<crate::mcp::types::BlockedView>) -> Vec<String> {
    let hidden: Vec<usize> = views
        .iter_mut()
        .map(|v| {
            let n = v.holders.len().saturating_sub(MAX_HOLDERS_SHOWN);
            v.holders.truncate(MAX_HOLDERS_SHOWN);
            n
        })
        .collect();
    error::progress_lines(&views)
        .into_iter()
        .zip(hidden)
        .map(|(line, n)| match n {
            0 => line,
            n => format!("{line}; {n} more holders not shown (`cograph locks`)"),
        })
        .collect()
}

/// A service error as a shell sees it: the tools' message, a hint for the
/// command line, the kind of refusal, and the lines naming what blocks.
fn refusal(hub: &Hub, e: ServiceError) -> AdminReply {
    let program = hub.snapshot();
    if let ServiceError::Lock(crate::locks::AcquireError::Invalid(m)) = &e {
        return invalid(m.to_string());
    }
    let lines = match &e {
        ServiceError::Lock(a) => blocked_lines(error::denial_views(a, &program, hub)),
        _ => Vec::new(),
    };
    let failure: ToolFailure = error::from_service(e, &program, hub);
    let (refusal, hint) = match failure.code() {
        Some(ErrorCode::LockDenied) => (
            Refusal::Denied,
            "pass --wait (e.g. --wait 5m) to queue for it; waiters are granted in arrival order",
        ),
        Some(ErrorCode::LockTimeout) => (
            Refusal::Timeout,
            "retry with a longer --wait, or work on something else meanwhile",
        ),
        Some(ErrorCode::Deadlock) => (
            Refusal::Deadlock,
            "release what the others wait for (`cograph unlock`), then ask for everything in one `cograph lock`",
        ),
        Some(ErrorCode::NotFound) => (Refusal::Invalid, "`cograph export` lists the functions"),
        Some(ErrorCode::Cancelled) => (
            Refusal::UnknownAgent,
            "your agent ended while waiting: start a new one with `cograph agent start NAME`",
        ),
        None if failure.is_invalid_params() => (Refusal::Invalid, ""),
        _ => (Refusal::Failed, ""),
    };
    // The tools' words, but for the flags a shell passes.
    let message = match refusal {
        Refusal::Timeout => {
            "still locked when --wait ran out; you left the queue and hold nothing new".into()
        }
        Refusal::UnknownAgent => "your agent ended while waiting; nothing was granted".into(),
        _ => failure.message(),
    };
    AdminReply::Error {
        message,
        refusal,
        hint: (!hint.is_empty()).then(|| hint.to_string()),
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::super::AdminRequest;
    use super::*;

    #[test]
    fn a_lock_request_round_trips_and_refuses_unknown_fields_of_its_own() {
        let line = r#"{"command":"lock","agent":"h","resources":["path:src/"],"wait_ms":5}"#;
        let parsed: AdminRequest = serde_json::from_str(line).unwrap();
        let AdminRequest::Lock(lock) = &parsed else {
            panic!("{parsed:?}")
        };
        assert_eq!((lock.wait_ms, lock.read), (5, false));
        let again: AdminRequest =
            serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
        assert_eq!(again, parsed);
        let typo = r#"{"command":"lock","agent":"h","resources":[],"wiat_ms":5}"#;
        let e = serde_json::from_str::<AdminRequest>(typo).unwrap_err();
        assert!(e.to_string().contains("wiat_ms"), "{e}");
    }

    #[test]
    fn lock_flags_that_name_nothing_are_refused() {
        let lock = |resources: &[&str], read: bool, permits: Option<u32>| AdminLock {
            agent: "h".into(),
            resources: resources.iter().map(|r| r.to_string()).collect(),
            read,
            wait_ms: 0,
            ttl_ms: None,
            purpose: None,
            permits,
            capacity: None,
        };
        let message = |l: AdminLock| match lock_specs(&l) {
            Err(AdminReply::Error {
                message, refusal, ..
            }) => {
                assert_eq!(refusal, Refusal::Invalid);
                message
            }
            other => panic!("{other:?}"),
        };
        assert!(message(lock(&[], false, None)).contains("at least one"));
        assert!(message(lock(&["path:a"], false, Some(2))).contains("--permits"));
        assert!(message(lock(&["semaphore:gpu"], true, None)).contains("--read"));
        assert!(message(lock(&["fib"], false, None)).contains("`fib`"));
        let mixed = lock_specs(&lock(&["path:a", "semaphore:gpu", "m::f"], true, Some(2))).unwrap();
        assert_eq!(mixed.len(), 3);
    }
}
