//! The atomic application of edit ops (`edit_ops.rs`) to a program
//! snapshot.
//!
//! `apply` takes a program and a list of ops and returns either a new
//! program with the change set, or the first op that could not be applied
//! and why. Ops apply in order, each seeing the effect of the ones before
//! it; a failure anywhere leaves the input program untouched, because all
//! work happens on a private copy (a `Program` clone is O(1)).
//!
//! `apply` checks what an op needs to make sense (the function and nodes it
//! names exist, names are free, a removed node is unused). Whether the
//! result is a valid program is the verifier's question, not this file's.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

pub use super::edit_ops::{Body, EditOp, NodeRef, NodeSpec};
use super::function::{Function, Node, QualifiedName, Signature};
use super::function_ref::FunctionRef;
use super::ids::{FunctionId, NodeId, Revision};
use super::limits::{self, check_alias, check_doc, check_name, check_params};
use super::op::Op;
use super::program::{FunctionEntry, Program};
use super::text::{BodyText, OpSpec, ParseError, ResolveError, parse_body};

/// Why an op could not be applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EditErrorKind {
    #[error("no function `{0}`")]
    UnknownFunction(FunctionRef),
    #[error("`{function}` has no node {node}")]
    UnknownNode {
        function: QualifiedName,
        node: NodeId,
    },
    #[error("no node was named `{0}` earlier in this request")]
    UnknownAlias(String),
    #[error("`{alias}` names a node of `{owner}`, not of `{function}`")]
    AliasInOtherFunction {
        alias: String,
        owner: QualifiedName,
        function: QualifiedName,
    },
    #[error("`{0}` already names a node in this request")]
    DuplicateAlias(String),
    #[error("node {node} of `{function}` is still used by {}", list_nodes(.users))]
    NodeStillUsed {
        function: QualifiedName,
        node: NodeId,
        users: Vec<NodeId>,
    },
    #[error("a function named `{0}` already exists")]
    DuplicateName(QualifiedName),
    #[error("`{function}` was deleted earlier in this request")]
    Deleted { function: QualifiedName },
    #[error("{0}")]
    Parse(ParseError),
    #[error("{0}")]
    Resolve(String),
    #[error("{0}")]
    Invalid(String),
}

fn list_nodes(nodes: &[NodeId]) -> String {
    nodes
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The op that failed, its position in the request, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("op {index} ({kind}): {reason}")]
pub struct EditError {
    pub index: usize,
    pub kind: &'static str,
    pub reason: EditErrorKind,
}

/// What one request did to one function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionChange {
    pub id: FunctionId,
    pub before: Option<FunctionEntry>,
    pub after: Option<FunctionEntry>,
}

impl FunctionChange {
    pub fn created(&self) -> bool {
        self.before.is_none()
    }

    pub fn deleted(&self) -> bool {
        self.after.is_none()
    }

    pub fn renamed(&self) -> bool {
        matches!((&self.before, &self.after), (Some(b), Some(a)) if b.function.name != a.function.name)
    }

    /// Returns true if and only if callers may see a different signature: it
    /// changed, or the function is gone.
    pub fn signature_changed(&self) -> bool {
        match (&self.before, &self.after) {
            (Some(b), Some(a)) => b.function.signature != a.function.signature,
            (Some(_), None) => true,
            _ => false,
        }
    }

    pub fn name(&self) -> &QualifiedName {
        let entry = self.after.as_ref().or(self.before.as_ref());
        &entry
            .expect("a change has a before or an after")
            .function
            .name
    }
}

/// Where an alias points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AliasTarget {
    pub function: FunctionId,
    pub node: NodeId,
}

/// The result of a successful `apply`.
#[derive(Clone, Debug)]
pub struct Applied {
    pub program: Program,
    /// Functions whose content changed, by id. A function created and
    /// deleted in one request, or changed and changed back, is not here.
    pub changes: BTreeMap<FunctionId, FunctionChange>,
    pub aliases: BTreeMap<String, AliasTarget>,
}

/// Applies `ops` in order to a copy of `program`. New and changed versions
/// are stamped with `revision`. Returns the first failing op on error; the
/// input is never modified.
pub fn apply(program: &Program, ops: &[EditOp], revision: Revision) -> Result<Applied, EditError> {
    let mut w = Working {
        program: program.clone(),
        base: program,
        scratch: BTreeMap::new(),
        touched: BTreeSet::new(),
        aliases: BTreeMap::new(),
        revision,
    };
    for (index, op) in ops.iter().enumerate() {
        w.apply_op(op).map_err(|reason| EditError {
            index,
            kind: op.kind(),
            reason,
        })?;
    }
    Ok(w.finish())
}

