//! The one place that turns errors into what an MCP client sees.
//!
//! A failure the agent can act on becomes a tool result with
//! `isError: true`, a short text, and `structuredContent` holding
//! `error: {code, message, hint}` beside its details (holders, diff,
//! diagnostics). Malformed arguments become JSON-RPC invalid-params errors
//! naming the field; internal faults become internal errors, logged.

use rmcp::ErrorData;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};
use serde_json::{Map, Value, json};

use super::types::{BlockedView, ErrorCode, ErrorInfo};
use super::views;
use crate::graph::suggest::did_you_mean;
use crate::graph::{EditErrorKind, FunctionRef, Program};
use crate::locks::{AcquireError, Denial};
use crate::service::error::backticked;
use crate::service::{Hub, ServiceError};

/// Why a tool call failed.
#[derive(Debug)]
pub enum ToolFailure {
    /// The agent can act on it: a tool result with `isError: true`.
    Actionable {
        info: ErrorInfo,
        details: Map<String, Value>,
        text: String,
    },
    /// A JSON-RPC error: malformed arguments or an internal fault.
    Rpc(ErrorData),
}

impl ToolFailure {
    pub fn new(
        code: ErrorCode,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> ToolFailure {
        let info = ErrorInfo {
            code,
            message: message.into(),
            hint: hint.into(),
        };
        let text = format!(
            "error [{}]: {}\nhint: {}",
            info.code, info.message, info.hint
        );
        ToolFailure::Actionable {
            info,
            details: Map::new(),
            text,
        }
    }

    /// Adds a detail field beside `error`: one of [`ErrorDetails`], those
    /// the code's [`ErrorCode::details`] names, which the output schemas
    /// declare. A detail with no value (null) is left out.
    ///
    /// [`ErrorDetails`]: super::types::ErrorDetails
    pub fn with(mut self, key: &str, value: impl serde::Serialize) -> ToolFailure {
        if let ToolFailure::Actionable { details, .. } = &mut self {
            match serde_json::to_value(value) {
                Ok(Value::Null) | Err(_) => {}
                Ok(value) => {
                    details.insert(key.to_string(), value);
                }
            }
        }
        self
    }

    /// Adds lines to the text summary.
    pub fn with_text(mut self, more: &str) -> ToolFailure {
        if let ToolFailure::Actionable { text, .. } = &mut self
            && !more.is_empty()
        {
            text.push('\n');
            text.push_str(more);
        }
        self
    }

    pub fn invalid_params(message: impl Into<String>) -> ToolFailure {
        ToolFailure::Rpc(ErrorData::invalid_params(message.into(), None))
    }

    pub fn internal(message: impl Into<String>) -> ToolFailure {
        let message = message.into();
        tracing::error!(%message, "internal error in a tool call");
        ToolFailure::Rpc(ErrorData::internal_error(message, None))
    }

    pub fn session_required() -> ToolFailure {
        ToolFailure::new(
            ErrorCode::SessionRequired,
            "this call needs an agent identity, and this connection has none",
            "call register_agent (no arguments needed) and pass the `session` it returns as the `session` argument of every later call",
        )
    }

    /// A `session` handle that names no live agent.
    pub fn unknown_session() -> ToolFailure {
        ToolFailure::new(
            ErrorCode::SessionRequired,
            "the `session` handle is unknown or expired",
            "call register_agent again (without `session`) and use the new handle",
        )
    }

    /// What went wrong, in one sentence: the message of either kind.
    pub fn message(&self) -> String {
        match self {
            ToolFailure::Actionable { info, .. } => info.message.clone(),
            ToolFailure::Rpc(e) => e.message.to_string(),
        }
    }

    /// Returns true if and only if this is a JSON-RPC invalid-params error
    /// (the request was malformed, not refused).
    pub fn is_invalid_params(&self) -> bool {
        matches!(self, ToolFailure::Rpc(e) if e.code == rmcp::model::ErrorCode::INVALID_PARAMS)
    }

    /// The code of an actionable failure; `None` for a JSON-RPC error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ToolFailure::Actionable { info, .. } => Some(info.code),
            ToolFailure::Rpc(_) => None,
        }
    }

    pub fn into_response(self) -> Result<CallToolResponse, ErrorData> {
        match self {
            ToolFailure::Actionable {
                info,
                mut details,
                text,
            } => {
                details.insert(
                    "error".into(),
                    serde_json::to_value(&info).unwrap_or(Value::Null),
                );
                let mut result = CallToolResult::structured_error(Value::Object(details));
                result.content = vec![ContentBlock::text(text)];
                Ok(result.into())
            }
            ToolFailure::Rpc(e) => Err(e),
        }
    }
}

