//! The text form: a compact, line-per-node rendering of functions that
//! models read and write more reliably than nested JSON.
//!
//! ```text
//! /// The nth Fibonacci number.
//! fn math::fib(n: i64) -> i64 {
//!   %0 = param 0
//!   %1 = const 2
//!   %2 = lt %0, %1
//!   %3 = call math::fib %0
//!   %4 = return %3
//! }
//! ```
//!
//! Calls name their callee (`call math::fib`, or `call #17` for an id with
//! no name). Node ids are written out because they are the nodes' identity;
//! a `next %N` line appears only when the node-id counter is above the
//! highest id, which happens after the highest node was removed. Lines that
//! start with `//` (but not `///`) are comments. For every function,
//! `parse(render(f)) == f` when both sides resolve names the same way.
//!
//! A program file may state each function's id in its header
//! (`fn #7 math::fib(n: i64) -> i64 {`, the `#N` that `call #17` uses) and
//! end with a `next #N` line when the function-id counter is above the
//! highest id; `file.rs` gives those meaning. The form tools show and take
//! for one function states no id.
//!
//! Parsing is split in two: text → [`FunctionText`] (names unresolved, no
//! program needed), then [`FunctionText::resolve`] against the program's
//! names (`parse.rs`). Errors name the line and column and what was
//! expected.

use std::fmt;
use std::fmt::Write as _;

use super::function::{Function, Node, QualifiedName, Signature};
use super::function_ref::FunctionRef;
use super::ids::{FunctionId, NodeId};
use super::op::Op;

/// An op as written, before names are resolved against a program. It
/// serialises as its text (`"add"`, `"call math::fib"`, `"param n"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpSpec {
    /// An op that needs no resolution.
    Op(Op),
    /// `param n`: a parameter named rather than numbered.
    ParamNamed(String),
    /// `call f` before `f` is resolved to an id.
    Call(FunctionRef),
}

impl fmt::Display for OpSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpSpec::Op(op) => f.write_str(&render_op(op, &|_| None)),
            OpSpec::ParamNamed(name) => write!(f, "param {name}"),
            OpSpec::Call(r) => write!(f, "call {r}"),
        }
    }
}

impl serde::Serialize for OpSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for OpSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        parse_op(&text).map_err(serde::de::Error::custom)
    }
}

/// Why an `OpSpec` could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    UnknownFunction(FunctionRef),
    UnknownParam(String),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::UnknownFunction(r) => write!(f, "no function `{r}`"),
            ResolveError::UnknownParam(p) => write!(f, "no parameter named `{p}`"),
        }
    }
}

impl OpSpec {
    pub fn resolve(
        &self,
        resolve: &dyn Fn(&FunctionRef) -> Option<FunctionId>,
        signature: &Signature,
    ) -> Result<Op, ResolveError> {
        match self {
            OpSpec::Op(op) => Ok(*op),
            OpSpec::ParamNamed(name) => signature
                .params
                .iter()
                .position(|p| &p.name == name)
                .map(|idx| Op::Param(idx as u32))
                .ok_or_else(|| ResolveError::UnknownParam(name.clone())),
            OpSpec::Call(r) => resolve(r)
                .map(Op::Call)
                .ok_or_else(|| ResolveError::UnknownFunction(r.clone())),
        }
    }

    /// The callee this op names, if it is a call.
    pub fn callee(&self) -> Option<&FunctionRef> {
        match self {
            OpSpec::Call(r) => Some(r),
            _ => None,
        }
    }
}

/// A text-form error: where, what was expected and what was found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: expected {expected}, found {found}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub expected: String,
    pub found: String,
}

// ---------------------------------------------------------------------------
// Rendering

/// Renders `op` without its inputs: `add`, `const 5`, `call math::fib`.
/// `name_of` gives callee names; a callee without one renders as `#id`.
pub fn render_op(op: &Op, name_of: &dyn Fn(FunctionId) -> Option<QualifiedName>) -> String {
    match op {
        Op::Const(v) => format!("const {}", v.literal()),
        Op::Param(idx) => format!("param {idx}"),
        Op::Call(id) => match name_of(*id) {
            Some(name) => format!("call {name}"),
            None => format!("call {id}"),
        },
        other => other.mnemonic().to_string(),
    }
}

/// Renders one node line without indentation: `%3 = add %1, %2`.
pub fn render_node(
    id: NodeId,
    node: &Node,
    name_of: &dyn Fn(FunctionId) -> Option<QualifiedName>,
) -> String {
    let mut line = format!("{id} = {}", render_op(&node.op, name_of));
    for (idx, input) in node.inputs.iter().enumerate() {
        line.push_str(if idx == 0 { " " } else { ", " });
        write!(line, "{input}").expect("write to string");
    }
    line
}

/// Renders a function in the text form, ending with a newline. The header
/// states no id: this is the form tools show and take, where the function
/// is named by the call.
pub fn render_function(
    f: &Function,
    name_of: &dyn Fn(FunctionId) -> Option<QualifiedName>,
) -> String {
    render_function_as(f, None, name_of)
}

