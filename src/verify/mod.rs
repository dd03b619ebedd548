//! The verifier: structural and type checks of functions, over the whole
//! program or over the part an edit can affect.
//!
//! Verification never fails; it returns diagnostics, which are data with
//! stable codes. Checked: inputs exist in the same function, arity, types,
//! exactly one `return` and its type, acyclic data flow, callees exist and
//! calls match their signatures, parameter names distinct.
//!
//! Incremental verification rests on one fact: a function's verdict depends
//! only on its own content and on the signatures and names of the functions
//! it calls. So after an edit, the functions to check are the changed ones
//! plus the callers of any function whose signature changed, that was
//! deleted or renamed, or that was created (a caller may have named its id
//! before it existed). The
//! program's reverse call index finds those callers in O(callers).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::graph::edit::FunctionChange;
use crate::graph::{FunctionId, NodeId, Program, QualifiedName};

/// Stable diagnostic codes. Agents and tests match on these strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiagCode {
    UnknownInput,
    Arity,
    TypeMismatch,
    MissingReturn,
    MultipleReturns,
    Cycle,
    UnknownCallee,
    CallArity,
    CallType,
    ParamOutOfRange,
    ReturnType,
    DuplicateName,
}

impl DiagCode {
    pub fn as_str(self) -> &'static str {
        match self {
            DiagCode::UnknownInput => "unknown_input",
            DiagCode::Arity => "arity",
            DiagCode::TypeMismatch => "type_mismatch",
            DiagCode::MissingReturn => "missing_return",
            DiagCode::MultipleReturns => "multiple_returns",
            DiagCode::Cycle => "cycle",
            DiagCode::UnknownCallee => "unknown_callee",
            DiagCode::CallArity => "call_arity",
            DiagCode::CallType => "call_type",
            DiagCode::ParamOutOfRange => "param_out_of_range",
            DiagCode::ReturnType => "return_type",
            DiagCode::DuplicateName => "duplicate_name",
        }
    }
}

impl fmt::Display for DiagCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding: where, which rule, what is wrong and what to do.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Diagnostic {
    pub function: FunctionId,
    pub function_name: QualifiedName,
    pub node: Option<NodeId>,
    pub code: DiagCode,
    pub message: String,
    pub hint: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.function_name)?;
        if let Some(node) = self.node {
            write!(f, " {node}")?;
        }
        write!(f, ": {} [{}]; {}", self.message, self.code, self.hint)
    }
}

mod check;

use check::Checker;

/// Checks one function of `program`. Returns nothing for an id that is not
/// in the program.
pub fn verify_function(program: &Program, id: FunctionId) -> Vec<Diagnostic> {
    let Some(entry) = program.get(id) else {
        return Vec::new();
    };
    Checker {
        program,
        id,
        f: &entry.function,
        out: Vec::new(),
    }
    .run()
}

/// Checks every function.
pub fn verify_all(program: &Program) -> Vec<Diagnostic> {
    program
        .functions()
        .flat_map(|(id, _)| verify_function(program, id))
        .collect()
}

/// The functions whose verdict an edit can change: the changed ones that
/// still exist, and the callers of every function whose signature changed,
/// that was deleted, created or renamed (diagnostics name the callee).
pub fn incremental_scope(
    after: &Program,
    changes: &BTreeMap<FunctionId, FunctionChange>,
) -> BTreeSet<FunctionId> {
    let mut scope = BTreeSet::new();
    for (id, change) in changes {
        if change.after.is_some() {
            scope.insert(*id);
        }
        if change.signature_changed() || change.created() || change.renamed() {
            scope.extend(after.callers_of(*id));
        }
    }
    scope.retain(|id| after.get(*id).is_some());
    scope
}

/// Checks the given functions.
pub fn verify_scope(program: &Program, scope: &BTreeSet<FunctionId>) -> Vec<Diagnostic> {
    scope
        .iter()
        .flat_map(|id| verify_function(program, *id))
        .collect()
}

/// Diagnostics per function, kept up to date edit by edit. Property tests
/// check that updating it incrementally always equals recomputing it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdicts(pub BTreeMap<FunctionId, Vec<Diagnostic>>);

impl Verdicts {
    pub fn full(program: &Program) -> Verdicts {
        let mut v = Verdicts::default();
        for (id, _) in program.functions() {
            v.set(id, verify_function(program, id));
        }
        v
    }