impl rmcp::handler::server::tool::IntoCallToolResult for ToolFailure {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        self.into_response()
    }
}

fn lines<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
    items.iter().map(f).collect::<Vec<_>>().join("\n")
}

/// Maps a service error, with the program and registry at hand to name
/// functions and agents.
pub fn from_service(e: ServiceError, program: &Program, hub: &Hub) -> ToolFailure {
    match e {
        ServiceError::NotFound { what } => ToolFailure::new(
            ErrorCode::NotFound,
            what,
            "program_overview lists the functions; names are `module::name`, ids are numbers",
        ),
        ServiceError::UnknownFunction { what, suggestions } => {
            let names: Vec<&str> = suggestions.iter().map(|n| n.as_str()).collect();
            ToolFailure::new(
                ErrorCode::NotFound,
                format!("{what}{}", did_you_mean(&names)),
                "program_overview lists the functions; names are `module::name`, ids are numbers",
            )
        }
        ServiceError::LockDenied { locked } => {
            let views: Vec<_> = locked
                .iter()
                .map(|l| {
                    let mut view = views::blocked(hub, program, &l.blocked);
                    if l.blocked.resource.function().is_some() {
                        // The name the edit knew it by (also for a function
                        // the program no longer has under that name).
                        view.resource = l.name.to_string();
                    }
                    view
                })
                .collect();
            let functions: Vec<String> = views.iter().map(|v| v.resource.clone()).collect();
            blocked(
                ErrorCode::LockDenied,
                format!("{} locked by another agent", names(&functions)),
                "wait for it with acquire_locks (mode write, wait_ms), or work on something else",
                views,
            )
        }
        ServiceError::Lock(e) => from_acquire(e, program, hub),
        ServiceError::LockExpired {
            name,
            token,
            expired_at,
            ..
        } => ToolFailure::new(
            ErrorCode::LockExpired,
            format!(
                "your lease on `{name}` (fencing token {}) expired and the function changed since",
                token.0
            ),
            "acquire the lock again, get_function to read the current version, and redo the edit",
        )
        .with("function", name.to_string())
        .with("fencing_token", token.0)
        .with("expired_at", expired_at.map(views::rfc3339)),
        ServiceError::Conflict { conflicts } => {
            let views: Vec<_> = conflicts
                .iter()
                .map(|c| views::conflict(program, c))
                .collect();
            let text = lines(&views, conflict_text);
            ToolFailure::new(
                ErrorCode::Conflict,
                format!("{} changed since your read", names(&views.iter().map(|v| v.function.clone()).collect::<Vec<_>>())),
                "the current version is included and now counts as your read: rewrite your ops against it and propose again",
            )
            .with("conflicts", &views)
            .with_text(&text)
        }
        ServiceError::TooManyConflicts {
            n_conflicts,
            conflict,
        } => {
            let view = views::conflict(program, &conflict);
            let text = conflict_text(&view);
            ToolFailure::new(
                ErrorCode::TooManyConflicts,
                format!("{n_conflicts} conflicts in a row on `{}`", view.function),
                "take the function's write lock with acquire_locks (mode write, wait_ms) so nobody else changes it, then edit",
            )
            .with("n_conflicts", n_conflicts)
            .with("conflicts", [&view])
            .with_text(&text)
        }
        ServiceError::ReadRequired { functions } => {
            let list: Vec<String> = functions.iter().map(|(_, n)| n.to_string()).collect();
            ToolFailure::new(
                ErrorCode::ReadRequired,
                format!(
                    "you have not read {}: edits are checked against what you last read",
                    backticked(&list)
                ),
                "call get_function on each first (or pass `base` with the hash your ops were written against)",
            )
            .with("functions", &list)
        }
        ServiceError::VerificationFailed { diagnostics } => {
            let views: Vec<_> = diagnostics.iter().map(views::diagnostic).collect();
            let text = lines(&views, |d| {
                format!(
                    "{}{}: {} [{}]; {}",
                    d.function,
                    d.node
                        .as_deref()
                        .map(|n| format!(" {n}"))
                        .unwrap_or_default(),
                    d.message,
                    d.code,
                    d.hint
                )
            });
            ToolFailure::new(
                ErrorCode::VerificationFailed,
                format!("the edit would break the program ({} diagnostics); nothing was committed", views.len()),
                "fix the listed problems in the same propose_edit (dry_run: true checks without committing)",
            )
            .with("diagnostics", &views)
            .with_text(&text)
        }
        ServiceError::InvalidEdit(e) => {
            // An op naming a function that does not exist: the closest names.
            let suggestions = match &e.reason {
                EditErrorKind::UnknownFunction(FunctionRef::Name(name)) => {
                    program.similar_names(name.as_str())
                }
                _ => Vec::new(),
            };
            let names: Vec<&str> = suggestions.iter().map(|n| n.as_str()).collect();
            let failure = ToolFailure::new(
                ErrorCode::InvalidEdit,
                format!("{e}{}", did_you_mean(&names)),
                format!(
                    "fix op {} ({}); no op of this request was applied",
                    e.index, e.kind
                ),
            )
            .with("op_index", e.index)
            .with("op", e.kind);
            if names.is_empty() {
                failure
            } else {
                failure.with("suggestions", &names)
            }
        }
        ServiceError::InvalidRequest(m) => ToolFailure::invalid_params(m),
        ServiceError::Runtime(e) => ToolFailure::new(
            ErrorCode::RuntimeError,
            e.to_string(),
            match e.code() {
                "fuel_exhausted" => {
                    "the run took too many steps; try smaller arguments or raise `fuel`"
                }
                "stack_overflow" => "the recursion went too deep; check the base case",
                "bad_argument" => "pass one argument per parameter, of the parameter's type",
                _ => "this is the program's behaviour on these arguments",
            },
        )
        .with("runtime_code", e.code()),
        ServiceError::TooManyAgents { cap } => ToolFailure::new(
            ErrorCode::TooManyAgents,
            format!(
                "{cap} stateless agents are registered, the most this server allows (--max-agents {cap})"
            ),
            "reuse your `session` instead of registering again; idle agents end after --agent-idle, or the operator can raise `cograph serve --max-agents`",
        ),
        ServiceError::Unavailable(m) => {
            ToolFailure::internal(format!("the server is stopping: {m}"))
        }
        ServiceError::Internal(m) => ToolFailure::internal(m),
    }
}

