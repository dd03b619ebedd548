//! The stored form of edit ops, pinned. The commit log keeps every commit's
//! ops as serde JSON (`commits.ops`, written by `store::encode_ops`), and a
//! store written today must read back the same ops in every later version.
//! The failure this guards against: a refactor of the edit-op types (a
//! renamed variant or field, a moved type with other serde attributes, a
//! new way to print an op) that silently changes the JSON, so that old logs
//! no longer decode, or decode to different ops.
//!
//! Each file in `tests/golden/edit_ops/` holds exactly the text the store
//! writes for a commit of the ops below: compact JSON, no trailing newline.
//! Each case is its own test, so one failure does not hide the rest. Every
//! variant is covered, with functions by id and by name, nodes by id and
//! by `$alias`, bodies as text and as nodes, optional fields present and
//! absent, and (in `every_op_text`) the text of every op.
//!
//! A golden file is never edited to make a test pass: if the stored form
//! has to change, the old form must keep decoding (a new schema version
//! with a migration, see ARCHITECTURE.md, "On-disk formats"). To add a case,
//! add it below and run with `COGRAPH_GOLDEN_CREATE=1`, which writes the
//! files that do not exist yet and never touches one that does.

use std::path::PathBuf;

use cograph::graph::{
    Body, EditOp, FunctionId, FunctionRef, NodeId, NodeRef, NodeSpec, Op, OpSpec, Param,
    QualifiedName, Type, Value,
};
use cograph::store::{decode_ops, encode_ops};

fn golden_path(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/edit_ops")
        .join(format!("{case}.json"))
}

fn check(case: &str, ops: Vec<EditOp>) {
    let path = golden_path(case);
    let encoded = encode_ops(&ops).expect("ops encode");
    if !path.exists() && std::env::var_os("COGRAPH_GOLDEN_CREATE").is_some() {
        std::fs::write(&path, &encoded).expect("write the new golden file");
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; to add a case, run with COGRAPH_GOLDEN_CREATE=1",
            path.display()
        )
    });
    assert_eq!(
        encoded,
        golden,
        "the stored form of `{case}` changed: logs written before would not read back the \
         same; keep the old form readable (a new schema version) instead of editing {}",
        path.display()
    );
    let decoded =
        decode_ops(&golden).unwrap_or_else(|e| panic!("{case}: the file no longer decodes: {e}"));
    assert_eq!(decoded, ops, "`{case}` decodes to other ops");
    // The tag of each op is its kind, as `history` and the summaries name it.
    let raw: serde_json::Value = serde_json::from_str(&golden).unwrap();
    let tags: Vec<&str> = raw
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op.as_object().unwrap().keys().next().unwrap().as_str())
        .collect();
    let kinds: Vec<&str> = ops.iter().map(EditOp::kind).collect();
    assert_eq!(tags, kinds);
}

fn name(text: &str) -> QualifiedName {
    QualifiedName::new(text).unwrap()
}

fn by_id(id: u64) -> FunctionRef {
    FunctionRef::Id(FunctionId(id))
}

fn by_name(text: &str) -> FunctionRef {
    FunctionRef::Name(name(text))
}

fn node(id: u32) -> NodeRef {
    NodeRef::Id(NodeId(id))
}

fn alias(text: &str) -> NodeRef {
    NodeRef::Alias(text.to_string())
}

fn param(name: &str, ty: Type) -> Param {
    Param {
        name: name.to_string(),
        ty,
    }
}

fn spec(id: u32, op: Op, inputs: &[u32]) -> NodeSpec {
    NodeSpec {
        id,
        op: OpSpec::Op(op),
        inputs: inputs.to_vec(),
    }
}

macro_rules! golden {
    ($($case:ident => $ops:expr;)*) => {
        $(
            #[test]
            fn $case() {
                check(stringify!($case), $ops);
            }
        )*
    };
}

