//! The tools' argument and result types: what crosses the wire, with JSON
//! schemas. Core types never derive `JsonSchema`; these do, and convert
//! from them explicitly.
//!
//! Conventions: function ids are integers and names strings, and every
//! `function` argument takes either; node ids are written `"%3"` as in the
//! text form; hashes are 64 hex characters; times are RFC 3339 UTC.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

/// Tool arguments decoded with the path of the offending field in any
/// error, so that `ops[2].add_node.inputs[0]: invalid type` names it.
pub struct Checked<T>(pub T);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Checked<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_path_to_error::deserialize(d)
            .map(Checked)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if path == "." {
                    inner
                } else {
                    serde::de::Error::custom(format!("`{path}`: {inner}"))
                }
            })
    }
}

impl<T: JsonSchema> JsonSchema for Checked<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }

    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

/// Id or `module::name`.
#[derive(Clone, Debug, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(untagged)]
pub enum FunctionArg {
    Id(u64),
    Name(String),
}

/// The JSON kind of a value, for error messages.
pub(crate) fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

impl<'de> Deserialize<'de> for FunctionArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match &v {
            serde_json::Value::Number(n) if n.as_u64().is_some() => {
                Ok(FunctionArg::Id(n.as_u64().unwrap_or_default()))
            }
            serde_json::Value::String(s) if !s.is_empty() => Ok(FunctionArg::Name(s.clone())),
            _ => Err(serde::de::Error::custom(format!(
                "expected a function name like \"module::name\" or a function id (a non-negative integer), got {}",
                if matches!(&v, serde_json::Value::String(_)) {
                    "an empty string"
                } else {
                    kind(&v)
                }
            ))),
        }
    }
}

impl FunctionArg {
    /// The reference, through the one parser every tool shares.
    pub fn to_ref(&self) -> Result<crate::graph::FunctionRef, crate::graph::FunctionRefError> {
        match self {
            FunctionArg::Id(id) => Ok(crate::graph::FunctionRef::Id(crate::graph::FunctionId(*id))),
            FunctionArg::Name(text) => crate::graph::FunctionRef::parse(text),
        }
    }
}

/// The secret handle from `register_agent`, for clients without protocol
/// sessions (MCP 2026-07-28 over HTTP). Others leave it out.
pub type SessionArg = Option<String>;

// ---------------------------------------------------------------------------
// Common views

/// The stable code of a failure an agent can act on (DESIGN.md section 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    LockDenied,
    LockTimeout,
    Deadlock,
    LockExpired,
    Conflict,
    TooManyConflicts,
    ReadRequired,
    VerificationFailed,
    NotFound,
    InvalidEdit,
    RuntimeError,
    SessionRequired,
    Cancelled,
    TooManyAgents,
}

impl ErrorCode {
    /// Every code, in the order DESIGN.md lists them.
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::LockDenied,
        ErrorCode::LockTimeout,
        ErrorCode::Deadlock,
        ErrorCode::LockExpired,
        ErrorCode::Conflict,
        ErrorCode::TooManyConflicts,
        ErrorCode::ReadRequired,
        ErrorCode::VerificationFailed,
        ErrorCode::NotFound,
        ErrorCode::InvalidEdit,
        ErrorCode::RuntimeError,
        ErrorCode::SessionRequired,
        ErrorCode::Cancelled,
        ErrorCode::TooManyAgents,
    ];
}

/// A lock mode: `read` (shared) or `write` (exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Read,
    Write,
}

/// What a lock names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KindArg {
    Function,
    Module,
    Path,
    Named,
    Semaphore,
}

/// How an agent is connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransportView {
    Stdio,
    HttpSession,
    HttpStateless,
    InProcess,
}

