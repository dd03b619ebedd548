//! The language half of the reference agents read
//! (`cograph://docs/language`): the types, the op table and the text-form
//! grammar with a worked example, all generated from the code, so that an
//! op added to [`Op`] shows up here (or fails to compile until it does; see
//! `Op::info`). The edit ops' JSON shapes are the MCP layer's and are
//! documented there. Pure: builds strings, reads nothing.

use std::fmt::Write as _;

use std::sync::Arc;

use super::file::render_program;
use super::function::{Function, Param, QualifiedName, Signature};
use super::ids::{FunctionId, NodeId, Revision};
use super::op::{OPS, Op};
use super::program::{FunctionEntry, Program};
use super::text::render_function;
use super::types::{Type, Value};

/// The id the worked example is rendered with (it calls itself).
pub const EXAMPLE_ID: FunctionId = FunctionId(1);

/// The worked example: `math::fib`, recursive, with a comparison, an `if`
/// and two calls. Built node by node, not parsed, so that the text the
/// reference shows is whatever the renderer makes of a real function.
pub fn worked_example() -> Function {
    let name = QualifiedName::new("math::fib").expect("a valid name");
    let mut f = Function::new(
        name,
        Signature {
            params: vec![Param {
                name: "n".into(),
                ty: Type::I64,
            }],
            returns: Type::I64,
        },
    );
    f.doc = Some("The nth Fibonacci number, by plain recursion.".into());
    let n = f.push_node(Op::Param(0), vec![]);
    let two = f.push_node(Op::Const(Value::I64(2)), vec![]);
    let small = f.push_node(Op::Lt, vec![n, two]);
    let one = f.push_node(Op::Const(Value::I64(1)), vec![]);
    let n1 = f.push_node(Op::Sub, vec![n, one]);
    let fib1 = f.push_node(Op::Call(EXAMPLE_ID), vec![n1]);
    let n2 = f.push_node(Op::Sub, vec![n1, one]);
    let fib2 = f.push_node(Op::Call(EXAMPLE_ID), vec![n2]);
    let sum = f.push_node(Op::Add, vec![fib1, fib2]);
    let result = f.push_node(Op::If, vec![small, n, sum]);
    f.push_node(Op::Return, vec![result]);
    f
}

/// The worked example in the text form.
pub fn worked_example_text() -> String {
    let f = worked_example();
    let name = f.name.clone();
    render_function(&f, &|id| (id == EXAMPLE_ID).then(|| name.clone()))
}

/// The id and the function-id counter of the program-file example: ids 1,
/// 2 and 4 belonged to functions since deleted.
pub const FILE_EXAMPLE_ID: FunctionId = FunctionId(3);
pub const FILE_EXAMPLE_NEXT: u64 = 5;

/// A program file with one function, `demo::one` at id 3, and the
/// function-id counter at 5, as `cograph export` writes it.
pub fn program_file_example() -> String {
    let mut f = Function::new(
        QualifiedName::new("demo::one").expect("a valid name"),
        Signature {
            params: vec![],
            returns: Type::I64,
        },
    );
    let one = f.push_node(Op::Const(Value::I64(1)), vec![]);
    f.push_node(Op::Return, vec![one]);
    let mut program = Program::new();
    program.put(
        FILE_EXAMPLE_ID,
        FunctionEntry::new(Arc::new(f), Revision(0)),
    );
    program.reserve_function_ids(FILE_EXAMPLE_NEXT);
    render_program(&program)
}

/// The op table as a markdown table, one row per op of [`OPS`].
pub fn op_table() -> String {
    let mut out = String::from(
        "| op | written | inputs | result | what it does |\n| --- | --- | --- | --- | --- |\n",
    );
    for op in OPS {
        let info = op.info();
        writeln!(
            out,
            "| `{}` | `{}` | {} | {} | {} |",
            info.name, info.syntax, info.inputs, info.output, info.summary
        )
        .expect("write to string");
    }
    out
}