/// Every refusal that leaves the caller blocked, whichever tool gives it,
/// has one shape: the blocked functions with holders and queue places
/// (`blocked`), as data and as text.
fn blocked(code: ErrorCode, message: String, hint: &str, views: Vec<BlockedView>) -> ToolFailure {
    let text = blocked_text(&views);
    ToolFailure::new(code, message, hint)
        .with("blocked", &views)
        .with_text(&text)
}

pub fn from_acquire(e: AcquireError, program: &Program, hub: &Hub) -> ToolFailure {
    let views = |denial: &Denial| -> Vec<BlockedView> {
        denial
            .blocked
            .iter()
            .map(|b| views::blocked(hub, program, b))
            .collect()
    };
    match e {
        AcquireError::Denied(d) => {
            let views = views(&d);
            let functions: Vec<String> = views.iter().map(|v| v.resource.clone()).collect();
            blocked(
                ErrorCode::LockDenied,
                format!(
                    "{} locked by another agent; nothing was granted",
                    names(&functions)
                ),
                "pass wait_ms to queue for it (you are granted in arrival order), or work on something else",
                views,
            )
        }
        AcquireError::Timeout(d) => blocked(
            ErrorCode::LockTimeout,
            "still locked when wait_ms ran out; you left the queue and hold nothing new".into(),
            "try again with a longer wait_ms, or work on something else meanwhile",
            views(&d),
        ),
        AcquireError::Deadlock { cycle, denial } => {
            let cycle: Vec<_> = cycle
                .agents
                .iter()
                .map(|a| super::types::AgentRef {
                    agent_id: a.to_string(),
                    name: hub.agent_name(*a),
                })
                .collect();
            let path = cycle
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(" -> ");
            blocked(
                ErrorCode::Deadlock,
                format!("waiting would deadlock: {path}; nothing was queued and nobody's locks were touched"),
                "release the locks the others wait for (release_locks), or retry without wait_ms",
                views(&denial),
            )
            .with("cycle", &cycle)
        }
        AcquireError::Cancelled => ToolFailure::new(
            ErrorCode::Cancelled,
            "the wait was cancelled; you left the queue",
            "call acquire_locks again when you want the lock",
        ),
        AcquireError::AgentEnded => ToolFailure::new(
            ErrorCode::Cancelled,
            "your session ended while waiting",
            "reconnect (or register_agent again) and retry",
        ),
        AcquireError::Invalid(m) => ToolFailure::invalid_params(format!("`locks`: {m}")),
    }
}

