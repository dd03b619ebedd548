//! A function: qualified name, doc, signature and its dataflow graph of
//! nodes.
//!
//! A `Function` is plain data. It does not check itself: a function may hold
//! a node whose input does not exist or a call to a function that is gone,
//! and `verify` says so. What it does guarantee is its node-id counter:
//! `next_node` is above every id the function has ever used.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::ids::{FunctionId, NodeId};
use super::op::Op;
use super::types::Type;

/// `module::name`, with one or more module segments. Each segment is an
/// identifier: an ASCII letter or `_`, then letters, digits or `_`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QualifiedName(Arc<str>);

/// Returns true if and only if `text` is an identifier.
pub fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl QualifiedName {
    /// Checks the spelling; the error says what is wrong with it.
    pub fn new(text: &str) -> Result<QualifiedName, String> {
        if !text.contains("::") {
            return Err(format!(
                "`{text}` is not a qualified name: expected `module::name`"
            ));
        }
        for segment in text.split("::") {
            if !is_identifier(segment) {
                return Err(format!(
                    "`{text}` is not a qualified name: `{segment}` is not an identifier"
                ));
            }
        }
        Ok(QualifiedName(Arc::from(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Everything before the last `::`.
    pub fn module(&self) -> &str {
        self.0.rsplit_once("::").map(|(m, _)| m).unwrap_or("")
    }

    /// The last segment.
    pub fn short_name(&self) -> &str {
        self.0.rsplit_once("::").map(|(_, n)| n).unwrap_or(&self.0)
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl Serialize for QualifiedName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for QualifiedName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        QualifiedName::new(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Param {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: Type,
}

/// What callers depend on: parameter names and types, and the return type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signature {
    pub params: Vec<Param>,
    pub returns: Type,
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (idx, p) in self.params.iter().enumerate() {
            if idx > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}: {}", p.name, p.ty)?;
        }
        write!(f, ") -> {}", self.returns)
    }
}

/// An op with its ordered inputs. Data edges are derived from inputs: the
/// edge `input → this node` enters at the input's position (its port).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    pub op: Op,
    pub inputs: Vec<NodeId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    pub name: QualifiedName,
    pub doc: Option<String>,
    pub signature: Signature,
    pub nodes: BTreeMap<NodeId, Node>,
    /// Above every node id this function has used; the next `add_node` gets
    /// it. Part of the content, so a removed node's id is never handed out
    /// again by any later version.
    pub next_node: u32,
}

impl Function {
    pub fn new(name: QualifiedName, signature: Signature) -> Function {
        Function {
            name,
            doc: None,
            signature,
            nodes: BTreeMap::new(),
            next_node: 0,
        }
    }

    /// Adds a node with a fresh id.
    pub fn push_node(&mut self, op: Op, inputs: Vec<NodeId>) -> NodeId {
        let id = NodeId(self.next_node);
        self.next_node += 1;
        self.nodes.insert(id, Node { op, inputs });
        id
    }

    /// The functions this one calls, each once, in id order.
    pub fn callees(&self) -> Vec<FunctionId> {
        let mut out: Vec<FunctionId> = self.nodes.values().filter_map(|n| n.op.callee()).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The nodes that take `node` as an input, in id order.
    pub fn users_of(&self, node: NodeId) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.inputs.contains(&node))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The `next_node` value a function with exactly these nodes would have
    /// if none had ever been removed.
    pub fn dense_next_node(&self) -> u32 {
        self.nodes.keys().next_back().map_or(0, |id| id.0 + 1)
    }

    pub fn n_edges(&self) -> usize {
        self.nodes.values().map(|n| n.inputs.len()).sum()
    }
}
