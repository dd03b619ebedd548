//! Rebase: carrying an agent's edit ops, written against the version of a
//! function it read (the base), onto the version that is current now.
//!
//! Node ids are never reused, so an op that names a node still means the
//! same node after other commits. The ops can therefore be replayed onto the
//! current version unchanged, provided nothing they touch or reference was
//! added, removed or changed in between and neither side changed the
//! signature (DESIGN.md section 6). This file decides that, and names the
//! overlap when it does not hold. Re-targeting function references to ids
//! happens before, in the service, which knows what the agent read.

use std::collections::BTreeSet;
use std::fmt;

use super::diff::{FunctionDiff, diff_functions};
use super::edit::{EditOp, NodeRef};
use super::function::Function;
use super::ids::NodeId;

/// One reason the ops cannot be replayed onto the current version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OverlapReason {
    /// The function was deleted by a concurrent commit.
    Deleted,
    /// Concurrent commits changed the signature.
    SignatureChangedConcurrently,
    /// The request changes the signature while the function changed.
    SignatureChangedByRequest { op_index: usize },
    /// An op touches or references a node that concurrent commits added,
    /// removed or changed.
    Node { op_index: usize, node: NodeId },
    /// An op removes a node that a concurrent commit started to use.
    NodeGainedUser {
        op_index: usize,
        node: NodeId,
        user: NodeId,
    },
    /// An op replaces or deletes the whole function while it changed.
    WholeFunction { op_index: usize },
    /// Both sides changed the doc.
    Doc { op_index: usize },
    /// Both sides renamed the function.
    Name { op_index: usize },
}

impl fmt::Display for OverlapReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OverlapReason::Deleted => write!(f, "the function was deleted"),
            OverlapReason::SignatureChangedConcurrently => {
                write!(f, "its signature changed since your read")
            }
            OverlapReason::SignatureChangedByRequest { op_index } => {
                write!(
                    f,
                    "op {op_index} changes the signature of a function that changed"
                )
            }
            OverlapReason::Node { op_index, node } => {
                write!(
                    f,
                    "op {op_index} touches {node}, which changed since your read"
                )
            }
            OverlapReason::NodeGainedUser {
                op_index,
                node,
                user,
            } => write!(
                f,
                "op {op_index} removes {node}, which the concurrent change made {user} use"
            ),
            OverlapReason::WholeFunction { op_index } => {
                write!(
                    f,
                    "op {op_index} replaces the whole function, which changed"
                )
            }
            OverlapReason::Doc { op_index } => {
                write!(f, "op {op_index} sets the doc, which also changed")
            }
            OverlapReason::Name { op_index } => {
                write!(
                    f,
                    "op {op_index} renames the function, which was also renamed"
                )
            }
        }
    }
}

/// Decides whether `ops` (with their indexes in the request), all aimed at
/// one function, can be replayed onto `current` although they were written
/// against `base`. `current` is `None` when the function was deleted.
/// Returns the diff base → current when they can, or every overlap found.
pub fn check_rebase(
    base: &Function,
    current: Option<&Function>,
    ops: &[(usize, &EditOp)],
) -> Result<FunctionDiff, Vec<OverlapReason>> {
    let Some(current) = current else {
        return Err(vec![OverlapReason::Deleted]);
    };
    let diff = diff_functions(base, current);
    if diff.is_empty() {
        return Ok(diff);
    }
    let touched = diff.touched_nodes();
    let mut overlaps = Vec::new();
    if diff.signature.is_some() {
        overlaps.push(OverlapReason::SignatureChangedConcurrently);
    }
    // Nodes that concurrent commits made use an existing node.
    let new_users: Vec<(NodeId, NodeId)> = diff
        .nodes_added
        .iter()
        .map(|(id, n)| (*id, n))
        .chain(diff.nodes_changed.iter().map(|c| (c.id, &c.after)))
        .flat_map(|(user, n)| n.inputs.iter().map(move |input| (*input, user)))
        .collect();
    let check_node = |op_index: usize, r: &NodeRef, overlaps: &mut Vec<OverlapReason>| {
        if let NodeRef::Id(id) = r
            && touched.contains(id)
        {
            overlaps.push(OverlapReason::Node {
                op_index,
                node: *id,
            });
        }
    };
    for &(op_index, op) in ops {
        match op {
            EditOp::AddNode { inputs, .. } => {
                for r in inputs {
                    check_node(op_index, r, &mut overlaps);
                }
            }
            EditOp::RemoveNode { node, .. } => {
                check_node(op_index, node, &mut overlaps);
                if let NodeRef::Id(id) = node {
                    for (input, user) in &new_users {
                        if input == id {
                            overlaps.push(OverlapReason::NodeGainedUser {
                                op_index,
                                node: *id,
                                user: *user,
                            });
                        }
                    }
                }
            }
            EditOp::SetInputs { node, inputs, .. } => {
                check_node(op_index, node, &mut overlaps);
                for r in inputs {
                    check_node(op_index, r, &mut overlaps);
                }
            }
            EditOp::SetOp { node, .. } => check_node(op_index, node, &mut overlaps),
            EditOp::SetSignature { .. } => {
                overlaps.push(OverlapReason::SignatureChangedByRequest { op_index })
            }
            EditOp::SetDoc { .. } => {
                if diff.doc.is_some() {
                    overlaps.push(OverlapReason::Doc { op_index });
                }
            }
            EditOp::ReplaceBody { .. } | EditOp::DeleteFunction { .. } => {
                overlaps.push(OverlapReason::WholeFunction { op_index })
            }
            EditOp::RenameFunction { .. } => {
                if diff.name.is_some() {
                    overlaps.push(OverlapReason::Name { op_index });
                }
            }
            EditOp::CreateFunction { .. } | EditOp::ReserveFunctionIds { .. } => {}
        }
    }
    let mut seen = BTreeSet::new();
    overlaps.retain(|o| seen.insert(format!("{o:?}")));
    if overlaps.is_empty() {
        Ok(diff)
    } else {
        Err(overlaps)
    }
}
