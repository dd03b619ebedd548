//! The edit-op vocabulary: what an agent can ask to change, and how a node
//! or body is named inside a request. This is also the commit log's format:
//! the store keeps each commit's ops as serde JSON of [`EditOp`], so a change
//! to a serde name or shape here is a change of the on-disk format (golden
//! files pin it; see ARCHITECTURE.md, "On-disk formats"). Applying ops is
//! `edit.rs`; nothing here looks at a program.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::function::{Param, QualifiedName, is_identifier};
use super::function_ref::FunctionRef;
use super::ids::NodeId;
use super::text::OpSpec;
use super::types::Type;

/// A node named by id (`%3`, or the number 3) or by an alias given to a node
/// added earlier in the same request (`$sum`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NodeRef {
    Id(NodeId),
    Alias(String),
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeRef::Id(id) => write!(f, "{id}"),
            NodeRef::Alias(a) => f.write_str(a),
        }
    }
}

impl NodeRef {
    /// Parses `%3`, `3` or `$name`.
    pub fn parse(text: &str) -> Result<NodeRef, String> {
        if let Some(name) = text.strip_prefix('$') {
            if is_identifier(name) {
                return Ok(NodeRef::Alias(text.to_string()));
            }
            return Err(format!(
                "`{text}` is not an alias: expected `$` and an identifier"
            ));
        }
        let digits = text.strip_prefix('%').unwrap_or(text);
        digits
            .parse::<u32>()
            .map(|n| NodeRef::Id(NodeId(n)))
            .map_err(|_| format!("`{text}` is not a node: expected `%3` or `$name`"))
    }
}

impl Serialize for NodeRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NodeRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u32),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(NodeRef::Id(NodeId(n))),
            Raw::Text(t) => NodeRef::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// One node of a body given as data rather than text. Ids label nodes the
/// way `%N` does in the text form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub id: u32,
    pub op: OpSpec,
    #[serde(default)]
    pub inputs: Vec<u32>,
}

/// A whole body: text (node lines, or a whole function whose header matches)
/// or nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    Text(String),
    Nodes(Vec<NodeSpec>),
}

/// An edit op. Serialised externally tagged: `{"add_node": {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EditOp {
    AddNode {
        function: FunctionRef,
        op: OpSpec,
        #[serde(default)]
        inputs: Vec<NodeRef>,
        #[serde(rename = "as", default, skip_serializing_if = "Option::is_none")]
        alias: Option<String>,
    },
    RemoveNode {
        function: FunctionRef,
        node: NodeRef,
    },
    SetInputs {
        function: FunctionRef,
        node: NodeRef,
        inputs: Vec<NodeRef>,
    },
    SetOp {
        function: FunctionRef,
        node: NodeRef,
        op: OpSpec,
    },
    SetSignature {
        function: FunctionRef,
        params: Vec<Param>,
        returns: Type,
    },
    SetDoc {
        function: FunctionRef,
        doc: Option<String>,
    },
    ReplaceBody {
        function: FunctionRef,
        body: Body,
    },
    CreateFunction {
        name: QualifiedName,
        params: Vec<Param>,
        returns: Type,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        doc: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<Body>,
    },
    DeleteFunction {
        function: FunctionRef,
    },
    RenameFunction {
        function: FunctionRef,
        new_name: QualifiedName,
    },
    /// Raises the function-id counter to `next` (never lowers it), so the
    /// next `create_function` gets id `next`. `cograph import` uses it to
    /// recreate a program's exact function ids, gaps included; agents have
    /// no need of it and the tools do not accept it.
    ReserveFunctionIds {
        next: u64,
    },
}

/// The function an op works on, as `&` or `&mut` as `$op` is: one list of
/// the ops that name an existing function, for both accessors.
macro_rules! target_of {
    ($op:expr) => {
        match $op {
            EditOp::AddNode { function, .. }
            | EditOp::RemoveNode { function, .. }
            | EditOp::SetInputs { function, .. }
            | EditOp::SetOp { function, .. }
            | EditOp::SetSignature { function, .. }
            | EditOp::SetDoc { function, .. }
            | EditOp::ReplaceBody { function, .. }
            | EditOp::DeleteFunction { function }
            | EditOp::RenameFunction { function, .. } => Some(function),
            EditOp::CreateFunction { .. } | EditOp::ReserveFunctionIds { .. } => None,
        }
    };
}

impl EditOp {
    pub fn kind(&self) -> &'static str {
        match self {
            EditOp::AddNode { .. } => "add_node",
            EditOp::RemoveNode { .. } => "remove_node",
            EditOp::SetInputs { .. } => "set_inputs",
            EditOp::SetOp { .. } => "set_op",
            EditOp::SetSignature { .. } => "set_signature",
            EditOp::SetDoc { .. } => "set_doc",
            EditOp::ReplaceBody { .. } => "replace_body",
            EditOp::CreateFunction { .. } => "create_function",
            EditOp::DeleteFunction { .. } => "delete_function",
            EditOp::RenameFunction { .. } => "rename_function",
            EditOp::ReserveFunctionIds { .. } => "reserve_function_ids",
        }
    }

    /// The existing function this op works on; `None` for `create_function`
    /// and `reserve_function_ids`.
    pub fn target(&self) -> Option<&FunctionRef> {
        target_of!(self)
    }

    /// Returns true if and only if this op changes the module structure
    /// (creates, deletes or renames a function).
    pub fn is_structural(&self) -> bool {
        matches!(
            self,
            EditOp::CreateFunction { .. }
                | EditOp::DeleteFunction { .. }
                | EditOp::RenameFunction { .. }
                | EditOp::ReserveFunctionIds { .. }
        )
    }

    /// [`EditOp::target`], to re-target it.
    pub fn target_mut(&mut self) -> Option<&mut FunctionRef> {
        target_of!(self)
    }
}
