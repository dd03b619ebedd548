//! Whole programs as text and as JSON: what `cograph check`, `run`, `fmt`,
//! `import` and `export` read and write. Parsing only; reading the file is
//! the caller's job.
//!
//! A text program is functions one after another, and calls resolve
//! against every function in the file. Either every header states its
//! function's id (`fn #7 math::fib(...)`) or none does, and then they get
//! ids 1, 2, ... in the order written; a last `next #N` line raises the
//! function-id counter. Both forms keep ids, node ids, node-id counters and
//! the function-id counter, so `render_program` and `program_to_json` each
//! round-trip a store exactly.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::edit_ops::{Body, EditOp};
use super::function::{Function, Node, Param, QualifiedName, Signature};
use super::function_ref::FunctionRef;
use super::ids::{FunctionId, NodeId, Revision};
use super::limits::MAX_FUNCTION_ID;
use super::program::{FunctionEntry, Program};
use super::text::{
    FunctionText, OpSpec, ParseError, parse_functions, render_function, render_function_as,
    render_op,
};
use super::types::Type;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("line {line}: a function named `{name}` is already defined")]
    DuplicateName { name: QualifiedName, line: usize },
    #[error(
        "line {line}: `{name}` {}, but `{first}` (line {first_line}) {}; state an id on every function or on none",
        states(.stated),
        states(.first_stated)
    )]
    MixedIds {
        name: QualifiedName,
        line: usize,
        stated: Option<FunctionId>,
        first: QualifiedName,
        first_line: usize,
        first_stated: Option<FunctionId>,
    },
    #[error("line {line}: `{name}` has id {id}, and so has `{first}` (line {first_line})")]
    DuplicateId {
        id: FunctionId,
        name: QualifiedName,
        line: usize,
        first: QualifiedName,
        first_line: usize,
    },
    #[error("line {line}: function ids are #1 to #{MAX_FUNCTION_ID}, found #{id}")]
    IdOutOfRange { id: u64, line: usize },
    #[error(
        "line {line}: `next #{next}` must be above every function id (at least #{least}) and at most #{}",
        MAX_FUNCTION_ID + 1
    )]
    BadNext { next: u64, least: u64, line: usize },
    #[error("invalid program json: {0}")]
    Json(String),
    #[error("{0}")]
    Invalid(String),
}

fn states(id: &Option<FunctionId>) -> String {
    id.map_or_else(|| "states no id".into(), |id| format!("states {id}"))
}

/// The ids of a text program's functions: as stated, or 1, 2, ... when no
/// header states one.
fn text_ids(texts: &[FunctionText]) -> Result<Vec<FunctionId>, LoadError> {
    let Some(first) = texts.first() else {
        return Ok(Vec::new());
    };
    let mut seen: std::collections::HashMap<FunctionId, &FunctionText> = Default::default();
    let mut ids = Vec::with_capacity(texts.len());
    for (idx, f) in texts.iter().enumerate() {
        if f.id.is_some() != first.id.is_some() {
            return Err(LoadError::MixedIds {
                name: f.name.clone(),
                line: f.line,
                stated: f.id,
                first: first.name.clone(),
                first_line: first.line,
                first_stated: first.id,
            });
        }
        let id = f.id.unwrap_or(FunctionId(idx as u64 + 1));
        if !(1..=MAX_FUNCTION_ID).contains(&id.0) {
            return Err(LoadError::IdOutOfRange {
                id: id.0,
                line: f.line,
            });
        }
        if let Some(other) = seen.insert(id, f) {
            return Err(LoadError::DuplicateId {
                id,
                name: f.name.clone(),
                line: f.line,
                first: other.name.clone(),
                first_line: other.line,
            });
        }
        ids.push(id);
    }
    Ok(ids)
}