/// Per blocked resource, one line: who holds it, who waits ahead, and the
/// caller's place in the queue.
fn blocked_text(views: &[BlockedView]) -> String {
    lines(views, |b| {
        let mut who: Vec<String> = b
            .holders
            .iter()
            .map(|h| format!("held by {}", holder_text(h)))
            .collect();
        who.extend(b.waiting_ahead.iter().map(|w| {
            format!(
                "{} waits ahead of you ({})",
                w.agent_name,
                views::claim_text(w.mode, w.permits)
            )
        }));
        let semaphore = match (b.capacity, b.in_use) {
            (Some(c), Some(u)) => format!(" ({u} of {c} permits in use)"),
            _ => String::new(),
        };
        format!(
            "{}{semaphore}: {}; your queue position {} of {}",
            b.resource,
            who.join("; "),
            b.queue_position,
            b.queue_length.max(b.queue_position)
        )
    })
}

/// A holder as denials name it: `alice (ag_…, write on path:src/: fix
/// the parser, idle 2 min, until 2026-…Z)`.
pub(crate) fn holder_text(h: &super::types::HolderView) -> String {
    format!(
        "{} ({}, {}{}{}{}, until {})",
        h.agent_name,
        h.agent_id,
        views::claim_text(h.mode, h.permits),
        match (&h.resource, h.below) {
            (Some(r), true) => format!(" below {r}"),
            (Some(r), false) => format!(" on {r}"),
            (None, _) => String::new(),
        },
        h.purpose
            .as_deref()
            .map(|p| format!(": {p}"))
            .unwrap_or_default(),
        views::holder_idle(h),
        h.expires_at.as_deref().unwrap_or("?")
    )
}

/// The blocked resources of a denial, a timeout or a deadlock, as views;
/// none for other errors.
pub(crate) fn denial_views(e: &AcquireError, program: &Program, hub: &Hub) -> Vec<BlockedView> {
    let denial = match e {
        AcquireError::Denied(d) | AcquireError::Timeout(d) => d,
        AcquireError::Deadlock { denial, .. } => denial,
        _ => return Vec::new(),
    };
    denial
        .blocked
        .iter()
        .map(|b| views::blocked(hub, program, b))
        .collect()
}

/// Per blocked resource, the line `blocked_text` gives it.
pub(crate) fn progress_lines(views: &[BlockedView]) -> Vec<String> {
    blocked_text(views).lines().map(str::to_string).collect()
}

/// `` `a::f` is `` or `` `a::f`, `a::g` are ``, for the start of a sentence.
fn names(list: &[String]) -> String {
    match list.len() {
        0 => "nothing".into(),
        1 => format!("{} is", backticked(list)),
        _ => format!("{} are", backticked(list)),
    }
}

fn conflict_text(c: &super::types::ConflictView) -> String {
    let mut out = format!(
        "{}: base {} -> current {}",
        c.function,
        &c.base[..12],
        c.current
            .as_deref()
            .map(|h| &h[..12])
            .unwrap_or("(deleted)")
    );
    for commit in &c.commits {
        out.push_str(&format!(
            "\n  r{} by {} ({}): {}",
            commit.revision, commit.agent_name, commit.agent_id, commit.summary
        ));
    }
    out.push_str(&super::summary::diff_text(&c.diff));
    for o in &c.overlaps {
        out.push_str(&format!("\n  overlap: {o}"));
    }
    if let Some(text) = &c.current_text {
        out.push_str("\ncurrent:\n");
        out.push_str(text);
    }
    out
}

/// Maps a JSON-RPC-level argument problem in a tool (after decoding).
pub fn bad_arg(field: &str, problem: impl std::fmt::Display) -> ToolFailure {
    ToolFailure::invalid_params(format!("`{field}`: {problem}"))
}

/// A malformed function reference in `field`, with the existing names
/// closest to what was written (as `suggestions` in the error's data).
pub fn bad_function_arg(
    field: &str,
    problem: impl std::fmt::Display,
    suggestions: &[crate::graph::QualifiedName],
) -> ToolFailure {
    let names: Vec<&str> = suggestions.iter().map(|n| n.as_str()).collect();
    ToolFailure::Rpc(ErrorData::invalid_params(
        format!("`{field}`: {problem}{}", did_you_mean(&names)),
        Some(json!({ "suggestions": names })),
    ))
}

pub fn details_json(f: &ToolFailure) -> Value {
    match f {
        ToolFailure::Actionable { info, details, .. } => {
            let mut d = details.clone();
            d.insert("error".into(), json!(info));
            Value::Object(d)
        }
        ToolFailure::Rpc(e) => json!({"rpc_error": e.message}),
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