struct Working<'a> {
    program: Program,
    base: &'a Program,
    /// Working copies of functions changed by node-level ops, flushed into
    /// `program` at the end (and before any structure op touches them).
    scratch: BTreeMap<FunctionId, Function>,
    /// Every function an op has touched, so that finishing costs
    /// O(touched), never O(program).
    touched: BTreeSet<FunctionId>,
    aliases: BTreeMap<String, AliasTarget>,
    revision: Revision,
}

type OpResult<T> = Result<T, EditErrorKind>;

impl Working<'_> {
    fn resolve(&self, r: &FunctionRef) -> OpResult<FunctionId> {
        if let Some(id) = self.program.lookup(r) {
            return Ok(id);
        }
        // Distinguish "deleted by this request" from "never existed".
        if let Some(id) = self.base.lookup(r) {
            let name = self.base.name_of(id).expect("base has it");
            return Err(EditErrorKind::Deleted { function: name });
        }
        Err(EditErrorKind::UnknownFunction(r.clone()))
    }

    /// The working copy of `id`, created from the program on first use.
    fn function_mut(&mut self, id: FunctionId) -> &mut Function {
        self.touched.insert(id);
        let program = &self.program;
        self.scratch
            .entry(id)
            .or_insert_with(|| (*program.get(id).expect("resolved id exists").function).clone())
    }

    fn function(&self, id: FunctionId) -> &Function {
        match self.scratch.get(&id) {
            Some(f) => f,
            None => &self.program.get(id).expect("resolved id exists").function,
        }
    }

    fn flush(&mut self, id: FunctionId) {
        if let Some(f) = self.scratch.remove(&id) {
            self.program
                .put(id, FunctionEntry::new(Arc::new(f), self.revision));
        }
    }

    fn node_id(&self, function: FunctionId, r: &NodeRef) -> OpResult<NodeId> {
        let f = self.function(function);
        let id = match r {
            NodeRef::Id(id) => *id,
            NodeRef::Alias(alias) => {
                let target = self
                    .aliases
                    .get(alias)
                    .ok_or_else(|| EditErrorKind::UnknownAlias(alias.clone()))?;
                if target.function != function {
                    return Err(EditErrorKind::AliasInOtherFunction {
                        alias: alias.clone(),
                        owner: self.function(target.function).name.clone(),
                        function: f.name.clone(),
                    });
                }
                target.node
            }
        };
        if !f.nodes.contains_key(&id) {
            return Err(EditErrorKind::UnknownNode {
                function: f.name.clone(),
                node: id,
            });
        }
        Ok(id)
    }

    fn node_ids(&self, function: FunctionId, refs: &[NodeRef]) -> OpResult<Vec<NodeId>> {
        if refs.len() > limits::MAX_INPUTS_PER_NODE {
            return Err(EditErrorKind::Invalid(format!(
                "a node takes at most {} inputs, got {}",
                limits::MAX_INPUTS_PER_NODE,
                refs.len()
            )));
        }
        refs.iter().map(|r| self.node_id(function, r)).collect()
    }

    fn resolve_op(&self, function: FunctionId, spec: &OpSpec) -> OpResult<Op> {
        let signature = &self.function(function).signature;
        spec.resolve(&|r| self.program.lookup(r), signature)
            .map_err(|e| match e {
                ResolveError::UnknownFunction(r) => match self.resolve(&r) {
                    Err(kind) => kind,
                    Ok(_) => EditErrorKind::UnknownFunction(r),
                },
                ResolveError::UnknownParam(p) => EditErrorKind::Resolve(format!(
                    "`{}` has no parameter named `{p}`",
                    self.function(function).name
                )),
            })
    }

    fn apply_op(&mut self, op: &EditOp) -> OpResult<()> {
        match op {
            EditOp::AddNode {
                function,
                op,
                inputs,
                alias,
            } => {
                let id = self.resolve(function)?;
                if let Some(alias) = alias {
                    check_alias(alias)?;
                    if self.aliases.contains_key(alias) {
                        return Err(EditErrorKind::DuplicateAlias(alias.clone()));
                    }
                }
                let op = self.resolve_op(id, op)?;
                let inputs = self.node_ids(id, inputs)?;
                let f = self.function_mut(id);
                if f.nodes.len() >= limits::MAX_NODES_PER_FUNCTION {
                    return Err(EditErrorKind::Invalid(format!(
                        "`{}` already has the maximum of {} nodes",
                        f.name,
                        limits::MAX_NODES_PER_FUNCTION
                    )));
                }
                if f.next_node == u32::MAX {
                    return Err(EditErrorKind::Invalid(format!(
                        "`{}` has used every node id",
                        f.name
                    )));
                }
                let node = f.push_node(op, inputs);
                if let Some(alias) = alias {
                    self.aliases
                        .insert(alias.clone(), AliasTarget { function: id, node });
                }
            }
            EditOp::RemoveNode { function, node } => {
                let id = self.resolve(function)?;
                let node = self.node_id(id, node)?;
                let f = self.function_mut(id);
                let users: Vec<NodeId> = f
                    .users_of(node)
                    .into_iter()
                    .filter(|u| *u != node)
                    .collect();
                if !users.is_empty() {
                    return Err(EditErrorKind::NodeStillUsed {
                        function: f.name.clone(),
                        node,
                        users,
                    });
                }
                f.nodes.remove(&node);
            }
            EditOp::SetInputs {
                function,
                node,
                inputs,
            } => {
                let id = self.resolve(function)?;
                let node = self.node_id(id, node)?;
                let inputs = self.node_ids(id, inputs)?;
                self.function_mut(id)
                    .nodes
                    .get_mut(&node)
                    .expect("checked")
                    .inputs = inputs;
            }
            EditOp::SetOp { function, node, op } => {
                let id = self.resolve(function)?;
                let node = self.node_id(id, node)?;
                let op = self.resolve_op(id, op)?;
                self.function_mut(id)
                    .nodes
                    .get_mut(&node)
                    .expect("checked")
                    .op = op;
            }
            EditOp::SetSignature {
                function,
                params,
                returns,
            } => {
                let id = self.resolve(function)?;
                check_params(params)?;
                self.function_mut(id).signature = Signature {
                    params: params.clone(),
                    returns: *returns,
                };
            }
            EditOp::SetDoc { function, doc } => {
                let id = self.resolve(function)?;
                if let Some(doc) = doc {
                    check_doc(doc)?;
                }
                self.function_mut(id).doc = doc.clone();
            }
            EditOp::ReplaceBody { function, body } => {
                let id = self.resolve(function)?;
                self.replace_body(id, body)?;
            }
            EditOp::CreateFunction {
                name,
                params,
                returns,
                doc,
                body,
            } => {
                check_name(name)?;
                if self.program.id_of(name).is_some() {
                    return Err(EditErrorKind::DuplicateName(name.clone()));
                }
                check_params(params)?;
                if let Some(doc) = doc {
                    check_doc(doc)?;
                }
                let mut f = Function::new(
                    name.clone(),
                    Signature {
                        params: params.clone(),
                        returns: *returns,
                    },
                );
                f.doc = doc.clone();
                let id = self.program.alloc_function_id();
                self.touched.insert(id);
                // Registered before its body is parsed, so the body may call
                // the function itself.
                self.program
                    .put(id, FunctionEntry::new(Arc::new(f), self.revision));
                if let Some(body) = body {
                    self.replace_body(id, body)?;
                }
            }
            EditOp::ReserveFunctionIds { next } => self.program.reserve_function_ids(*next),
            EditOp::DeleteFunction { function } => {
                let id = self.resolve(function)?;
                self.touched.insert(id);
                self.scratch.remove(&id);
                self.program.remove(id);
                self.aliases.retain(|_, t| t.function != id);
            }
            EditOp::RenameFunction { function, new_name } => {
                let id = self.resolve(function)?;
                check_name(new_name)?;
                if let Some(other) = self.program.id_of(new_name) {
                    if other == id {
                        return Ok(());
                    }
                    return Err(EditErrorKind::DuplicateName(new_name.clone()));
                }
                self.function_mut(id).name = new_name.clone();
                self.flush(id);
            }
        }
        Ok(())
    }

    /// Replaces every node of `id`. Ids in the body that exist in the
    /// function keep their identity; any other id is a label for a new node
    /// and gets a fresh id, so no id is ever reused.
    fn replace_body(&mut self, id: FunctionId, body: &Body) -> OpResult<()> {
        let body_text = match body {
            Body::Text(text) => {
                let (header, body) = parse_body(text).map_err(EditErrorKind::Parse)?;
                if let Some(header) = header {
                    self.check_header(id, &header)?;
                }
                body
            }
            Body::Nodes(nodes) => BodyText {
                nodes: nodes
                    .iter()
                    .map(|n| super::text::NodeText {
                        id: n.id,
                        op: n.op.clone(),
                        inputs: n.inputs.clone(),
                        line: 0,
                        column: 0,
                    })
                    .collect(),
                next: None,
            },
        };
        if body_text.nodes.len() > limits::MAX_NODES_PER_FUNCTION {
            return Err(EditErrorKind::Invalid(format!(
                "a function has at most {} nodes, the body has {}",
                limits::MAX_NODES_PER_FUNCTION,
                body_text.nodes.len()
            )));
        }
        let current = self.function(id);
        // A function that has never had a node keeps the body's labels as
        // its node ids (no id of it can have been used), so a function is
        // recreated exactly from its text, gaps and `next %N` included.
        let fresh_function = current.nodes.is_empty() && current.next_node == 0;
        let mut next_node = current.next_node.max(body_text.next.unwrap_or(0));
        if fresh_function && let Some(top) = body_text.nodes.iter().map(|n| n.id).max() {
            next_node = next_node.max(top.checked_add(1).ok_or_else(|| {
                EditErrorKind::Invalid(format!("`{}` has used every node id", current.name))
            })?);
        }
        let mut labels: HashMap<u32, NodeId> = HashMap::new();
        for n in &body_text.nodes {
            if labels.contains_key(&n.id) {
                return Err(EditErrorKind::Invalid(format!(
                    "the body labels two nodes %{}",
                    n.id
                )));
            }
            let node_id = if fresh_function || current.nodes.contains_key(&NodeId(n.id)) {
                NodeId(n.id)
            } else {
                let fresh = NodeId(next_node);
                next_node = next_node.checked_add(1).ok_or_else(|| {
                    EditErrorKind::Invalid(format!("`{}` has used every node id", current.name))
                })?;
                fresh
            };
            labels.insert(n.id, node_id);
        }
        let mut nodes = BTreeMap::new();
        for n in &body_text.nodes {
            let op = self.resolve_op(id, &n.op).map_err(|e| at_line(e, n.line))?;
            if n.inputs.len() > limits::MAX_INPUTS_PER_NODE {
                return Err(EditErrorKind::Invalid(format!(
                    "a node takes at most {} inputs",
                    limits::MAX_INPUTS_PER_NODE
                )));
            }
            let inputs = n
                .inputs
                .iter()
                .map(|label| {
                    labels.get(label).copied().ok_or_else(|| {
                        at_line(
                            EditErrorKind::Invalid(format!(
                                "input %{label} is not a node of the body"
                            )),
                            n.line,
                        )
                    })
                })
                .collect::<OpResult<Vec<_>>>()?;
            nodes.insert(labels[&n.id], Node { op, inputs });
        }
        let f = self.function_mut(id);
        f.nodes = nodes;
        f.next_node = next_node;
        Ok(())
    }

    fn check_header(&self, id: FunctionId, header: &super::text::FunctionText) -> OpResult<()> {
        let f = self.function(id);
        if let Some(stated) = header.id
            && stated != id
        {
            return Err(EditErrorKind::Invalid(format!(
                "the body's header states {stated}, but `{}` is {id}; leave the id out or state {id}",
                f.name
            )));
        }
        if header.name != f.name {
            return Err(EditErrorKind::Invalid(format!(
                "the body's header names `{}`, but the function is `{}`; use rename_function to rename",
                header.name, f.name
            )));
        }
        if header.signature != f.signature {
            return Err(EditErrorKind::Invalid(format!(
                "the body's header has signature {}, but `{}` has {}; use set_signature to change it",
                header.signature, f.name, f.signature
            )));
        }
        if header.doc.is_some() && header.doc != f.doc {
            return Err(EditErrorKind::Invalid(format!(
                "the body's doc comment differs from `{}`'s doc; use set_doc to change it",
                f.name
            )));
        }
        Ok(())
    }

    fn finish(mut self) -> Applied {
        let ids: Vec<FunctionId> = self.scratch.keys().copied().collect();
        for id in ids {
            self.flush(id);
        }
        let mut changes = BTreeMap::new();
        for &id in &self.touched {
            let before = self.base.get(id).cloned();
            let after = self.program.get(id).cloned();
            match (&before, &after) {
                (None, None) => {}
                (Some(b), Some(a)) if b.hash == a.hash => {
                    // Changed and changed back: keep the old entry and its
                    // revision, and report no change.
                    if a.revision != b.revision {
                        self.program.put(id, b.clone());
                    }
                }
                _ => {
                    changes.insert(id, FunctionChange { id, before, after });
                }
            }
        }
        Applied {
            program: self.program,
            changes,
            aliases: self.aliases,
        }
    }
}

fn at_line(kind: EditErrorKind, line: usize) -> EditErrorKind {
    if line == 0 {
        return kind;
    }
    match kind {
        EditErrorKind::Resolve(m) => EditErrorKind::Resolve(format!("line {line}: {m}")),
        EditErrorKind::Invalid(m) => EditErrorKind::Invalid(format!("line {line}: {m}")),
        EditErrorKind::UnknownFunction(r) => {
            EditErrorKind::Resolve(format!("line {line}: no function `{r}`"))
        }
        other => other,
    }
}

#[cfg(test)]
#[path = "edit_tests.rs"]
mod tests;
