//! Whole programs as text and as JSON: what `cograph check`, `run`, `fmt`,
//! `import` and `export` read and write. Parsing only; reading the file is
//! the caller's job.
//!
//! A text program is functions one after another; they get ids 1, 2, ... in
//! the order written, and calls resolve against every function in the file.
//! The JSON form keeps ids, node-id counters and the function-id counter, so
//! it round-trips a store exactly.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::edit_ops::{Body, EditOp};
use super::function::{Function, Node, Param, QualifiedName, Signature};
use super::function_ref::FunctionRef;
use super::ids::{FunctionId, NodeId, Revision};
use super::program::{FunctionEntry, Program};
use super::text::{OpSpec, ParseError, parse_functions, render_function, render_op};
use super::types::Type;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("line {line}: a function named `{name}` is already defined")]
    DuplicateName { name: QualifiedName, line: usize },
    #[error("invalid program json: {0}")]
    Json(String),
    #[error("{0}")]
    Invalid(String),
}

/// Parses a text program.
pub fn load_program_text(text: &str) -> Result<Program, LoadError> {
    let texts = parse_functions(text)?;
    let mut names = std::collections::HashMap::new();
    for (idx, f) in texts.iter().enumerate() {
        if names
            .insert(f.name.clone(), FunctionId(idx as u64 + 1))
            .is_some()
        {
            return Err(LoadError::DuplicateName {
                name: f.name.clone(),
                line: f.line,
            });
        }
    }
    let resolve = |r: &FunctionRef| match r {
        FunctionRef::Name(n) => names.get(n).copied(),
        FunctionRef::Id(id) => Some(*id),
    };
    let mut program = Program::new();
    for (idx, text) in texts.iter().enumerate() {
        let f = text.resolve(&resolve)?;
        program.put(
            FunctionId(idx as u64 + 1),
            FunctionEntry::new(Arc::new(f), Revision(0)),
        );
    }
    Ok(program)
}

