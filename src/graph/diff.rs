//! Structured diff between two versions of a function.
//!
//! Nodes are matched by id, which is sound because ids are never reused: a
//! node present in both versions is the same node, changed or not. Edges are
//! derived from inputs, so only the nodes whose inputs differ can have
//! different edges and the diff costs O(size of the two versions).

use std::collections::BTreeSet;

use super::function::{Function, Node, QualifiedName, Signature};
use super::ids::NodeId;

/// A value before and after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change<T> {
    pub before: T,
    pub after: T,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeChange {
    pub id: NodeId,
    pub before: Node,
    pub after: Node,
}

/// A data edge: `from`'s value enters `to` at input position `port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Edge {
    pub from: NodeId,
    pub to: NodeId,
    pub port: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunctionDiff {
    pub name: Option<Change<QualifiedName>>,
    pub doc: Option<Change<Option<String>>>,
    pub signature: Option<Change<Signature>>,
    /// The node-id counter; it differs alone when a node was added and
    /// removed again, which changes the hash but no visible node.
    pub next_node: Option<Change<u32>>,
    pub nodes_added: Vec<(NodeId, Node)>,
    pub nodes_removed: Vec<(NodeId, Node)>,
    pub nodes_changed: Vec<NodeChange>,
    pub edges_added: Vec<Edge>,
    pub edges_removed: Vec<Edge>,
}

impl FunctionDiff {
    pub fn is_empty(&self) -> bool {
        *self == FunctionDiff::default()
    }

    /// Every node the diff adds, removes or changes.
    pub fn touched_nodes(&self) -> BTreeSet<NodeId> {
        self.nodes_added
            .iter()
            .map(|(id, _)| *id)
            .chain(self.nodes_removed.iter().map(|(id, _)| *id))
            .chain(self.nodes_changed.iter().map(|c| c.id))
            .collect()
    }
}

fn change<T: PartialEq + Clone>(before: &T, after: &T) -> Option<Change<T>> {
    (before != after).then(|| Change {
        before: before.clone(),
        after: after.clone(),
    })
}

fn edges_of(id: NodeId, node: &Node) -> impl Iterator<Item = Edge> + '_ {
    node.inputs
        .iter()
        .enumerate()
        .map(move |(port, from)| Edge {
            from: *from,
            to: id,
            port: port as u32,
        })
}

pub fn diff_functions(before: &Function, after: &Function) -> FunctionDiff {
    let mut d = FunctionDiff {
        name: change(&before.name, &after.name),
        doc: change(&before.doc, &after.doc),
        signature: change(&before.signature, &after.signature),
        next_node: change(&before.next_node, &after.next_node),
        ..FunctionDiff::default()
    };
    let mut old_edges = BTreeSet::new();
    let mut new_edges = BTreeSet::new();
    for (id, node) in &before.nodes {
        match after.nodes.get(id) {
            None => {
                d.nodes_removed.push((*id, node.clone()));
                old_edges.extend(edges_of(*id, node));
            }
            Some(now) if now != node => {
                d.nodes_changed.push(NodeChange {
                    id: *id,
                    before: node.clone(),
                    after: now.clone(),
                });
                if now.inputs != node.inputs {
                    old_edges.extend(edges_of(*id, node));
                    new_edges.extend(edges_of(*id, now));
                }
            }
            Some(_) => {}
        }
    }
    for (id, node) in &after.nodes {
        if !before.nodes.contains_key(id) {
            d.nodes_added.push((*id, node.clone()));
            new_edges.extend(edges_of(*id, node));
        }
    }
    d.edges_added = new_edges.difference(&old_edges).copied().collect();
    d.edges_removed = old_edges.difference(&new_edges).copied().collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::text::parse_function;

    fn f(text: &str) -> Function {
        parse_function(text, &|_| None).unwrap()
    }

    #[test]
    fn identical_versions_have_an_empty_diff() {
        let a = f("fn m::f(x: i64) -> i64 {\n  %0 = param 0\n  %1 = return %0\n}\n");
        assert!(diff_functions(&a, &a).is_empty());
    }

    #[test]
    fn diff_names_nodes_and_edges() {
        let a = f(
            "fn m::f(x: i64) -> i64 {\n  %0 = param 0\n  %1 = const 1\n  %2 = add %0, %1\n  %3 = return %2\n}\n",
        );
        let b = f(
            "fn m::f(x: i64) -> i64 {\n  %0 = param 0\n  %2 = mul %0, %0\n  %3 = return %2\n  %4 = const 7\n}\n",
        );
        let d = diff_functions(&a, &b);
        assert_eq!(d.nodes_removed.len(), 1);
        assert_eq!(d.nodes_removed[0].0, NodeId(1));
        assert_eq!(d.nodes_added.len(), 1);
        assert_eq!(d.nodes_added[0].0, NodeId(4));
        assert_eq!(d.nodes_changed.len(), 1);
        assert_eq!(d.nodes_changed[0].id, NodeId(2));
        let e = |from, to, port| Edge {
            from: NodeId(from),
            to: NodeId(to),
            port,
        };
        assert_eq!(d.edges_removed, vec![e(1, 2, 1)]);
        assert_eq!(d.edges_added, vec![e(0, 2, 1)]);
        assert_eq!(
            d.touched_nodes().into_iter().collect::<Vec<_>>(),
            vec![NodeId(1), NodeId(2), NodeId(4)]
        );
        assert!(d.signature.is_none());
    }

    #[test]
    fn signature_and_doc_changes_are_reported() {
        let a = f("fn m::f(x: i64) -> i64 {\n}\n");
        let b = f("/// doc\nfn m::f(x: f64) -> i64 {\n}\n");
        let d = diff_functions(&a, &b);
        assert_eq!(
            d.signature.unwrap().after.params[0].ty,
            crate::graph::Type::F64
        );
        assert_eq!(d.doc.unwrap().after.as_deref(), Some("doc"));
    }
}
