//! Arguments and results of the tools that read: agents, the program, one
//! function, verification, runs, history and diffs.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use super::*;

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
    /// Seconds since `last_active`; 0 while a call of the agent is in flight.
    pub idle_s: u64,
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
    /// What operators did (ended an agent, broke a lock; for a function,
    /// the locks broken on it), oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operator_events: Vec<OperatorEventView>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct OperatorEventView {
    pub time: String,
    /// `end_agent` or `break_lock`.
    pub action: String,
    pub operator: String,
    pub agent_id: String,
    pub agent_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    pub detail: String,
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
