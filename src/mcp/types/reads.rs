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
    /// Display name (default: the client's).
    #[serde(default)]
    pub name: Option<String>,
    /// Your work; shown to agents your locks block.
    #[serde(default)]
    pub purpose: Option<String>,
    /// Your handle, to rename yourself; omit to register.
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
    /// Secret handle of your agent, on every transport: pass it as
    /// `session` on every later call over HTTP without a protocol session,
    /// and to `cograph lock` or `cograph guard` as `COGRAPH_AGENT` to act
    /// as this agent from a shell. It ends with the agent; never shown to
    /// others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

// ---------------------------------------------------------------------------
// list_agents

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListAgentsArgs {
    // Explained by register_agent and the server's instructions, not
    // repeated in every tool's schema.
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
    // Explained by register_agent and the server's instructions, not
    // repeated in every tool's schema.
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
    // Explained by register_agent and the server's instructions, not
    // repeated in every tool's schema.
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
    /// Set when the read was not recorded (a stateless call without
    /// `session`): what a later propose_edit needs instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Current lock holders: `alice (write)`, `bob (read, on module:math)`.
    pub locked_by: Vec<String>,
}

// ---------------------------------------------------------------------------
// verify_all / run_function / history / diff

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyAllArgs {
    // Explained by register_agent and the server's instructions, not
    // repeated in every tool's schema.
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
    /// One per parameter (`null` for unit; `"inf"`, `"-inf"`, `"NaN"`).
    #[serde(default)]
    #[schemars(schema_with = "scalars")]
    pub args: Vec<serde_json::Value>,
    /// Step budget (at most the server's).
    #[serde(default)]
    pub fuel: Option<u64>,
    // Explained by register_agent and the server's instructions, not
    // repeated in every tool's schema.
    #[serde(default)]
    pub session: SessionArg,
}

/// A value of the program: a number, a boolean, a string (a non-finite
/// f64) or null (unit). Written out because `serde_json::Value`'s schema is
/// `true`, which strict schema checkers refuse.
fn scalar(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"anyOf": [
        {"type": "number"}, {"type": "boolean"}, {"type": "string"}, {"type": "null"}
    ]})
}

fn scalars(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let items = scalar(generator);
    schemars::json_schema!({"type": "array", "items": items, "default": []})
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RunFunctionResult {
    pub function: String,
    /// The result: a number, a boolean, or null for unit (non-finite f64
    /// values as strings).
    #[schemars(schema_with = "scalar")]
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
    pub before_revision: Option<RevisionArg>,
    /// At most this many, 1 to 200 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
    // Explained by register_agent and the server's instructions, not
    // repeated in every tool's schema.
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
    /// What operators did (ended an agent, broke a lock), oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operator_events: Vec<String>,
}

/// One operator action; it reaches agents as its line of text
/// (`views::operator_event_line`), `cograph log` shows the same line.
#[derive(Debug)]
pub struct OperatorEventView {
    pub time: String,
    /// `end_agent` or `break_lock`.
    pub action: String,
    pub operator: String,
    pub agent_id: String,
    pub agent_name: String,
    pub function: Option<String>,
    pub detail: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiffArgs {
    pub function: FunctionArg,
    /// Default: your last read, else the previous version.
    #[serde(default)]
    pub from: Option<VersionArg>,
    /// Default: current.
    #[serde(default)]
    pub to: Option<VersionArg>,
    // Explained by register_agent and the server's instructions, not
    // repeated in every tool's schema.
    #[serde(default)]
    pub session: SessionArg,
}

/// A revision number in any of the spellings agents see: `5`, `"5"` or
/// `"r5"` (as text summaries write it). The one parser of revisions.
pub fn parse_revision(text: &str) -> Option<u64> {
    let digits = text.strip_prefix('r').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A revision: `5`, `"5"` or `"r5"`.
#[derive(Clone, Copy, Debug)]
pub struct RevisionArg(pub u64);

impl JsonSchema for RevisionArg {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Revision".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A revision: 5, \"5\" or \"r5\".",
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": "^r?[0-9]+$"}
            ]
        })
    }
}

impl<'de> Deserialize<'de> for RevisionArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match &v {
            serde_json::Value::Number(n) if n.as_u64().is_some() => {
                Ok(RevisionArg(n.as_u64().unwrap_or_default()))
            }
            serde_json::Value::String(s) if parse_revision(s).is_some() => {
                Ok(RevisionArg(parse_revision(s).unwrap_or_default()))
            }
            _ => Err(serde::de::Error::custom(format!(
                "expected a revision (5, \"5\" or \"r5\"), got {}",
                kind(&v)
            ))),
        }
    }
}

/// A version: a revision (`5`, `"5"` or `"r5"`: the function as of that
/// revision) or a content hash.
#[derive(Clone, Debug, JsonSchema)]
#[serde(untagged)]
pub enum VersionArg {
    Revision(u64),
    /// `"5"`, `"r5"` or a hash of 64 hex characters.
    Hash(String),
}

impl<'de> Deserialize<'de> for VersionArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match &v {
            serde_json::Value::Number(n) if n.as_u64().is_some() => {
                Ok(VersionArg::Revision(n.as_u64().unwrap_or_default()))
            }
            serde_json::Value::String(s) => Ok(match parse_revision(s) {
                Some(r) => VersionArg::Revision(r),
                None => VersionArg::Hash(s.clone()),
            }),
            _ => Err(serde::de::Error::custom(format!(
                "expected a revision (5, \"5\" or \"r5\") or a content hash, got {}",
                kind(&v)
            ))),
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DiffResult {
    pub function: String,
    pub from: String,
    pub to: String,
    pub diff: DiffView,
}