/// The types, the text form's grammar with the worked example, and the op
/// table, as markdown.
pub fn language_markdown() -> String {
    let types: Vec<String> = Type::ALL.iter().map(|t| format!("`{t}`")).collect();
    let example = worked_example_text();
    let file_example = program_file_example();
    let node = |id: u32| NodeId(id).to_string();
    format!(
        "## Programs\n\n\
A program is modules of functions. A function has a qualified name \
(`module::name`, unique), an optional doc, parameters, a return type and \
nodes. Each node is an op applied to input nodes of the same function; \
data flows along those inputs, without cycles. Types: {types}.\n\n\
## The text form\n\n\
Tools show functions in this form and accept it wherever a whole body or \
function is given:\n\n\
```text\n\
program  = function* [\"next\" #N]         (a program file: import, export, check, fmt)\n\
function = doc* \"fn\" [#id] module::name \"(\" [param {{\",\" param}}] \")\" \"->\" type \"{{\"\n\
           node* [\"next\" %N]\n\
           \"}}\"\n\
doc      = \"///\" text                  (one line of the doc)\n\
param    = name \":\" type\n\
node     = %N \"=\" op [%M {{\",\" %M}}]   (one node per line, inputs comma-separated)\n\
op       = \"const\" literal | \"param\" (index | name) | \"call\" (module::name | #id) | mnemonic\n\
literal  = 5 | -2 | 2.0 | true | false | ()\n\
comment  = \"//\" text                   (a line of its own)\n\
```\n\n\
Rules: node ids (`%N`) are a node's identity, unique in the function and \
never reused, so after removing the highest node the body ends with \
`next %N` (the next id to give). Inputs name nodes of the same function. \
There is exactly one `return`, and its input has the return type. The \
verifier checks arity, types, the single return, acyclicity and every \
`call` against its callee's signature; a commit that fails is refused \
whole.\n\n\
A worked example:\n\n\
```text\n{example}```\n\n\
`{p}` is the parameter `n`; `{lt}` is `n < 2`; `{c1}` and `{c2}` call the \
function itself; `{iff}` chooses `n` or the sum, running only the chosen \
branch; `{ret}` returns it.\n\n\
A program file (`cograph export` writes one; `import`, `check`, `run` and \
`fmt` read them) is functions one after another. Its headers state each \
function's id, `fn #7 math::fib(n: i64) -> i64 {{` (every header or none; \
with none, ids are 1, 2, ... in file order), and a last line `next #N` \
gives the next function id when functions were deleted, so a program \
comes back with the same ids. Tools show and take a function without its \
id; a whole function given to `replace_body` may state only its own:\n\n\
```text\n{file_example}```\n\n\
## Ops\n\n\
Arity is the number of inputs; `call` takes one input per parameter of the \
callee.\n\n{table}",
        types = types.join(", "),
        p = node(0),
        lt = node(2),
        c1 = node(5),
        c2 = node(7),
        iff = node(9),
        ret = node(10),
        table = op_table(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::function_ref::FunctionRef;
    use crate::graph::op::op_names;
    use crate::graph::text::parse_function;

    #[test]
    fn the_worked_example_parses_back_to_itself() {
        let text = worked_example_text();
        let resolve = |r: &FunctionRef| match r {
            FunctionRef::Name(n) if n.as_str() == "math::fib" => Some(EXAMPLE_ID),
            _ => None,
        };
        assert_eq!(parse_function(&text, &resolve).unwrap(), worked_example());
    }

    #[test]
    fn the_explanation_names_the_nodes_it_explains() {
        let f = worked_example();
        let op = |id: u32| f.nodes[&NodeId(id)].op;
        assert_eq!(op(0), Op::Param(0));
        assert_eq!(op(2), Op::Lt);
        assert_eq!(op(5), Op::Call(EXAMPLE_ID));
        assert_eq!(op(7), Op::Call(EXAMPLE_ID));
        assert_eq!(op(9), Op::If);
        assert_eq!(op(10), Op::Return);
    }

    #[test]
    fn the_program_file_example_states_its_id_and_counter() {
        let text = program_file_example();
        assert!(text.starts_with("fn #3 demo::one() -> i64 {\n"), "{text}");
        assert!(text.ends_with("}\n\nnext #5\n"), "{text}");
        let program = crate::graph::load_program_text(&text).unwrap();
        assert!(program.get(FILE_EXAMPLE_ID).is_some());
        assert_eq!(program.next_function_id().0, FILE_EXAMPLE_NEXT);
        assert!(language_markdown().contains(&text));
    }

    #[test]
    fn every_op_has_a_row() {
        let table = op_table();
        for name in op_names() {
            assert!(table.contains(&format!("| `{name}` |")), "{name}");
        }
        assert_eq!(table.lines().count(), OPS.len() + 2);
    }

    #[test]
    fn every_type_is_named() {
        let md = language_markdown();
        for t in Type::ALL {
            assert!(md.contains(&format!("`{t}`")), "{t}");
        }
        assert!(md.contains(&worked_example_text()));
    }
}
