//! The tools' argument and result types: what crosses the wire, with JSON
//! schemas. Core types never derive `JsonSchema`; these do, and convert
//! from them explicitly.
//!
//! Conventions: function ids are integers and names strings, and every
//! `function` argument takes either; node ids are written `"%3"` as in the
//! text form; hashes are 64 hex characters; times are RFC 3339 UTC.

use std::collections::BTreeMap;

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

/// A function by id (`7`) or by name (`"math::fib"`; `"#7"` also works).
#[derive(Clone, Debug, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(untagged)]
pub enum FunctionArg {
    Id(u64),
    Name(String),
}

/// The JSON kind of a value, for error messages.
fn kind(v: &serde_json::Value) -> &'static str {
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
}

impl ErrorCode {
    /// Every code, in the order DESIGN.md lists them.
    pub const ALL: [ErrorCode; 13] = [
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
    ];
}

/// A lock mode: `read` (shared) or `write` (exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Read,
    Write,
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

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct HolderView {
    pub agent_id: String,
    pub agent_name: String,
    pub mode: Mode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    pub since: String,
    pub expires_at: String,
    pub fencing_token: u64,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct WaiterView {
    pub agent_id: String,
    pub agent_name: String,
    pub mode: Mode,
    /// 1-based place in the queue.
    pub position: usize,
    pub since: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct BlockedView {
    pub function_id: u64,
    pub function: String,
    /// Holders whose lock conflicts with the request.
    pub holders: Vec<HolderView>,
    /// Earlier waiters whose request conflicts (FIFO fairness).
    pub waiting_ahead: Vec<WaiterView>,
    /// Your place in this function's queue (the place you would take if
    /// you waited).
    pub queue_position: usize,
    pub queue_length: usize,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct NodeView {
    /// `%3`.
    pub id: String,
    /// The op as in the text form: `add`, `const 5`, `call math::fib`.
    pub op: String,
    pub inputs: Vec<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct NodeChangeView {
    pub id: String,
    pub before: NodeView,
    pub after: NodeView,
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
    pub nodes_added: Vec<NodeView>,
    pub nodes_removed: Vec<NodeView>,
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

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CommitView {
    pub revision: u64,
    pub time: String,
    pub agent_id: String,
    pub agent_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    pub summary: String,
    pub changes: Vec<ChangeView>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct DiagnosticView {
    pub function_id: u64,
    pub function: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Stable code, e.g. `type_mismatch`, `unknown_callee`.
    pub code: String,
    pub message: String,
    pub hint: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct LockedView {
    pub function_id: u64,
    pub function: String,
    pub holders: Vec<HolderView>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ConflictView {
    pub function_id: u64,
    pub function: String,
    /// The version your ops were written against.
    pub base: String,
    /// The version now (absent if the function was deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// The commits between base and current, oldest first.
    pub commits: Vec<CommitView>,
    /// Base → current.
    pub diff: DiffView,
    /// Why your ops could not be rebased onto current.
    pub overlaps: Vec<String>,
    /// The current function in the text form; it now counts as your read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_text: Option<String>,
}

// ---------------------------------------------------------------------------
// register_agent

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterAgentArgs {
    /// Display name others see (defaults to the client's name).
    #[serde(default)]
    pub name: Option<String>,
    /// What you are working on; shown to agents your locks block.
    #[serde(default)]
    pub purpose: Option<String>,
    /// Your existing handle, to rename yourself; omit to register.
    #[serde(default)]
    pub session: SessionArg,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RegisterAgentResult {
    pub agent_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// `stdio`, `http_session`, `http_stateless` or `in_process`.
    pub transport: TransportView,
    /// Secret handle: pass it as `session` on every later call. Only
    /// returned when a stateless agent is created; never shown to others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

// ---------------------------------------------------------------------------
// list_agents

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListAgentsArgs {
    /// Secret handle from register_agent; only for HTTP clients without a
    /// protocol session.
    #[serde(default)]
    pub session: SessionArg,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AgentView {
    pub agent_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    pub transport: TransportView,
    pub connected_since: String,
    pub last_active: String,
    pub locks_held: usize,
    /// True for the caller.
    pub you: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ListAgentsResult {
    pub agents: Vec<AgentView>,
}

// ---------------------------------------------------------------------------
// program_overview

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgramOverviewArgs {
    /// Only functions of this module (and its submodules).
    #[serde(default)]
    pub module: Option<String>,
    /// `next_cursor` from the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (default 200).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Secret handle from register_agent; only for HTTP clients without a
    /// protocol session.
    #[serde(default)]
    pub session: SessionArg,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FunctionSummary {
    pub id: u64,
    pub name: String,
    /// `(n: i64) -> i64`.
    pub signature: String,
    pub hash: String,
    /// The revision that made this version.
    pub revision: u64,
    pub n_nodes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    /// Agents holding a lock on it now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locked_by: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ProgramOverviewResult {
    pub revision: u64,
    pub root_hash: String,
    pub n_functions: usize,
    pub functions: Vec<FunctionSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

// ---------------------------------------------------------------------------
// get_function

#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetFunctionArgs {
    pub function: FunctionArg,
    /// `text` (default) or `json` (nodes as data).
    #[serde(default)]
    pub format: Format,
    /// Secret handle from register_agent; only for HTTP clients without a
    /// protocol session.
    #[serde(default)]
    pub session: SessionArg,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct GetFunctionResult {
    pub id: u64,
    pub name: String,
    /// Content hash: the base your next edit is checked against.
    pub hash: String,
    pub revision: u64,
    pub signature: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    /// The function in the text form (format `text`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The nodes as data (format `json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<NodeView>>,
    /// The id the next added node will get.
    pub next_node: String,
    /// Whether this read now counts as your base for edits (false without
    /// an agent identity).
    pub read_recorded: bool,
    /// Current lock holders.
    pub locked_by: Vec<HolderView>,
}

// ---------------------------------------------------------------------------
// acquire_locks / release_locks / lock_status

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LockArg {
    pub function: FunctionArg,
    /// `read` (shared) or `write` (exclusive).
    pub mode: Mode,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcquireLocksArgs {
    /// All granted together or none.
    pub locks: Vec<LockArg>,
    /// How long to wait in the queue, in ms (default 0, at most 600000).
    #[serde(default)]
    pub wait_ms: Option<u64>,
    /// Lease length in ms (default 30 minutes); no heartbeat needed.
    #[serde(default)]
    pub ttl_ms: Option<u64>,
    /// Shown to agents your locks block.
    #[serde(default)]
    pub purpose: Option<String>,
    /// Secret handle from register_agent; only for HTTP clients without a
    /// protocol session.
    #[serde(default)]
    pub session: SessionArg,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct GrantedView {
    pub function_id: u64,
    pub function: String,
    pub mode: Mode,
    pub fencing_token: u64,
    pub expires_at: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AcquireLocksResult {
    pub granted: Vec<GrantedView>,
    pub fencing_token: u64,
    pub waited_ms: u64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseLocksArgs {
    /// Functions to release; omit to release all your locks.
    #[serde(default)]
    pub functions: Option<Vec<FunctionArg>>,
    /// Secret handle from register_agent; only for HTTP clients without a
    /// protocol session.
    #[serde(default)]
    pub session: SessionArg,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ReleasedView {
    pub function_id: u64,
    pub function: String,
    pub mode: Mode,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ReleaseLocksResult {
    pub released: Vec<ReleasedView>,
    /// What you still hold.
    pub still_held: Vec<GrantedView>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LockStatusArgs {
    /// Only this function; omit for every locked function.
    #[serde(default)]
    pub function: Option<FunctionArg>,
    /// Secret handle from register_agent; only for HTTP clients without a
    /// protocol session.
    #[serde(default)]
    pub session: SessionArg,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LockView {
    pub function_id: u64,
    pub function: String,
    pub holders: Vec<HolderView>,
    pub waiters: Vec<WaiterView>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LockStatusResult {
    pub locks: Vec<LockView>,
    /// The locks the caller holds (empty without an identity).
    pub yours: Vec<GrantedView>,
}

// ---------------------------------------------------------------------------
// propose_edit

/// A node: `"%3"` (or the number 3), or `"$name"` for a node added earlier
/// in the same request with `as`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum NodeArg {
    Id(u32),
    Ref(String),
}

impl<'de> Deserialize<'de> for NodeArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match &v {
            serde_json::Value::Number(n) if n.as_u64().is_some_and(|x| x <= u32::MAX as u64) => {
                Ok(NodeArg::Id(n.as_u64().unwrap_or_default() as u32))
            }
            serde_json::Value::String(s) => Ok(NodeArg::Ref(s.clone())),
            _ => Err(serde::de::Error::custom(format!(
                "expected a node like \"%3\" or \"$name\", got {}",
                kind(&v)
            ))),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamArg {
    pub name: String,
    /// `i64`, `f64`, `bool` or `unit`.
    #[serde(rename = "type")]
    pub ty: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeSpecArg {
    /// A label like in the text form; ids already in the function keep
    /// their identity, others become new nodes.
    pub id: u32,
    pub op: String,
    #[serde(default)]
    pub inputs: Vec<u32>,
}

/// One edit op, as an object with one key naming the op.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum EditOpArg {
    /// Add a node; `as: "$x"` names it for later ops.
    AddNode {
        function: FunctionArg,
        /// `add`, `const 5`, `param 0`, `call m::g`, ...
        op: String,
        #[serde(default)]
        inputs: Vec<NodeArg>,
        #[serde(rename = "as", default, skip_serializing_if = "Option::is_none")]
        alias: Option<String>,
    },
    /// Remove a node nothing uses.
    RemoveNode {
        function: FunctionArg,
        node: NodeArg,
    },
    /// Replace a node's inputs.
    SetInputs {
        function: FunctionArg,
        node: NodeArg,
        inputs: Vec<NodeArg>,
    },
    /// Replace a node's op (inputs stay).
    SetOp {
        function: FunctionArg,
        node: NodeArg,
        op: String,
    },
    SetSignature {
        function: FunctionArg,
        params: Vec<ParamArg>,
        returns: String,
    },
    /// Set or clear (`null`) the doc.
    SetDoc {
        function: FunctionArg,
        doc: Option<String>,
    },
    /// Replace every node: `text` (node lines, or the whole function) or
    /// `nodes`.
    ReplaceBody {
        function: FunctionArg,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nodes: Option<Vec<NodeSpecArg>>,
    },
    /// Create a function: `text` (a whole function) or name, params,
    /// returns and optional doc and body.
    CreateFunction {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        params: Option<Vec<ParamArg>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        returns: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        doc: Option<String>,
        /// Node lines, if not given in `text`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
    },
    DeleteFunction {
        function: FunctionArg,
    },
    RenameFunction {
        function: FunctionArg,
        new_name: String,
    },
}

#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnConflictArg {
    #[default]
    Merge,
    // `fail`, the name of an earlier version, is still accepted.
    #[serde(alias = "fail")]
    Reject,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeEditArgs {
    /// Applied in order, all or nothing, possibly across functions.
    pub ops: Vec<EditOpArg>,
    /// Function → hash your ops were written against; defaults to your
    /// last read of each function.
    #[serde(default)]
    pub base: Option<BTreeMap<String, String>>,
    /// `merge` (default): rebase onto concurrent changes that do not
    /// overlap yours. `reject`: refuse whenever the base is stale.
    #[serde(default)]
    pub on_conflict: OnConflictArg,
    /// Check everything, commit nothing (a conflict found this way does not
    /// count toward `too_many_conflicts`).
    #[serde(default)]
    pub dry_run: bool,
    /// Recorded in the history.
    #[serde(default)]
    pub purpose: Option<String>,
    /// Secret handle from register_agent; only for HTTP clients without a
    /// protocol session.
    #[serde(default)]
    pub session: SessionArg,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FunctionOutcomeView {
    pub function_id: u64,
    pub function: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Your ops were rebased onto concurrent changes.
    pub merged: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AliasView {
    pub function_id: u64,
    pub node: String,
}

/// What became of a propose_edit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EditStatus {
    /// Durable at `revision`.
    Committed,
    /// Checked, not committed (`dry_run: true`).
    DryRun,
    /// The ops changed nothing; no revision was made.
    Unchanged,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ProposeEditResult {
    pub status: EditStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    pub functions: Vec<FunctionOutcomeView>,
    /// Functions incremental verification checked.
    pub verified: Vec<String>,
    /// Where each `as` alias landed.
    pub aliases: BTreeMap<String, AliasView>,
}

// ---------------------------------------------------------------------------
// verify_all / run_function / history / diff

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyAllArgs {
    /// Secret handle from register_agent; only for HTTP clients without a
    /// protocol session.
    #[serde(default)]
    pub session: SessionArg,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct VerifyAllResult {
    pub ok: bool,
    pub revision: u64,
    pub root_hash: String,
    pub n_functions: usize,
    pub n_nodes: usize,
    pub diagnostics: Vec<DiagnosticView>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunFunctionArgs {
    pub function: FunctionArg,
    /// One per parameter: numbers, booleans, `null` for unit;
    /// `"inf"`, `"-inf"`, `"NaN"` for those f64 values.
    #[serde(default)]
    pub args: Vec<serde_json::Value>,
    /// Node evaluations allowed (default and cap: the server's).
    #[serde(default)]
    pub fuel: Option<u64>,
    /// Secret handle from register_agent; only for HTTP clients without a
    /// protocol session.
    #[serde(default)]
    pub session: SessionArg,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RunFunctionResult {
    pub function_id: u64,
    pub function: String,
    /// The result: a number, a boolean, or null for unit (non-finite f64
    /// values as strings).
    pub value: serde_json::Value,
    /// The value in the text form's literal syntax.
    pub literal: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub steps: u64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryArgs {
    /// Only commits that changed this function.
    #[serde(default)]
    pub function: Option<FunctionArg>,
    /// Commits before this revision (for paging back).
    #[serde(default)]
    pub before_revision: Option<u64>,
    /// At most this many, 1 to 200 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Secret handle from register_agent; only for HTTP clients without a
    /// protocol session.
    #[serde(default)]
    pub session: SessionArg,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HistoryResult {
    /// Newest first.
    pub commits: Vec<CommitView>,
    /// Pass as `before_revision` for older commits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before_revision: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiffArgs {
    pub function: FunctionArg,
    /// A revision number or a hash; default: your last read, else the
    /// version before the current one.
    #[serde(default)]
    pub from: Option<VersionArg>,
    /// A revision number or a hash; default: the current version.
    #[serde(default)]
    pub to: Option<VersionArg>,
    /// Secret handle from register_agent; only for HTTP clients without a
    /// protocol session.
    #[serde(default)]
    pub session: SessionArg,
}

/// A version: a revision number (the function as of that revision) or a
/// content hash.
#[derive(Clone, Debug, JsonSchema)]
#[serde(untagged)]
pub enum VersionArg {
    Revision(u64),
    Hash(String),
}

impl<'de> Deserialize<'de> for VersionArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match &v {
            serde_json::Value::Number(n) if n.as_u64().is_some() => {
                Ok(VersionArg::Revision(n.as_u64().unwrap_or_default()))
            }
            serde_json::Value::String(s) => Ok(VersionArg::Hash(s.clone())),
            _ => Err(serde::de::Error::custom(format!(
                "expected a revision number or a content hash, got {}",
                kind(&v)
            ))),
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DiffResult {
    pub function_id: u64,
    pub function: String,
    pub from: String,
    pub to: String,
    pub diff: DiffView,
}
