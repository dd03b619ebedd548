//! Conversions from wire arguments to core requests. Problems with the
//! content of an op (a bad op text, a parse error, an unknown type) are
//! `invalid_edit` results naming the op; the shape of the arguments was
//! already checked when they were decoded.

use super::error::ToolFailure;
use super::types::{
    EditOpArg, ErrorCode, FunctionArg, KindArg, Mode, NodeArg, ParamArg, TransportView,
};
use crate::graph::FunctionRef;
use crate::graph::edit::{Body, NodeRef, NodeSpec};
use crate::graph::text::{parse_function_text, parse_op, parse_type};
use crate::graph::{EditOp, Param, QualifiedName};
use crate::locks::{Claim, LockMode, Transport};

pub fn transport(t: Transport) -> TransportView {
    match t {
        Transport::Stdio => TransportView::Stdio,
        Transport::HttpSession => TransportView::HttpSession,
        Transport::HttpStateless => TransportView::HttpStateless,
        Transport::InProcess => TransportView::InProcess,
    }
}

pub fn mode(m: LockMode) -> Mode {
    match m {
        LockMode::Read => Mode::Read,
        LockMode::Write => Mode::Write,
    }
}

/// The wire mode of a claim. The wire knows functions' read and write
/// only: a semaphore's permits never reach it (its holders meet no
/// function, and the tools list function locks alone), so they show as
/// the exclusive mode should one ever slip through.
pub fn claim_mode(c: Claim) -> Mode {
    c.mode().map_or(Mode::Write, mode)
}

pub fn resource_kind(k: KindArg) -> crate::locks::ResourceKind {
    use crate::locks::ResourceKind;
    match k {
        KindArg::Function => ResourceKind::Function,
        KindArg::Module => ResourceKind::Module,
        KindArg::Path => ResourceKind::Path,
        KindArg::Named => ResourceKind::Named,
        KindArg::Semaphore => ResourceKind::Semaphore,
    }
}

pub fn lock_mode(m: Mode) -> LockMode {
    match m {
        Mode::Read => LockMode::Read,
        Mode::Write => LockMode::Write,
    }
}

fn invalid(idx: usize, kind: &str, message: impl std::fmt::Display) -> ToolFailure {
    ToolFailure::new(
        ErrorCode::InvalidEdit,
        format!("op {idx} ({kind}): {message}"),
        format!("fix op {idx} ({kind}); no op of this request was applied"),
    )
    .with("op_index", idx)
    .with("op", kind)
}

/// A function named inside an edit op: a malformed reference is an
/// `invalid_edit` naming the op.
fn function(idx: usize, kind: &str, f: &FunctionArg) -> Result<FunctionRef, ToolFailure> {
    f.to_ref().map_err(|e| invalid(idx, kind, e))
}

fn name(idx: usize, kind: &str, s: &str) -> Result<QualifiedName, ToolFailure> {
    QualifiedName::new(s).map_err(|e| invalid(idx, kind, e))
}

fn node(idx: usize, kind: &str, n: &NodeArg) -> Result<NodeRef, ToolFailure> {
    match n {
        NodeArg::Id(id) => Ok(NodeRef::Id(crate::graph::NodeId(*id))),
        NodeArg::Ref(s) => NodeRef::parse(s).map_err(|e| invalid(idx, kind, e)),
    }
}

fn nodes(idx: usize, kind: &str, ns: &[NodeArg]) -> Result<Vec<NodeRef>, ToolFailure> {
    ns.iter().map(|n| node(idx, kind, n)).collect()
}

fn op(idx: usize, kind: &str, text: &str) -> Result<crate::graph::OpSpec, ToolFailure> {
    parse_op(text).map_err(|e| {
        invalid(
            idx,
            kind,
            format!("op `{text}`: expected {}, found {}", e.expected, e.found),
        )
    })
}

fn params(idx: usize, kind: &str, ps: &[ParamArg]) -> Result<Vec<Param>, ToolFailure> {
    ps.iter()
        .map(|p| {
            Ok(Param {
                name: p.name.clone(),
                ty: ty(idx, kind, &p.ty)?,
            })
        })
        .collect()
}

fn ty(idx: usize, kind: &str, s: &str) -> Result<crate::graph::Type, ToolFailure> {
    parse_type(s).map_err(|_| {
        invalid(
            idx,
            kind,
            format!("`{s}` is not a type: use i64, f64, bool or unit"),
        )
    })
}