/// Renders every function in id order, separated by blank lines.
pub fn render_program(program: &Program) -> String {
    let namer = program.namer();
    program
        .functions()
        .map(|(_, e)| render_function(&e.function, &namer))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgramJson {
    format: String,
    version: u32,
    next_function_id: u64,
    functions: Vec<FunctionJson>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionJson {
    id: u64,
    name: QualifiedName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    doc: Option<String>,
    params: Vec<Param>,
    returns: Type,
    next_node: u32,
    nodes: Vec<NodeJson>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeJson {
    id: u32,
    op: OpSpec,
    #[serde(default)]
    inputs: Vec<u32>,
}

const JSON_FORMAT: &str = "cograph-program";

/// The JSON form of a program, ids and counters included.
pub fn program_to_json(program: &Program) -> serde_json::Value {
    let namer = program.namer();
    let functions = program
        .functions()
        .map(|(id, e)| {
            let f = &e.function;
            FunctionJson {
                id: id.0,
                name: f.name.clone(),
                doc: f.doc.clone(),
                params: f.signature.params.clone(),
                returns: f.signature.returns,
                next_node: f.next_node,
                nodes: f
                    .nodes
                    .iter()
                    .map(|(nid, n)| NodeJson {
                        id: nid.0,
                        op: super::text::parse_op(&render_op(&n.op, &namer))
                            .expect("rendered ops parse"),
                        inputs: n.inputs.iter().map(|i| i.0).collect(),
                    })
                    .collect(),
            }
        })
        .collect();
    serde_json::to_value(ProgramJson {
        format: JSON_FORMAT.to_string(),
        version: 1,
        next_function_id: program.next_function_id().0,
        functions,
    })
    .expect("program json serialises")
}

/// Parses the JSON form.
pub fn load_program_json(text: &str) -> Result<Program, LoadError> {
    let doc: ProgramJson =
        serde_json::from_str(text).map_err(|e| LoadError::Json(e.to_string()))?;
    if doc.format != JSON_FORMAT || doc.version != 1 {
        return Err(LoadError::Json(format!(
            "expected format `{JSON_FORMAT}` version 1, found `{}` version {}",
            doc.format, doc.version
        )));
    }
    let mut names = std::collections::HashMap::new();
    for f in &doc.functions {
        if names.insert(f.name.clone(), FunctionId(f.id)).is_some() {
            return Err(LoadError::Invalid(format!(
                "two functions are named `{}`",
                f.name
            )));
        }
    }
    let resolve = |r: &FunctionRef| match r {
        FunctionRef::Name(n) => names.get(n).copied(),
        FunctionRef::Id(id) => Some(*id),
    };
    let mut program = Program::new();
    for fj in &doc.functions {
        if program.get(FunctionId(fj.id)).is_some() {
            return Err(LoadError::Invalid(format!(
                "two functions have id {}",
                fj.id
            )));
        }
        let signature = Signature {
            params: fj.params.clone(),
            returns: fj.returns,
        };
        let mut f = Function::new(fj.name.clone(), signature);
        f.doc = fj.doc.clone();
        for n in &fj.nodes {
            let op = n
                .op
                .resolve(&resolve, &f.signature)
                .map_err(|e| LoadError::Invalid(format!("`{}` node %{}: {e}", fj.name, n.id)))?;
            let node = Node {
                op,
                inputs: n.inputs.iter().map(|i| NodeId(*i)).collect(),
            };
            if f.nodes.insert(NodeId(n.id), node).is_some() {
                return Err(LoadError::Invalid(format!(
                    "`{}` has two nodes %{}",
                    fj.name, n.id
                )));
            }
        }
        if fj.next_node < f.dense_next_node() {
            return Err(LoadError::Invalid(format!(
                "`{}` has next_node {} but uses node %{}",
                fj.name,
                fj.next_node,
                f.dense_next_node() - 1
            )));
        }
        f.next_node = fj.next_node;
        program.put(
            FunctionId(fj.id),
            FunctionEntry::new(Arc::new(f), Revision(0)),
        );
    }
    if doc.next_function_id < program.next_function_id().0 {
        return Err(LoadError::Invalid(format!(
            "next_function_id {} is not above every function id",
            doc.next_function_id
        )));
    }
    program.reserve_function_ids(doc.next_function_id);
    Ok(program)
}

/// The edit ops that load `program` into `into` as one commit, and whether
/// they recreate it exactly.
pub struct ImportPlan {
    pub ops: Vec<EditOp>,
    /// Function ids (gaps included), node ids and both counters are
    /// exactly `program`'s: `into` is empty and has never used its ids.
    pub exact: bool,
}

/// Plans loading `program` into `into`. A function whose name exists in
/// `into` has its signature, doc and body replaced (it keeps its id); the
/// others are created, with `program`'s ids when the plan is exact and with
/// fresh ids otherwise. Bodies are set after every function exists, so
/// calls may point anywhere; a function created by the plan has never had
/// a node, so its body's node ids are kept as written.
pub fn import_ops(program: &Program, into: &Program) -> ImportPlan {
    let exact = into.is_empty()
        && program
            .functions()
            .all(|(id, _)| id.0 >= into.next_function_id().0);
    let namer = program.namer();
    let mut ops = Vec::new();
    for (id, e) in program.functions() {
        let f = &e.function;
        if into.id_of(&f.name).is_some() {
            ops.push(EditOp::SetSignature {
                function: FunctionRef::Name(f.name.clone()),
                params: f.signature.params.clone(),
                returns: f.signature.returns,
            });
            ops.push(EditOp::SetDoc {
                function: FunctionRef::Name(f.name.clone()),
                doc: f.doc.clone(),
            });
            continue;
        }
        if exact {
            ops.push(EditOp::ReserveFunctionIds { next: id.0 });
        }
        ops.push(EditOp::CreateFunction {
            name: f.name.clone(),
            params: f.signature.params.clone(),
            returns: f.signature.returns,
            doc: f.doc.clone(),
            body: None,
        });
    }
    for (_, e) in program.functions() {
        ops.push(EditOp::ReplaceBody {
            function: FunctionRef::Name(e.function.name.clone()),
            body: Body::Text(render_function(&e.function, &namer)),
        });
    }
    if exact {
        ops.push(EditOp::ReserveFunctionIds {
            next: program.next_function_id().0,
        });
    }
    ImportPlan { ops, exact }
}

/// Parses either form: JSON when the text starts with `{`.
pub fn load_program(text: &str) -> Result<Program, LoadError> {
    if text.trim_start().starts_with('{') {
        load_program_json(text)
    } else {
        load_program_text(text)
    }
}