/// Parses a text program.
pub fn load_program_text(text: &str) -> Result<Program, LoadError> {
    let parsed = parse_functions(text)?;
    let ids = text_ids(&parsed.functions)?;
    let mut names = std::collections::HashMap::new();
    for (f, id) in parsed.functions.iter().zip(&ids) {
        if names.insert(f.name.clone(), *id).is_some() {
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
    for (text, id) in parsed.functions.iter().zip(ids) {
        let f = text.resolve(&resolve)?;
        program.put(id, FunctionEntry::new(Arc::new(f), Revision(0)));
    }
    if let Some((next, line)) = parsed.next {
        let least = program.next_function_id().0;
        if next < least || next > MAX_FUNCTION_ID + 1 {
            return Err(LoadError::BadNext { next, least, line });
        }
        program.reserve_function_ids(next);
    }
    Ok(program)
}

/// Renders a program file: every function in id order with its id in the
/// header, separated by blank lines, then `next #N` if the function-id
/// counter is above the highest id. `load_program_text` gives the program
/// back exactly.
pub fn render_program(program: &Program) -> String {
    let namer = program.namer();
    let mut out = program
        .functions()
        .map(|(id, e)| render_function_as(&e.function, Some(id), &namer))
        .collect::<Vec<_>>()
        .join("\n");
    let dense = program
        .functions()
        .next_back()
        .map_or(1, |(id, _)| id.0 + 1);
    let next = program.next_function_id();
    if next.0 != dense {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("next {next}\n"));
    }
    out
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
        if !(1..=MAX_FUNCTION_ID).contains(&fj.id) {
            return Err(LoadError::Invalid(format!(
                "`{}` has id {}: function ids are 1 to {MAX_FUNCTION_ID}",
                fj.name, fj.id
            )));
        }
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
    if doc.next_function_id < program.next_function_id().0
        || doc.next_function_id > MAX_FUNCTION_ID + 1
    {
        return Err(LoadError::Invalid(format!(
            "next_function_id {} must be above every function id and at most {}",
            doc.next_function_id,
            MAX_FUNCTION_ID + 1
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

#[cfg(test)]
mod tests {
    //! Program files: stated ids and `next #N` load as written and render
    //! back byte for byte; each way of stating them wrongly is refused,
    //! naming the line and the functions.

    use super::*;

    const WITH_GAPS: &str = "fn #2 m::f() -> i64 {\n  %0 = call m::g\n  %3 = return %0\n  next %5\n}\n\nfn #6 m::g() -> i64 {\n  %0 = const 1\n  %1 = return %0\n}\n\nnext #9\n";

    #[test]
    fn stated_ids_and_counters_load_and_render_back() {
        let program = load_program_text(WITH_GAPS).unwrap();
        let ids: Vec<u64> = program.functions().map(|(id, _)| id.0).collect();
        assert_eq!(ids, [2, 6]);
        assert_eq!(program.next_function_id(), FunctionId(9));
        let f = &program.get(FunctionId(2)).unwrap().function;
        assert_eq!(f.next_node, 5);
        assert_eq!(
            f.nodes[&NodeId(0)].op,
            super::super::op::Op::Call(FunctionId(6))
        );
        assert_eq!(render_program(&program), WITH_GAPS);
        let json = serde_json::to_string(&program_to_json(&program)).unwrap();
        assert_eq!(load_program_json(&json).unwrap(), program);
    }

    #[test]
    fn without_ids_functions_are_numbered_in_file_order() {
        let text = "fn m::a() -> unit {\n}\nfn m::b() -> unit {\n}\nnext #7\n";
        let program = load_program_text(text).unwrap();
        let ids: Vec<u64> = program.functions().map(|(id, _)| id.0).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(program.next_function_id(), FunctionId(7));
        assert!(render_program(&program).starts_with("fn #1 m::a() -> unit {\n"));
    }

    fn refusal(text: &str) -> String {
        load_program_text(text).unwrap_err().to_string()
    }

    #[test]
    fn mixed_ids_name_both_functions() {
        let m = refusal("fn #4 m::a() -> unit {\n}\nfn m::b() -> unit {\n}\n");
        assert_eq!(
            m,
            "line 3: `m::b` states no id, but `m::a` (line 1) states #4; state an id on every function or on none"
        );
        let m = refusal("fn m::a() -> unit {\n}\nfn #4 m::b() -> unit {\n}\n");
        assert!(
            m.starts_with("line 3: `m::b` states #4, but `m::a` (line 1) states no id"),
            "{m}"
        );
    }

    #[test]
    fn a_duplicate_id_names_both_functions() {
        let m = refusal("fn #4 m::a() -> unit {\n}\nfn #4 m::b() -> unit {\n}\n");
        assert_eq!(m, "line 3: `m::b` has id #4, and so has `m::a` (line 1)");
    }

    #[test]
    fn ids_out_of_range_are_refused() {
        for id in [0, MAX_FUNCTION_ID + 1, u64::MAX] {
            let m = refusal(&format!("fn #{id} m::a() -> unit {{\n}}\n"));
            assert!(
                m.starts_with("line 1: function ids are #1 to #"),
                "{id}: {m}"
            );
            let json = format!(
                r#"{{"format":"cograph-program","version":1,"next_function_id":1,"functions":[{{"id":{id},"name":"m::a","params":[],"returns":"unit","next_node":0,"nodes":[]}}]}}"#
            );
            let m = load_program_json(&json).unwrap_err().to_string();
            assert!(m.contains("function ids are 1 to"), "{id}: {m}");
        }
    }

    #[test]
    fn a_next_line_below_the_ids_is_refused() {
        let m = refusal("fn #4 m::a() -> unit {\n}\nnext #4\n");
        assert!(
            m.starts_with("line 3: `next #4` must be above every function id (at least #5)"),
            "{m}"
        );
        assert!(refusal(&format!("next #{}\n", MAX_FUNCTION_ID + 2)).starts_with("line 1: "));
    }
}
