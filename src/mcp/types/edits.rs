//! Arguments and results of propose_edit, with the edit-op shapes.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use super::*;

// ---------------------------------------------------------------------------
// propose_edit

/// A node: `"%3"` (or 3), or `"$x"` named by an earlier `as`.
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
    /// Existing ids keep their node; others are new.
    pub id: u32,
    pub op: String,
    #[serde(default)]
    pub inputs: Vec<u32>,
}

// One edit op: an object with one key naming the op.
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
    /// Set the doc (leave `doc` out to clear it).
    SetDoc {
        function: FunctionArg,
        doc: Option<String>,
    },
    /// Replace every node: `text` (node lines or a whole function) or `nodes`.
    ReplaceBody {
        function: FunctionArg,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nodes: Option<Vec<NodeSpecArg>>,
    },
    /// Create a function: `text`, or name, params, returns (doc, body).
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

/// `ops`, each checked for the one-key shape first, so that an unknown or
/// misshapen edit op is named, with every edit op listed, instead of
/// serde's "expected map with a single key".
fn edit_ops<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EditOpArg>, D::Error> {
    let raw = Vec::<serde_json::Value>::deserialize(d)?;
    raw.into_iter()
        .enumerate()
        .map(|(idx, v)| {
            let e = |m: String| serde::de::Error::custom(format!("`ops[{idx}]`: {m}"));
            edit_op_shape(&v).map_err(e)?;
            EditOpArg::deserialize(v).map_err(|x| e(x.to_string()))
        })
        .collect()
}

/// Checks that `v` is `{"<edit op>": {...}}`, or says what it is instead.
fn edit_op_shape(v: &serde_json::Value) -> Result<(), String> {
    use super::super::reference::edit_op_names;
    use crate::graph::suggest::{closest_names, did_you_mean};
    let all = || {
        let names: Vec<&str> = edit_op_names().collect();
        format!("the edit ops are {}", names.join(", "))
    };
    let known = |name: &str| edit_op_names().any(|n| n == name);
    let unknown = |name: &str| {
        let name: String = name.chars().take(100).collect();
        format!(
            "unknown edit op `{name}`{}; {}",
            did_you_mean(&closest_names(&name, edit_op_names())),
            all()
        )
    };
    let serde_json::Value::Object(map) = v else {
        return Err(format!(
            "an edit op is an object with one key naming it, like {{\"set_op\": {{...}}}}, got {}; {}",
            kind(v),
            all()
        ));
    };
    if map.len() == 1 {
        let (name, _) = map.iter().next().expect("one entry");
        return if known(name) {
            Ok(())
        } else {
            Err(unknown(name))
        };
    }
    if let Some(serde_json::Value::String(name)) = map.get("op")
        && known(name)
    {
        return Err(format!(
            "write the edit op as an object with one key naming it, {{\"{name}\": {{...the other fields...}}}}, not {{\"op\": \"{name}\", ...}}"
        ));
    }
    let keys: Vec<String> = map.keys().take(10).map(|k| format!("`{k}`")).collect();
    Err(match map.keys().find(|k| known(k)) {
        Some(name) => format!(
            "an edit op has exactly one key, its name (`{name}`), with its fields inside; got keys {}",
            keys.join(", ")
        ),
        None if map.is_empty() => format!(
            "an edit op is an object with one key naming it; got {{}}; {}",
            all()
        ),
        None => format!(
            "an edit op is an object with one key naming it; got keys {}; {}",
            keys.join(", "),
            all()
        ),
    })
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
    /// Applied in order, all or nothing.
    #[serde(deserialize_with = "edit_ops")]
    pub ops: Vec<EditOpArg>,
    /// Function -> hash your ops are based on (default: your last read).
    #[serde(default)]
    pub base: Option<BTreeMap<String, String>>,
    /// `merge` (default): rebase onto changes that do not overlap;
    /// `reject`: refuse a stale base.
    #[serde(default)]
    pub on_conflict: OnConflictArg,
    /// Check everything, commit nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Recorded in the history.
    #[serde(default)]
    pub purpose: Option<String>,
    /// A repeat with this id returns the first outcome, applied once.
    #[serde(default)]
    pub request_id: Option<String>,
    // Explained by register_agent and the server's instructions, not
    // repeated in every tool's schema.
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
    /// The node id each `as` alias got (`"$x": "%4"`, in the function of
    /// the op that named it).
    pub aliases: BTreeMap<String, String>,
    /// Your `request_id` was already committed at `revision`; nothing was
    /// applied again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repeated: bool,
}
