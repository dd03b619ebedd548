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

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;

use serde::Serialize;

use crate::graph::edit::FunctionChange;
use crate::graph::{Function, FunctionId, NodeId, Op, Program, QualifiedName, Type};

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

/// What a node produces, as far as checking can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeType {
    Known(Type),
    /// An error was already reported upstream; say nothing more about it.
    Unknown,
    /// A `return` node: it ends the function and produces no value.
    NoValue,
}

struct Checker<'a> {
    program: &'a Program,
    id: FunctionId,
    f: &'a Function,
    out: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn report(&mut self, node: Option<NodeId>, code: DiagCode, message: String, hint: &str) {
        self.out.push(Diagnostic {
            function: self.id,
            function_name: self.f.name.clone(),
            node,
            code,
            message,
            hint: hint.to_string(),
        });
    }

    fn run(mut self) -> Vec<Diagnostic> {
        let f = self.f;
        let mut seen_params = BTreeSet::new();
        for p in &f.signature.params {
            if !seen_params.insert(p.name.as_str()) {
                self.report(
                    None,
                    DiagCode::DuplicateName,
                    format!("two parameters are named `{}`", p.name),
                    "give each parameter its own name with set_signature",
                );
            }
        }

        // Inputs that exist, per node; unknown inputs are reported here.
        let mut bad_inputs: BTreeSet<NodeId> = BTreeSet::new();
        for (id, node) in &f.nodes {
            for input in &node.inputs {
                if !f.nodes.contains_key(input) {
                    bad_inputs.insert(*id);
                    self.report(
                        Some(*id),
                        DiagCode::UnknownInput,
                        format!("input {input} does not exist in this function"),
                        "point the input at an existing node with set_inputs",
                    );
                }
            }
        }

        let order = self.topological_order();
        let mut types: HashMap<NodeId, NodeType> = HashMap::with_capacity(f.nodes.len());
        for id in &order.sorted {
            let node = &f.nodes[id];
            let ty = if bad_inputs.contains(id) {
                NodeType::Unknown
            } else {
                let inputs: Vec<NodeType> = node
                    .inputs
                    .iter()
                    .map(|i| types.get(i).copied().unwrap_or(NodeType::Unknown))
                    .collect();
                self.type_of(*id, &node.op, &node.inputs, &inputs)
            };
            types.insert(*id, ty);
        }

        let returns: Vec<NodeId> = f
            .nodes
            .iter()
            .filter(|(_, n)| n.op == Op::Return)
            .map(|(id, _)| *id)
            .collect();
        match returns.len() {
            0 => self.report(
                None,
                DiagCode::MissingReturn,
                "the function has no return node".to_string(),
                "add a node `return %N` taking the result",
            ),
            1 => {}
            n => {
                for id in &returns[1..] {
                    self.report(
                        Some(*id),
                        DiagCode::MultipleReturns,
                        format!("the function has {n} return nodes; this is not the first"),
                        "keep exactly one return node; remove the others",
                    );
                }
            }
        }
        self.out.sort();
        self.out
    }

    /// Kahn's algorithm over the data edges. Nodes left over sit on a
    /// cycle or downstream of one; the cycle itself is reported once.
    fn topological_order(&mut self) -> Order {
        let f = self.f;
        let mut indegree: HashMap<NodeId, usize> = HashMap::with_capacity(f.nodes.len());
        let mut users: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
        for (id, node) in &f.nodes {
            let known: Vec<NodeId> = node
                .inputs
                .iter()
                .copied()
                .filter(|i| f.nodes.contains_key(i))
                .collect();
            indegree.insert(*id, known.len());
            for input in known {
                users.entry(input).or_default().push(*id);
            }
        }
        let mut queue: VecDeque<NodeId> = f
            .nodes
            .keys()
            .copied()
            .filter(|id| indegree[id] == 0)
            .collect();
        let mut sorted = Vec::with_capacity(f.nodes.len());
        while let Some(id) = queue.pop_front() {
            sorted.push(id);
            for user in users.get(&id).into_iter().flatten() {
                let d = indegree.get_mut(user).expect("every node has a degree");
                *d -= 1;
                if *d == 0 {
                    queue.push_back(*user);
                }
            }
        }
        if sorted.len() < f.nodes.len() {
            let placed: BTreeSet<NodeId> = sorted.iter().copied().collect();
            let mut left: BTreeSet<NodeId> = f
                .nodes
                .keys()
                .copied()
                .filter(|id| !placed.contains(id))
                .collect();
            // Peel off nodes that feed nothing left over: what remains is on
            // a cycle (or between cycles).
            loop {
                let feeds_nothing: Vec<NodeId> = left
                    .iter()
                    .copied()
                    .filter(|id| {
                        !users
                            .get(id)
                            .into_iter()
                            .flatten()
                            .any(|u| left.contains(u))
                    })
                    .collect();
                if feeds_nothing.is_empty() {
                    break;
                }
                for id in feeds_nothing {
                    left.remove(&id);
                }
            }
            let members: Vec<String> = left.iter().map(|n| n.to_string()).collect();
            let first = left.iter().next().copied();
            self.report(
                first,
                DiagCode::Cycle,
                format!("data flows in a cycle through {}", members.join(", ")),
                "break the cycle with set_inputs; recursion goes through `call`",
            );
        }
        Order { sorted }
    }

    fn type_of(
        &mut self,
        id: NodeId,
        op: &Op,
        input_ids: &[NodeId],
        inputs: &[NodeType],
    ) -> NodeType {
        use NodeType::{Known, NoValue, Unknown};
        let node = Some(id);
        if let Some(arity) = op.fixed_arity()
            && inputs.len() != arity
        {
            self.report(
                node,
                DiagCode::Arity,
                format!(
                    "`{}` takes {arity} input{}, got {}",
                    op.mnemonic(),
                    if arity == 1 { "" } else { "s" },
                    inputs.len()
                ),
                "give the node the right number of inputs with set_inputs",
            );
            return if *op == Op::Return { NoValue } else { Unknown };
        }
        for (idx, t) in inputs.iter().enumerate() {
            if *t == NoValue {
                self.report(
                    node,
                    DiagCode::TypeMismatch,
                    format!(
                        "input {} is a return node, which produces no value",
                        input_ids[idx]
                    ),
                    "use the value the return node takes, not the return node",
                );
                return if *op == Op::Return { NoValue } else { Unknown };
            }
        }
        // From here on every input is Known or Unknown; Unknown silences
        // further reports about this node.
        let known: Option<Vec<Type>> = inputs
            .iter()
            .map(|t| match t {
                Known(t) => Some(*t),
                _ => None,
            })
            .collect();
        let signature = &self.f.signature;
        match op {
            Op::Const(v) => Known(v.ty()),
            Op::Param(idx) => match signature.params.get(*idx as usize) {
                Some(p) => Known(p.ty),
                None => {
                    self.report(
                        node,
                        DiagCode::ParamOutOfRange,
                        format!(
                            "`param {idx}` but the function has {} parameter{}",
                            signature.params.len(),
                            if signature.params.len() == 1 { "" } else { "s" }
                        ),
                        "use an index below the parameter count, or add the parameter",
                    );
                    Unknown
                }
            },
            Op::Call(callee) => {
                let Some(entry) = self.program.get(*callee) else {
                    self.report(
                        node,
                        DiagCode::UnknownCallee,
                        format!("calls {callee}, which does not exist"),
                        "call an existing function, or create this one first",
                    );
                    return Unknown;
                };
                let sig = &entry.function.signature;
                let name = &entry.function.name;
                if inputs.len() != sig.params.len() {
                    self.report(
                        node,
                        DiagCode::CallArity,
                        format!(
                            "`{name}` takes {} argument{}, got {}",
                            sig.params.len(),
                            if sig.params.len() == 1 { "" } else { "s" },
                            inputs.len()
                        ),
                        "pass one input per parameter of the callee",
                    );
                    return Known(sig.returns);
                }
                if let Some(known) = known {
                    for (idx, (got, p)) in known.iter().zip(&sig.params).enumerate() {
                        if *got != p.ty {
                            self.report(
                                node,
                                DiagCode::CallType,
                                format!(
                                    "argument {idx} of `{name}` (`{}`) is {}, got {got}",
                                    p.name, p.ty
                                ),
                                "convert the argument (to_f64, to_i64) or pass another node",
                            );
                        }
                    }
                }
                Known(sig.returns)
            }
            Op::Return => {
                if let Some(known) = known
                    && known[0] != signature.returns
                {
                    self.report(
                        node,
                        DiagCode::ReturnType,
                        format!(
                            "returns {}, but the function is declared to return {}",
                            known[0], signature.returns
                        ),
                        "return a value of the declared type, or change it with set_signature",
                    );
                }
                NoValue
            }
            _ => {
                let Some(known) = known else { return Unknown };
                self.simple_op_type(id, op, &known)
            }
        }
    }

    fn simple_op_type(&mut self, id: NodeId, op: &Op, inputs: &[Type]) -> NodeType {
        let mismatch = |this: &mut Self, message: String, hint: &str| {
            this.report(Some(id), DiagCode::TypeMismatch, message, hint);
            NodeType::Unknown
        };
        let name = op.mnemonic();
        match op {
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Rem => {
                let (a, b) = (inputs[0], inputs[1]);
                if a != b {
                    mismatch(
                        self,
                        format!("`{name}` needs two inputs of one type, got {a} and {b}"),
                        "convert one side with to_f64 or to_i64",
                    )
                } else if !a.is_numeric() {
                    mismatch(
                        self,
                        format!("`{name}` needs i64 or f64 inputs, got {a}"),
                        "use arithmetic on numbers only",
                    )
                } else {
                    NodeType::Known(a)
                }
            }
            Op::Neg => {
                if inputs[0].is_numeric() {
                    NodeType::Known(inputs[0])
                } else {
                    mismatch(
                        self,
                        format!("`neg` needs an i64 or f64 input, got {}", inputs[0]),
                        "use `not` for booleans",
                    )
                }
            }
            Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                if inputs[0] == inputs[1] {
                    NodeType::Known(Type::Bool)
                } else {
                    mismatch(
                        self,
                        format!(
                            "`{name}` compares two values of one type, got {} and {}",
                            inputs[0], inputs[1]
                        ),
                        "convert one side with to_f64 or to_i64",
                    )
                }
            }
            Op::And | Op::Or | Op::Xor => {
                if inputs.iter().all(|t| *t == Type::Bool) {
                    NodeType::Known(Type::Bool)
                } else {
                    mismatch(
                        self,
                        format!(
                            "`{name}` needs two bool inputs, got {} and {}",
                            inputs[0], inputs[1]
                        ),
                        "compare numbers first (eq, lt, ...) to get a bool",
                    )
                }
            }
            Op::Not => {
                if inputs[0] == Type::Bool {
                    NodeType::Known(Type::Bool)
                } else {
                    mismatch(
                        self,
                        format!("`not` needs a bool input, got {}", inputs[0]),
                        "use `neg` for numbers",
                    )
                }
            }
            Op::ToF64 => {
                if inputs[0] == Type::I64 {
                    NodeType::Known(Type::F64)
                } else {
                    mismatch(
                        self,
                        format!("`to_f64` needs an i64 input, got {}", inputs[0]),
                        "to_f64 converts i64 to f64",
                    )
                }
            }
            Op::ToI64 => {
                if inputs[0] == Type::F64 {
                    NodeType::Known(Type::I64)
                } else {
                    mismatch(
                        self,
                        format!("`to_i64` needs an f64 input, got {}", inputs[0]),
                        "to_i64 converts f64 to i64",
                    )
                }
            }
            Op::If => {
                if inputs[0] != Type::Bool {
                    mismatch(
                        self,
                        format!("`if` needs a bool condition, got {}", inputs[0]),
                        "make the first input a comparison",
                    )
                } else if inputs[1] != inputs[2] {
                    mismatch(
                        self,
                        format!(
                            "the branches of `if` have different types, {} and {}",
                            inputs[1], inputs[2]
                        ),
                        "make both branches the same type",
                    )
                } else {
                    NodeType::Known(inputs[1])
                }
            }
            Op::Const(_) | Op::Param(_) | Op::Call(_) | Op::Return => {
                unreachable!("handled by type_of")
            }
        }
    }
}

struct Order {
    sorted: Vec<NodeId>,
}

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