    fn set(&mut self, id: FunctionId, diagnostics: Vec<Diagnostic>) {
        if diagnostics.is_empty() {
            self.0.remove(&id);
        } else {
            self.0.insert(id, diagnostics);
        }
    }

    /// Brings the verdicts up to date after `changes` produced `after`.
    pub fn update(&mut self, after: &Program, changes: &BTreeMap<FunctionId, FunctionChange>) {
        for (id, change) in changes {
            if change.deleted() {
                self.0.remove(id);
            }
        }
        for id in incremental_scope(after, changes) {
            self.set(id, verify_function(after, id));
        }
    }

    pub fn is_clean(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::load_program_text;

    fn codes(text: &str) -> Vec<&'static str> {
        let program = load_program_text(text).unwrap();
        verify_all(&program)
            .iter()
            .map(|d| d.code.as_str())
            .collect()
    }

    macro_rules! case {
        ($name:ident, $text:expr, [$($code:expr),*]) => {
            #[test]
            fn $name() {
                let expected: Vec<&str> = vec![$($code),*];
                assert_eq!(codes($text), expected);
            }
        };
    }

    case!(
        clean_function,
        "fn m::f(x: i64) -> i64 {\n  %0 = param 0\n  %1 = return %0\n}\n",
        []
    );
    case!(
        unknown_input,
        "fn m::f() -> i64 {\n  %0 = return %7\n}\n",
        ["unknown_input"]
    );
    case!(
        arity,
        "fn m::f() -> i64 {\n  %0 = const 1\n  %1 = neg %0, %0\n  %2 = return %0\n}\n",
        ["arity"]
    );
    case!(
        type_mismatch,
        "fn m::f() -> i64 {\n  %0 = const 1\n  %1 = const 1.0\n  %2 = add %0, %1\n  %3 = return %0\n}\n",
        ["type_mismatch"]
    );
    case!(
        missing_return,
        "fn m::f() -> i64 {\n  %0 = const 1\n}\n",
        ["missing_return"]
    );
    case!(
        multiple_returns,
        "fn m::f() -> i64 {\n  %0 = const 1\n  %1 = return %0\n  %2 = return %0\n}\n",
        ["multiple_returns"]
    );
    case!(
        cycle,
        "fn m::f() -> i64 {\n  %0 = add %1, %1\n  %1 = neg %0\n  %2 = return %1\n}\n",
        ["cycle"]
    );
    case!(
        unknown_callee,
        "fn m::f() -> i64 {\n  %0 = call #99\n  %1 = return %0\n}\n",
        ["unknown_callee"]
    );
    case!(
        call_arity,
        "fn m::g(x: i64) -> i64 {\n  %0 = param 0\n  %1 = return %0\n}\nfn m::f() -> i64 {\n  %0 = call m::g\n  %1 = return %0\n}\n",
        ["call_arity"]
    );
    case!(
        call_type,
        "fn m::g(x: i64) -> i64 {\n  %0 = param 0\n  %1 = return %0\n}\nfn m::f() -> i64 {\n  %0 = const true\n  %1 = call m::g %0\n  %2 = return %1\n}\n",
        ["call_type"]
    );
    case!(
        param_out_of_range,
        "fn m::f() -> i64 {\n  %0 = param 0\n  %1 = return %0\n}\n",
        ["param_out_of_range"]
    );
    case!(
        return_type,
        "fn m::f() -> i64 {\n  %0 = const true\n  %1 = return %0\n}\n",
        ["return_type"]
    );
    case!(
        duplicate_name,
        "fn m::f(x: i64, x: i64) -> i64 {\n  %0 = param 0\n  %1 = return %0\n}\n",
        ["duplicate_name"]
    );
    case!(
        return_used_as_value,
        "fn m::f() -> i64 {\n  %0 = const 1\n  %1 = return %0\n  %2 = neg %1\n}\n",
        ["type_mismatch"]
    );
    case!(
        errors_do_not_cascade,
        "fn m::f() -> i64 {\n  %0 = add %8, %9\n  %1 = neg %0\n  %2 = return %1\n}\n",
        ["unknown_input", "unknown_input"]
    );

    #[test]
    fn diagnostics_carry_node_and_hint() {
        let program =
            load_program_text("fn m::f() -> i64 {\n  %0 = const true\n  %1 = return %0\n}\n")
                .unwrap();
        let d = &verify_all(&program)[0];
        assert_eq!(d.node, Some(NodeId(1)));
        assert!(!d.hint.is_empty());
        assert_eq!(d.function_name.as_str(), "m::f");
    }
}
