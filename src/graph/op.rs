//! The v1 ops: what a node computes from its inputs.
//!
//! The op table is one source for everything said about ops: `Op::info`
//! gives each op's mnemonic, arity and typing in words (the language
//! reference prints it, the parser lists the names in its errors, the
//! verifier checks the arity), and [`OPS`] lists one op of each kind. An op
//! also knows its stable opcode in the canonical encoding. The typing rules
//! themselves are checked in `verify`; evaluation is `eval`.

use super::ids::FunctionId;
use super::types::Value;

/// A node's operation. `Call` names its callee by id, so renaming a function
/// changes no caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Const(Value),
    Param(u32),
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Neg,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Xor,
    Not,
    ToF64,
    ToI64,
    If,
    Call(FunctionId),
    Return,
}

/// What the language reference, the parser's errors and the verifier's
/// arity check say about an op: one row of the op table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpInfo {
    /// The mnemonic in the text form.
    pub name: &'static str,
    /// The op as written, with a sample argument when it takes one.
    pub syntax: &'static str,
    /// The number of inputs, or `None` for `call` (the callee's params).
    pub arity: Option<usize>,
    /// What the inputs must be.
    pub inputs: &'static str,
    /// What the node produces.
    pub output: &'static str,
    /// What it computes, in a few words.
    pub summary: &'static str,
}

/// One op of each kind, in the reference's order; `const`, `param` and
/// `call` carry sample payloads. A new op takes the next opcode and a place
/// here (a unit test checks that the opcodes here are exactly 1..=N).
pub const OPS: [Op; 23] = [
    Op::Const(Value::I64(5)),
    Op::Param(0),
    Op::Add,
    Op::Sub,
    Op::Mul,
    Op::Div,
    Op::Rem,
    Op::Neg,
    Op::Eq,
    Op::Ne,
    Op::Lt,
    Op::Le,
    Op::Gt,
    Op::Ge,
    Op::And,
    Op::Or,
    Op::Xor,
    Op::Not,
    Op::ToF64,
    Op::ToI64,
    Op::If,
    Op::Call(FunctionId(1)),
    Op::Return,
];

/// The mnemonic of every op, in the reference's order.
pub fn op_names() -> impl Iterator<Item = &'static str> {
    OPS.iter().map(|op| op.mnemonic())
}

impl Op {
    /// The op's row of the op table. The match has no wildcard, so an op
    /// added to the enum does not compile until it is documented.
    pub fn info(&self) -> OpInfo {
        let row = |name, syntax, arity, inputs, output, summary| OpInfo {
            name,
            syntax,
            arity,
            inputs,
            output,
            summary,
        };
        let arith = |name, syntax, summary| {
            row(
                name,
                syntax,
                Some(2),
                "two of one type, i64 or f64",
                "that type",
                summary,
            )
        };
        let compare =
            |name, syntax, summary| row(name, syntax, Some(2), "two of one type", "bool", summary);
        let logic = |name, syntax, summary| row(name, syntax, Some(2), "two bool", "bool", summary);
        match self {
            Op::Const(_) => row(
                "const",
                "const 5",
                Some(0),
                "none",
                "the literal's type",
                "a literal: `5`, `-2`, `2.0`, `true`, `false` or `()`",
            ),
            Op::Param(_) => row(
                "param",
                "param 0",
                Some(0),
                "none",
                "that parameter's type",
                "a parameter, by index from 0 or by name (`param n`)",
            ),
            Op::Add => arith("add", "add", "a + b (i64 checked: overflow is an error)"),
            Op::Sub => arith("sub", "sub", "a - b"),
            Op::Mul => arith("mul", "mul", "a * b"),
            Op::Div => arith("div", "div", "a / b (i64: division by zero is an error)"),
            Op::Rem => arith("rem", "rem", "remainder of a / b"),
            Op::Neg => row("neg", "neg", Some(1), "one i64 or f64", "that type", "-a"),
            Op::Eq => compare("eq", "eq", "a == b"),
            Op::Ne => compare("ne", "ne", "a != b"),
            Op::Lt => compare("lt", "lt", "a < b"),
            Op::Le => compare("le", "le", "a <= b"),
            Op::Gt => compare("gt", "gt", "a > b"),
            Op::Ge => compare("ge", "ge", "a >= b"),
            Op::And => logic("and", "and", "a and b"),
            Op::Or => logic("or", "or", "a or b"),
            Op::Xor => logic("xor", "xor", "a xor b"),
            Op::Not => row("not", "not", Some(1), "one bool", "bool", "not a"),
            Op::ToF64 => row(
                "to_f64",
                "to_f64",
                Some(1),
                "one i64",
                "f64",
                "a as a float",
            ),
            Op::ToI64 => row(
                "to_i64",
                "to_i64",
                Some(1),
                "one f64",
                "i64",
                "a truncated toward zero",
            ),
            Op::If => row(
                "if",
                "if",
                Some(3),
                "bool, T, T",
                "T",
                "the second input if the first is true, else the third; only the chosen branch runs",
            ),
            Op::Call(_) => row(
                "call",
                "call math::fib",
                None,
                "one per callee parameter, of its type",
                "the callee's return type",
                "calls a function by qualified name (or `call #7` by id)",
            ),
            Op::Return => row(
                "return",
                "return",
                Some(1),
                "one of the function's return type",
                "no value",
                "the function's result; exactly one per function",
            ),
        }
    }

