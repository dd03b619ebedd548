//! `apply` on a small program: each refusal names its op and leaves the
//! input untouched; each success does exactly what it says.

use super::*;
use crate::graph::load_program_text;

const TEXT: &str = "fn m::f(x: i64) -> i64 {\n  %0 = param 0\n  %1 = const 2\n  %2 = mul %0, %1\n  %3 = return %2\n}\nfn m::g() -> i64 {\n  %0 = const 1\n  %1 = return %0\n}\n";

fn program() -> Program {
    load_program_text(TEXT).unwrap()
}

fn f() -> FunctionRef {
    FunctionRef::parse("m::f").unwrap()
}

fn refusal(ops: Vec<EditOp>) -> EditError {
    let before = program();
    let e = apply(&before, &ops, Revision(9)).unwrap_err();
    assert_eq!(before.root_hash(), program().root_hash(), "input untouched");
    e
}

#[test]
fn unknown_function_names_the_op() {
    let e = refusal(vec![EditOp::SetDoc {
        function: FunctionRef::parse("m::nope").unwrap(),
        doc: None,
    }]);
    assert_eq!((e.index, e.kind), (0, "set_doc"));
    assert!(matches!(e.reason, EditErrorKind::UnknownFunction(_)));
}

#[test]
fn removing_a_used_node_is_refused() {
    let e = refusal(vec![EditOp::RemoveNode {
        function: f(),
        node: NodeRef::Id(NodeId(1)),
    }]);
    assert!(
        matches!(e.reason, EditErrorKind::NodeStillUsed { .. }),
        "{e}"
    );
}

#[test]
fn a_later_op_failing_undoes_the_earlier_ones() {
    let e = refusal(vec![
        EditOp::SetDoc {
            function: f(),
            doc: Some("doubles".into()),
        },
        EditOp::SetInputs {
            function: f(),
            node: NodeRef::Id(NodeId(2)),
            inputs: vec![NodeRef::Alias("$missing".into())],
        },
    ]);
    assert_eq!((e.index, e.kind), (1, "set_inputs"));
    assert!(matches!(e.reason, EditErrorKind::UnknownAlias(_)), "{e}");
}

#[test]
fn renaming_onto_an_existing_name_is_refused() {
    let e = refusal(vec![EditOp::RenameFunction {
        function: f(),
        new_name: QualifiedName::new("m::g").unwrap(),
    }]);
    assert!(matches!(e.reason, EditErrorKind::DuplicateName(_)), "{e}");
}

#[test]
fn an_alias_names_the_node_added_earlier_in_the_request() {
    let before = program();
    let ops = vec![
        EditOp::AddNode {
            function: f(),
            op: crate::graph::text::parse_op("const 3").unwrap(),
            inputs: vec![],
            alias: Some("$three".into()),
        },
        EditOp::SetInputs {
            function: f(),
            node: NodeRef::Id(NodeId(2)),
            inputs: vec![NodeRef::Id(NodeId(0)), NodeRef::Alias("$three".into())],
        },
        EditOp::RemoveNode {
            function: f(),
            node: NodeRef::Id(NodeId(1)),
        },
    ];
    let applied = apply(&before, &ops, Revision(9)).unwrap();
    let id = applied
        .program
        .id_of(&QualifiedName::new("m::f").unwrap())
        .unwrap();
    let after = &applied.program.get(id).unwrap().function;
    let target = applied.aliases["$three"].node;
    assert_eq!(target, NodeId(4), "node ids are never reused");
    assert_eq!(after.nodes[&NodeId(2)].inputs, vec![NodeId(0), target]);
    assert!(!after.nodes.contains_key(&NodeId(1)));
    assert_eq!(applied.changes.len(), 1);
    assert!(applied.changes.contains_key(&id));
}

#[test]
fn a_whole_function_body_may_state_its_own_id_and_no_other() {
    let before = program();
    let body = |header: &str| EditOp::ReplaceBody {
        function: f(),
        body: Body::Text(format!(
            "fn {header}m::f(x: i64) -> i64 {{\n  %0 = param 0\n  %1 = return %0\n}}\n"
        )),
    };
    assert!(apply(&before, &[body("#1 ")], Revision(9)).is_ok());
    let e = refusal(vec![body("#2 ")]);
    assert_eq!(
        e.reason.to_string(),
        "the body's header states #2, but `m::f` is #1; leave the id out or state #1"
    );
}