golden! {
    add_node => vec![EditOp::AddNode {
        function: by_id(3),
        op: OpSpec::Call(by_name("math::fib")),
        inputs: vec![node(0), alias("$prev")],
        alias: Some("$fib".into()),
    }];
    add_node_without_alias_or_inputs => vec![EditOp::AddNode {
        function: by_name("demo::f"),
        op: OpSpec::Op(Op::Const(Value::F64(2.5))),
        inputs: vec![],
        alias: None,
    }];
    remove_node => vec![EditOp::RemoveNode {
        function: by_name("demo::f"),
        node: node(4),
    }];
    remove_node_by_alias => vec![EditOp::RemoveNode {
        function: by_id(3),
        node: alias("$tmp"),
    }];
    set_inputs => vec![EditOp::SetInputs {
        function: by_id(3),
        node: alias("$fib"),
        inputs: vec![node(2), alias("$prev"), node(2)],
    }];
    set_op => vec![EditOp::SetOp {
        function: by_name("demo::f"),
        node: node(2),
        op: OpSpec::Call(by_id(7)),
    }];
    set_signature => vec![EditOp::SetSignature {
        function: by_id(3),
        params: vec![param("x", Type::I64), param("scale", Type::F64), param("on", Type::Bool)],
        returns: Type::Unit,
    }];
    set_doc => vec![EditOp::SetDoc {
        function: by_name("demo::f"),
        doc: Some("Adds one.\n\"Twice\" \\ tab\there; ünïcode ✓".into()),
    }];
    set_doc_cleared => vec![EditOp::SetDoc {
        function: by_id(3),
        doc: None,
    }];
    replace_body_text => vec![EditOp::ReplaceBody {
        function: by_id(3),
        body: Body::Text("%0 = param x\n%1 = const 1\n%2 = add %0, %1\n%3 = return %2\n".into()),
    }];
    replace_body_nodes => vec![EditOp::ReplaceBody {
        function: by_name("demo::g"),
        body: Body::Nodes(vec![
            spec(0, Op::Param(0), &[]),
            spec(1, Op::Const(Value::Bool(true)), &[]),
            spec(2, Op::If, &[1, 0, 0]),
            NodeSpec {
                id: 3,
                op: OpSpec::Call(by_name("demo::f")),
                inputs: vec![2],
            },
            spec(5, Op::Return, &[3]),
        ]),
    }];
    create_function => vec![EditOp::CreateFunction {
        name: name("math::fib"),
        params: vec![param("n", Type::I64)],
        returns: Type::I64,
        doc: Some("The nth Fibonacci number.".into()),
        body: Some(Body::Text("%0 = param n\n%1 = return %0\n".into())),
    }];
    create_function_without_doc_or_body => vec![EditOp::CreateFunction {
        name: name("util::noop"),
        params: vec![],
        returns: Type::Unit,
        doc: None,
        body: None,
    }];
    delete_function => vec![EditOp::DeleteFunction {
        function: by_id(5),
    }];
    delete_function_by_name => vec![EditOp::DeleteFunction {
        function: by_name("util::noop"),
    }];
    rename_function => vec![EditOp::RenameFunction {
        function: by_name("demo::g"),
        new_name: name("other::g2"),
    }];
    rename_function_by_id => vec![EditOp::RenameFunction {
        function: by_id(2),
        new_name: name("demo::g"),
    }];
    every_op_text => {
        let ops = [
            OpSpec::Op(Op::Const(Value::I64(-42))),
            OpSpec::Op(Op::Const(Value::I64(i64::MAX))),
            OpSpec::Op(Op::Const(Value::F64(-0.0))),
            OpSpec::Op(Op::Const(Value::F64(1e300))),
            OpSpec::Op(Op::Const(Value::F64(f64::NEG_INFINITY))),
            OpSpec::Op(Op::Const(Value::Bool(false))),
            OpSpec::Op(Op::Const(Value::Unit)),
            OpSpec::Op(Op::Param(1)),
            OpSpec::ParamNamed("n".into()),
            OpSpec::Call(by_id(12)),
            OpSpec::Call(by_name("math::fib")),
            OpSpec::Op(Op::Add),
            OpSpec::Op(Op::Sub),
            OpSpec::Op(Op::Mul),
            OpSpec::Op(Op::Div),
            OpSpec::Op(Op::Rem),
            OpSpec::Op(Op::Neg),
            OpSpec::Op(Op::Eq),
            OpSpec::Op(Op::Ne),
            OpSpec::Op(Op::Lt),
            OpSpec::Op(Op::Le),
            OpSpec::Op(Op::Gt),
            OpSpec::Op(Op::Ge),
            OpSpec::Op(Op::And),
            OpSpec::Op(Op::Or),
            OpSpec::Op(Op::Xor),
            OpSpec::Op(Op::Not),
            OpSpec::Op(Op::ToF64),
            OpSpec::Op(Op::ToI64),
            OpSpec::Op(Op::If),
            OpSpec::Op(Op::Return),
        ];
        ops.into_iter()
            .enumerate()
            .map(|(idx, op)| EditOp::SetOp {
                function: by_id(1),
                node: node(idx as u32),
                op,
            })
            .collect()
    };
}