    pub fn mnemonic(&self) -> &'static str {
        self.info().name
    }

    /// Returns true if and only if the op is written with an argument
    /// (`const 5`, `param 0`, `call math::fib`).
    pub fn takes_argument(&self) -> bool {
        matches!(self, Op::Const(_) | Op::Param(_) | Op::Call(_))
    }

    /// The op without an argument spelled `name`, if there is one.
    pub fn simple_named(name: &str) -> Option<Op> {
        OPS.into_iter()
            .find(|op| !op.takes_argument() && op.mnemonic() == name)
    }

    /// The number of inputs the op takes, or `None` for `call`, whose arity
    /// is the callee's parameter count.
    pub fn fixed_arity(&self) -> Option<usize> {
        self.info().arity
    }

    /// The op's stable number in the canonical encoding.
    pub(crate) fn opcode(&self) -> u8 {
        match self {
            Op::Const(_) => 1,
            Op::Param(_) => 2,
            Op::Add => 3,
            Op::Sub => 4,
            Op::Mul => 5,
            Op::Div => 6,
            Op::Rem => 7,
            Op::Neg => 8,
            Op::Eq => 9,
            Op::Ne => 10,
            Op::Lt => 11,
            Op::Le => 12,
            Op::Gt => 13,
            Op::Ge => 14,
            Op::And => 15,
            Op::Or => 16,
            Op::Xor => 17,
            Op::Not => 18,
            Op::ToF64 => 19,
            Op::ToI64 => 20,
            Op::If => 21,
            Op::Call(_) => 22,
            Op::Return => 23,
        }
    }

    /// The op without payload for an opcode; `None` for opcodes that carry a
    /// payload (`const`, `param`, `call`) or are unknown.
    pub(crate) fn simple_from_opcode(code: u8) -> Option<Op> {
        OPS.into_iter()
            .find(|op| !op.takes_argument() && op.opcode() == code)
    }

    pub fn callee(&self) -> Option<FunctionId> {
        match self {
            Op::Call(f) => Some(*f),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcodes_are_one_to_n_and_decode() {
        let mut codes: Vec<u8> = OPS.iter().map(|op| op.opcode()).collect();
        codes.sort_unstable();
        assert_eq!(codes, (1..=OPS.len() as u8).collect::<Vec<_>>());
        for op in OPS {
            let decoded = Op::simple_from_opcode(op.opcode());
            assert_eq!(decoded, (!op.takes_argument()).then_some(op), "{op:?}");
        }
    }

    #[test]
    fn names_are_distinct_and_simple_ones_parse_back() {
        let names: std::collections::BTreeSet<_> = op_names().collect();
        assert_eq!(names.len(), OPS.len());
        for op in OPS.iter().filter(|op| !op.takes_argument()) {
            assert_eq!(Op::simple_named(op.mnemonic()), Some(*op));
            assert_eq!(op.info().syntax, op.mnemonic());
        }
        assert_eq!(Op::simple_named("const"), None);
    }

    #[test]
    fn arities_match_the_design() {
        assert_eq!(Op::If.fixed_arity(), Some(3));
        assert_eq!(Op::Not.fixed_arity(), Some(1));
        assert_eq!(Op::Add.fixed_arity(), Some(2));
        assert_eq!(Op::Const(Value::Unit).fixed_arity(), Some(0));
        assert_eq!(Op::Call(FunctionId(1)).fixed_arity(), None);
    }
}