/// Renders a function with its id in the header when `id` is given
/// (`fn #7 math::fib(n: i64) -> i64 {`), as program files write it.
pub fn render_function_as(
    f: &Function,
    id: Option<FunctionId>,
    name_of: &dyn Fn(FunctionId) -> Option<QualifiedName>,
) -> String {
    let mut out = String::new();
    if let Some(doc) = &f.doc {
        for line in doc.split('\n') {
            if line.is_empty() {
                out.push_str("///\n");
            } else {
                writeln!(out, "/// {line}").expect("write to string");
            }
        }
    }
    out.push_str("fn ");
    if let Some(id) = id {
        write!(out, "{id} ").expect("write to string");
    }
    writeln!(out, "{}{} {{", f.name, f.signature).expect("write to string");
    for (id, node) in &f.nodes {
        writeln!(out, "  {}", render_node(*id, node, name_of)).expect("write to string");
    }
    if f.next_node != f.dense_next_node() {
        writeln!(out, "  next %{}", f.next_node).expect("write to string");
    }
    out.push_str("}\n");
    out
}

mod parse;

pub use parse::{
    BodyText, FunctionText, NodeText, ProgramText, parse_body, parse_function, parse_function_text,
    parse_functions, parse_op, parse_type,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Value;

    fn no_names(_: FunctionId) -> Option<QualifiedName> {
        None
    }

    fn fib_text() -> &'static str {
        "/// The nth Fibonacci number.\n\
         fn math::fib(n: i64) -> i64 {\n\
         \x20 %0 = param 0\n\
         \x20 %1 = const 2\n\
         \x20 %2 = lt %0, %1\n\
         \x20 %3 = const 1\n\
         \x20 %4 = sub %0, %3\n\
         \x20 %5 = call math::fib %4\n\
         \x20 %6 = sub %4, %3\n\
         \x20 %7 = call math::fib %6\n\
         \x20 %8 = add %5, %7\n\
         \x20 %9 = if %2, %0, %8\n\
         \x20 %10 = return %9\n\
         }\n"
    }

    fn resolve_fib(r: &FunctionRef) -> Option<FunctionId> {
        match r {
            FunctionRef::Name(n) if n.as_str() == "math::fib" => Some(FunctionId(1)),
            FunctionRef::Id(id) => Some(*id),
            _ => None,
        }
    }

    fn fib_names(id: FunctionId) -> Option<QualifiedName> {
        (id == FunctionId(1)).then(|| QualifiedName::new("math::fib").unwrap())
    }

    #[test]
    fn fib_renders_exactly_as_written() {
        let f = parse_function(fib_text(), &resolve_fib).unwrap();
        assert_eq!(f.nodes.len(), 11);
        assert_eq!(f.doc.as_deref(), Some("The nth Fibonacci number."));
        assert_eq!(render_function(&f, &fib_names), fib_text());
    }

    #[test]
    fn next_line_appears_only_when_needed() {
        let mut f = parse_function(fib_text(), &resolve_fib).unwrap();
        f.nodes.remove(&NodeId(10));
        let text = render_function(&f, &fib_names);
        assert!(text.contains("  next %11\n}"), "{text}");
        assert_eq!(parse_function(&text, &resolve_fib).unwrap(), f);
    }

    #[test]
    fn unknown_callee_renders_as_id() {
        let f = parse_function(fib_text(), &resolve_fib).unwrap();
        let text = render_function(&f, &no_names);
        assert!(text.contains("call #1 %4"));
        assert_eq!(parse_function(&text, &resolve_fib).unwrap(), f);
    }

    #[test]
    fn docs_with_blank_and_indented_lines_round_trip() {
        let mut f = parse_function(fib_text(), &resolve_fib).unwrap();
        for doc in ["", "\n", " lead", "a\n\n  b ", "trailing \t", "\n\nx"] {
            f.doc = Some(doc.to_string());
            let text = render_function(&f, &fib_names);
            assert_eq!(parse_function(&text, &resolve_fib).unwrap(), f, "{doc:?}");
        }
    }

    #[test]
    fn param_by_name() {
        let text = "fn a::f(x: i64, y: i64) -> i64 {\n  %0 = param y\n  %1 = return %0\n}\n";
        let f = parse_function(text, &|_| None).unwrap();
        assert_eq!(f.nodes[&NodeId(0)].op, Op::Param(1));
    }

    fn err(text: &str) -> ParseError {
        parse_function(text, &resolve_fib).unwrap_err()
    }

    #[test]
    fn error_names_line_column_and_expectation() {
        let e = err("fn math::f(n: i64) -> i64 {\n  %0 = ad %1\n}\n");
        assert_eq!((e.line, e.column), (2, 8));
        assert!(e.expected.starts_with("an op"), "{e}");
        assert_eq!(e.found, "`ad` (did you mean `add` or `and`?)");
    }

    #[test]
    fn unknown_op_lists_every_op() {
        let e = err("fn math::f(n: i64) -> i64 {\n  %0 = select %1\n}\n");
        for name in crate::graph::op::op_names() {
            assert!(e.expected.contains(&format!("`{name}`")), "{name}: {e}");
        }
        assert_eq!(e.found, "`select`");
    }

    #[test]
    fn error_table() {
        let cases: &[(&str, &str, usize, usize)] = &[
            (
                "missing_brace",
                "fn a::f() -> i64 {\n  %0 = const 1\n",
                3,
                1,
            ),
            ("bad_type", "fn a::f() -> int {\n}\n", 1, 14),
            ("unqualified", "fn f() -> i64 {\n}\n", 1, 4),
            (
                "bad_literal",
                "fn a::f() -> i64 {\n  %0 = const 1x\n}\n",
                2,
                14,
            ),
            (
                "missing_comma",
                "fn a::f() -> i64 {\n  %0 = add %1 %2\n}\n",
                2,
                15,
            ),
            ("missing_eq", "fn a::f() -> i64 {\n  %0 add\n}\n", 2, 6),
            (
                "unknown_callee",
                "fn a::f() -> i64 {\n  %0 = call a::g\n}\n",
                2,
                8,
            ),
            (
                "duplicate_id",
                "fn a::f() -> i64 {\n  %0 = const 1\n  %0 = const 2\n}\n",
                3,
                1,
            ),
            (
                "next_too_low",
                "fn a::f() -> i64 {\n  %4 = const 1\n  next %2\n}\n",
                1,
                1,
            ),
            ("trailing", "fn a::f() -> i64 {\n}\nextra\n", 3, 1),
            (
                "node_after_next",
                "fn a::f() -> i64 {\n  next %2\n  %0 = const 1\n}\n",
                3,
                3,
            ),
            ("empty", "", 1, 1),
        ];
        for (name, text, line, column) in cases {
            let e = err(text);
            assert_eq!((e.line, e.column), (*line, *column), "{name}: {e}");
        }
    }

    #[test]
    fn ops_parse_alone() {
        assert_eq!(parse_op("add").unwrap(), OpSpec::Op(Op::Add));
        assert_eq!(
            parse_op("const -2.5").unwrap(),
            OpSpec::Op(Op::Const(Value::F64(-2.5)))
        );
        assert_eq!(
            parse_op("call m::g").unwrap(),
            OpSpec::Call(FunctionRef::Name(QualifiedName::new("m::g").unwrap()))
        );
        assert_eq!(
            parse_op("call #7").unwrap(),
            OpSpec::Call(FunctionRef::Id(FunctionId(7)))
        );
        assert!(parse_op("add %1").is_err());
        assert!(parse_op("addx").is_err());
        assert!(parse_op("").is_err());
    }

    #[test]
    fn body_alone_or_with_header() {
        let (header, body) = parse_body("%0 = const 1\n%1 = return %0\n").unwrap();
        assert!(header.is_none());
        assert_eq!(body.nodes.len(), 2);
        let (header, body) = parse_body(fib_text()).unwrap();
        assert_eq!(header.unwrap().name.as_str(), "math::fib");
        assert_eq!(body.nodes.len(), 11);
    }

    #[test]
    fn several_functions_with_comments() {
        let text = format!("// a comment\n\n{}\n// between\n{}", fib_text(), fib_text());
        assert_eq!(parse_functions(&text).unwrap().functions.len(), 2);
    }

    #[test]
    fn a_stated_id_renders_and_parses_back() {
        let f = parse_function(fib_text(), &resolve_fib).unwrap();
        let text = render_function_as(&f, Some(FunctionId(7)), &fib_names);
        assert!(
            text.contains("\nfn #7 math::fib(n: i64) -> i64 {\n"),
            "{text}"
        );
        let parsed = parse_function_text(&text).unwrap();
        assert_eq!(parsed.id, Some(FunctionId(7)));
        assert_eq!(parsed.resolve(&resolve_fib).unwrap(), f);
        assert_eq!(parse_function_text(fib_text()).unwrap().id, None);
    }

    #[test]
    fn a_program_ends_with_at_most_one_next_line() {
        let text = format!("{}\n// the counter\nnext #9\n", fib_text());
        let program = parse_functions(&text).unwrap();
        assert_eq!(program.functions.len(), 1);
        assert_eq!(program.next, Some((9, 17)));
        let after = |tail: &str| parse_functions(&format!("{}{tail}", fib_text())).unwrap_err();
        let cases = [
            (
                "function_after_next",
                "next #9\nfn a::g() -> i64 {\n}\n",
                16,
                1,
            ),
            ("second_next", "next #9\nnext #10\n", 16, 1),
            ("node_id_not_function_id", "next %9\n", 15, 6),
            ("trailing", "next #9 x\n", 15, 9),
            ("id_without_space", "fn #7a::g() -> i64 {\n}\n", 15, 6),
            ("id_not_a_number", "fn #x a::g() -> i64 {\n}\n", 15, 5),
        ];
        for (name, tail, line, column) in cases {
            let e = after(tail);
            assert_eq!((e.line, e.column), (line, column), "{name}: {e}");
        }
    }
}
