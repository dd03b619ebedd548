//! The v1 ops: what a node computes from its inputs.
//!
//! An op knows its mnemonic, its fixed arity (a `call`'s arity comes from the
//! callee) and its stable opcode in the canonical encoding. Typing rules live
//! in `verify`; evaluation in `eval`.

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

/// The ops without arguments, by mnemonic. `const`, `param` and `call` take
/// an argument and are spelled separately.
pub(crate) const SIMPLE_OPS: [(&str, Op); 20] = [
    ("add", Op::Add),
    ("sub", Op::Sub),
    ("mul", Op::Mul),
    ("div", Op::Div),
    ("rem", Op::Rem),
    ("neg", Op::Neg),
    ("eq", Op::Eq),
    ("ne", Op::Ne),
    ("lt", Op::Lt),
    ("le", Op::Le),
    ("gt", Op::Gt),
    ("ge", Op::Ge),
    ("and", Op::And),
    ("or", Op::Or),
    ("xor", Op::Xor),
    ("not", Op::Not),
    ("to_f64", Op::ToF64),
    ("to_i64", Op::ToI64),
    ("if", Op::If),
    ("return", Op::Return),
];

impl Op {
    pub fn mnemonic(&self) -> &'static str {
        match self {
            Op::Const(_) => "const",
            Op::Param(_) => "param",
            Op::Call(_) => "call",
            simple => SIMPLE_OPS
                .iter()
                .find(|(_, op)| op == simple)
                .map(|(name, _)| *name)
                .unwrap_or("?"),
        }
    }

    /// The number of inputs the op takes, or `None` for `call`, whose arity
    /// is the callee's parameter count.
    pub fn fixed_arity(&self) -> Option<usize> {
        Some(match self {
            Op::Const(_) | Op::Param(_) => 0,
            Op::Neg | Op::Not | Op::ToF64 | Op::ToI64 | Op::Return => 1,
            Op::If => 3,
            Op::Call(_) => return None,
            _ => 2,
        })
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
        SIMPLE_OPS
            .iter()
            .map(|(_, op)| *op)
            .find(|op| op.opcode() == code)
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
    fn opcodes_are_distinct_and_decode() {
        let mut seen = std::collections::HashSet::new();
        for (name, op) in SIMPLE_OPS {
            assert!(seen.insert(op.opcode()), "{name}");
            assert_eq!(Op::simple_from_opcode(op.opcode()), Some(op));
            assert_eq!(op.mnemonic(), name);
        }
        for op in [
            Op::Const(Value::Unit),
            Op::Param(0),
            Op::Call(FunctionId(1)),
        ] {
            assert!(seen.insert(op.opcode()));
            assert_eq!(Op::simple_from_opcode(op.opcode()), None);
        }
    }
}