/// Gives a closed set its wire spelling: `as_str`, and `Display` with the
/// same text. The spellings must match the serde names (a unit test checks).
macro_rules! wire_names {
    ($ty:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $ty {
            /// The spelling on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text),*
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_names!(ErrorCode {
    LockDenied => "lock_denied",
    LockTimeout => "lock_timeout",
    Deadlock => "deadlock",
    LockExpired => "lock_expired",
    Conflict => "conflict",
    TooManyConflicts => "too_many_conflicts",
    ReadRequired => "read_required",
    VerificationFailed => "verification_failed",
    NotFound => "not_found",
    InvalidEdit => "invalid_edit",
    RuntimeError => "runtime_error",
    SessionRequired => "session_required",
    Cancelled => "cancelled",
    TooManyAgents => "too_many_agents",
});
wire_names!(Mode { Read => "read", Write => "write" });
wire_names!(TransportView {
    Stdio => "stdio",
    HttpSession => "http_session",
    HttpStateless => "http_stateless",
    InProcess => "in_process",
});
wire_names!(EditStatus {
    Committed => "committed",
    DryRun => "dry_run",
    Unchanged => "unchanged",
});

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ErrorInfo {
    pub code: ErrorCode,
    pub message: String,
    /// What to do next.
    pub hint: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct AgentRef {
    pub agent_id: String,
    pub name: String,
}

/// An agent's claim on a resource: a holder's (`expires_at`, `idle_s`) or
/// a waiter's (`position`, 1-based, in arrival order). One type for both,
/// so a tool's schema declares it once. (Also read back by the command
/// line from the admin socket, hence `Deserialize`.)
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ClaimView {
    pub agent_id: String,
    pub agent_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permits: Option<u32>,
    /// What it holds or waits for, when not the resource shown (`src/`
    /// above `src/a.rs`); with `below`, its locks are under the one shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub below: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    pub since: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    // Seconds since the holder's last activity (0 while a call of it is
    // in flight, absent once it has ended). A holder's fencing token is
    // not shown: it is the holder's proof of the lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
}

pub type HolderView = ClaimView;
pub type WaiterView = ClaimView;

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct BlockedView {
    pub resource: String,
    /// Holders whose lock conflicts with the request.
    pub holders: Vec<HolderView>,
    /// Earlier waiters whose request conflicts (FIFO fairness).
    pub waiting_ahead: Vec<WaiterView>,
    /// Your place in this function's queue (the place you would take if
    /// you waited).
    pub queue_position: usize,
    pub queue_length: usize,
    /// A semaphore's capacity and the permits held of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_use: Option<u32>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct NodeView {
    /// `%3`.
    pub id: String,
    /// The op as in the text form: `add`, `const 5`, `call math::fib`.
    pub op: String,
    pub inputs: Vec<String>,
}

/// A node whose op or inputs changed: its line in the text form before
/// and after (`%3 = add %1, %2`).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct NodeChangeView {
    pub id: String,
    pub before: String,
    pub after: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct EdgeView {
    pub from: String,
    pub to: String,
    /// The input position of `to` that `from` feeds.
    pub port: u32,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TextChange {
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct DiffView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<TextChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc: Option<TextChange>,
    /// `(n: i64) -> i64` before and after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<TextChange>,
    /// Text-form lines, `%3 = add %1, %2`.
    pub nodes_added: Vec<String>,
    pub nodes_removed: Vec<String>,
    pub nodes_changed: Vec<NodeChangeView>,
    pub edges_added: Vec<EdgeView>,
    pub edges_removed: Vec<EdgeView>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ChangeView {
    pub function_id: u64,
    pub function: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// A commit as a conflict names it: who, when, why, without the hashes.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CommitRef {
    pub revision: u64,
    pub time: String,
    pub agent_id: String,
    pub agent_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    pub summary: String,
}

/// A commit as `history` shows it: [`CommitRef`] and every function it
/// changed, with the hashes before and after.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CommitView {
    #[serde(flatten)]
    pub commit: CommitRef,
    pub changes: Vec<ChangeView>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct DiagnosticView {
    pub function: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Stable code, e.g. `type_mismatch`, `unknown_callee`.
    pub code: String,
    pub message: String,
    pub hint: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ConflictView {
    pub function: String,
    /// The version your ops were written against.
    pub base: String,
    /// The version now (absent if the function was deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// The commits between base and current, oldest first.
    pub commits: Vec<CommitRef>,
    /// Base → current.
    pub diff: DiffView,
    /// Why your ops could not be rebased onto current.
    pub overlaps: Vec<String>,
    /// The current function in the text form; it now counts as your read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_text: Option<String>,
}

mod edits;
mod errors;
mod locks;
mod reads;

pub use edits::*;
pub use errors::*;
pub use locks::*;
pub use reads::*;