/// One wire op to a core op.
pub fn edit_op(idx: usize, arg: &EditOpArg) -> Result<EditOp, ToolFailure> {
    Ok(match arg {
        EditOpArg::AddNode {
            function: f,
            op: o,
            inputs,
            alias,
        } => {
            let k = "add_node";
            EditOp::AddNode {
                function: function(idx, k, f)?,
                op: op(idx, k, o)?,
                inputs: nodes(idx, k, inputs)?,
                alias: alias.clone(),
            }
        }
        EditOpArg::RemoveNode {
            function: f,
            node: n,
        } => {
            let k = "remove_node";
            EditOp::RemoveNode {
                function: function(idx, k, f)?,
                node: node(idx, k, n)?,
            }
        }
        EditOpArg::SetInputs {
            function: f,
            node: n,
            inputs,
        } => {
            let k = "set_inputs";
            EditOp::SetInputs {
                function: function(idx, k, f)?,
                node: node(idx, k, n)?,
                inputs: nodes(idx, k, inputs)?,
            }
        }
        EditOpArg::SetOp {
            function: f,
            node: n,
            op: o,
        } => {
            let k = "set_op";
            EditOp::SetOp {
                function: function(idx, k, f)?,
                node: node(idx, k, n)?,
                op: op(idx, k, o)?,
            }
        }
        EditOpArg::SetSignature {
            function: f,
            params: ps,
            returns,
        } => {
            let k = "set_signature";
            EditOp::SetSignature {
                function: function(idx, k, f)?,
                params: params(idx, k, ps)?,
                returns: ty(idx, k, returns)?,
            }
        }
        EditOpArg::SetDoc { function: f, doc } => EditOp::SetDoc {
            function: function(idx, "set_doc", f)?,
            doc: doc.clone(),
        },
        EditOpArg::ReplaceBody {
            function: f,
            text,
            nodes: ns,
        } => {
            let k = "replace_body";
            let body = match (text, ns) {
                (Some(t), None) => Body::Text(t.clone()),
                (None, Some(ns)) => Body::Nodes(
                    ns.iter()
                        .map(|n| {
                            Ok(NodeSpec {
                                id: n.id,
                                op: op(idx, k, &n.op)?,
                                inputs: n.inputs.clone(),
                            })
                        })
                        .collect::<Result<_, ToolFailure>>()?,
                ),
                _ => return Err(invalid(idx, k, "give exactly one of `text` and `nodes`")),
            };
            EditOp::ReplaceBody {
                function: function(idx, k, f)?,
                body,
            }
        }
        EditOpArg::CreateFunction {
            text,
            name: n,
            params: ps,
            returns,
            doc,
            body,
        } => {
            let k = "create_function";
            match text {
                Some(t) => {
                    if n.is_some()
                        || ps.is_some()
                        || returns.is_some()
                        || doc.is_some()
                        || body.is_some()
                    {
                        return Err(invalid(
                            idx,
                            k,
                            "give either `text` or `name`/`params`/`returns`, not both",
                        ));
                    }
                    let parsed = parse_function_text(t).map_err(|e| invalid(idx, k, e))?;
                    EditOp::CreateFunction {
                        name: parsed.name,
                        params: parsed.signature.params,
                        returns: parsed.signature.returns,
                        doc: parsed.doc,
                        body: Some(Body::Text(t.clone())),
                    }
                }
                None => {
                    let (Some(n), Some(returns)) = (n, returns) else {
                        return Err(invalid(
                            idx,
                            k,
                            "give `text`, or `name` and `returns` (and `params`)",
                        ));
                    };
                    EditOp::CreateFunction {
                        name: name(idx, k, n)?,
                        params: params(idx, k, ps.as_deref().unwrap_or(&[]))?,
                        returns: ty(idx, k, returns)?,
                        doc: doc.clone(),
                        body: body.clone().map(Body::Text),
                    }
                }
            }
        }
        EditOpArg::DeleteFunction { function: f } => EditOp::DeleteFunction {
            function: function(idx, "delete_function", f)?,
        },
        EditOpArg::RenameFunction {
            function: f,
            new_name,
        } => {
            let k = "rename_function";
            EditOp::RenameFunction {
                function: function(idx, k, f)?,
                new_name: name(idx, k, new_name)?,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    //! Wire ops to core ops: one named case per shape that converts, and one
    //! per way an op's content can be wrong (an `invalid_edit` naming the
    //! op's index and kind).

    use serde_json::json;

    use super::*;
    use crate::graph::{NodeId, Op, OpSpec, Type};

    fn convert(idx: usize, op: serde_json::Value) -> Result<EditOp, ToolFailure> {
        let arg: EditOpArg = serde_json::from_value(op).expect("a well-formed wire op");
        edit_op(idx, &arg)
    }

    fn f1() -> FunctionRef {
        FunctionRef::Id(crate::graph::FunctionId(1))
    }

    macro_rules! converts {
        ($($test:ident: $json:tt => $expected:expr;)*) => {$(
            #[test]
            fn $test() {
                assert_eq!(convert(0, json!($json)).unwrap(), $expected);
            }
        )*};
    }

    converts! {
        add_node_with_alias_and_mixed_inputs:
            {"add_node": {"function": 1, "op": "add", "inputs": ["%0", 2], "as": "$sum"}}
            => EditOp::AddNode {
                function: f1(),
                op: OpSpec::Op(Op::Add),
                inputs: vec![NodeRef::Id(NodeId(0)), NodeRef::Id(NodeId(2))],
                alias: Some("$sum".into()),
            };
        remove_node_by_name_and_hash_id:
            {"remove_node": {"function": "#1", "node": "%3"}}
            => EditOp::RemoveNode { function: f1(), node: NodeRef::Id(NodeId(3)) };
        set_inputs_to_an_alias:
            {"set_inputs": {"function": "1", "node": 4, "inputs": ["$sum"]}}
            => EditOp::SetInputs {
                function: f1(),
                node: NodeRef::Id(NodeId(4)),
                inputs: vec![NodeRef::Alias("$sum".into())],
            };
        set_op_to_a_call:
            {"set_op": {"function": "demo::f", "node": "%1", "op": "call demo::g"}}
            => EditOp::SetOp {
                function: FunctionRef::parse("demo::f").unwrap(),
                node: NodeRef::Id(NodeId(1)),
                op: OpSpec::Call(FunctionRef::parse("demo::g").unwrap()),
            };
        set_signature_with_typed_params:
            {"set_signature": {"function": 1, "params": [{"name": "x", "type": "f64"}], "returns": "bool"}}
            => EditOp::SetSignature {
                function: f1(),
                params: vec![Param { name: "x".into(), ty: Type::F64 }],
                returns: Type::Bool,
            };
        set_doc_to_nothing:
            {"set_doc": {"function": 1, "doc": null}}
            => EditOp::SetDoc { function: f1(), doc: None };
    }

    macro_rules! refuses {
        ($($test:ident: $idx:expr, $json:tt => $kind:literal, $says:literal;)*) => {$(
            #[test]
            fn $test() {
                let failure = convert($idx, json!($json)).unwrap_err();
                let details = super::super::error::details_json(&failure);
                assert_eq!(details["error"]["code"], "invalid_edit", "{details}");
                assert_eq!(details["op_index"], $idx);
                assert_eq!(details["op"], $kind);
                let message = details["error"]["message"].as_str().unwrap();
                assert!(message.starts_with(&format!("op {} ({}): ", $idx, $kind)), "{message}");
                assert!(message.contains($says), "{message} lacks {:?}", $says);
            }
        )*};
    }

    refuses! {
        unknown_op_text: 2, {"add_node": {"function": 1, "op": "select", "inputs": []}}
            => "add_node", "op `select`";
        double_hash_function: 0, {"remove_node": {"function": "##1", "node": "%0"}}
            => "remove_node", "`##1` is not a function";
        unqualified_function: 1, {"set_doc": {"function": "fib", "doc": "d"}}
            => "set_doc", "`fib` is not a function";
        bad_node_ref: 3, {"remove_node": {"function": 1, "node": "%x"}}
            => "remove_node", "`%x` is not a node";
        unknown_type: 0, {"set_signature": {"function": 1, "params": [], "returns": "int"}}
            => "set_signature", "`int` is not a type";
        bad_new_name: 4, {"rename_function": {"function": 1, "new_name": "nomodule"}}
            => "rename_function", "not a qualified name";
    }

    #[test]
    fn wire_enums_convert_both_ways() {
        for m in [LockMode::Read, LockMode::Write] {
            assert_eq!(lock_mode(mode(m)), m);
        }
        for (t, text) in [
            (Transport::Stdio, "stdio"),
            (Transport::HttpSession, "http_session"),
            (Transport::HttpStateless, "http_stateless"),
            (Transport::InProcess, "in_process"),
        ] {
            assert_eq!(transport(t).as_str(), text);
            assert_eq!(serde_json::to_value(transport(t)).unwrap(), text);
        }
    }
}
