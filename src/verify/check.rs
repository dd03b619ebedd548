//! The checks of one function: inputs, arity, types, returns, acyclic data
//! flow, calls against their callees' signatures. It reads the program only
//! for callees' names and signatures, and never fails: every problem is a
//! diagnostic. Which functions to check is `mod.rs`'s question.

use std::collections::{BTreeSet, HashMap, VecDeque};

use super::{DiagCode, Diagnostic};
use crate::graph::{Function, FunctionId, NodeId, Op, Program, Type};

/// What a node produces, as far as checking can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeType {
    Known(Type),
    /// An error was already reported upstream; say nothing more about it.
    Unknown,
    /// A `return` node: it ends the function and produces no value.
    NoValue,
}

pub(super) struct Checker<'a> {
    pub(super) program: &'a Program,
    pub(super) id: FunctionId,
    pub(super) f: &'a Function,
    pub(super) out: Vec<Diagnostic>,
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

    pub(super) fn run(mut self) -> Vec<Diagnostic> {
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
