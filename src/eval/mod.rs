//! The interpreter: evaluates a function on arguments.
//!
//! Demand-driven from the return node; each node is evaluated at most once
//! per call; `if` evaluates its condition and then only the chosen branch;
//! recursion goes through `call`. The evaluator keeps its own stack of
//! frames and tasks on the heap, so neither deep recursion in the program
//! nor a long chain of nodes can overflow the native stack, and two budgets
//! bound the work: fuel (one unit per node evaluated) and call depth.
//!
//! Errors are values. On a verified program only the listed runtime errors
//! occur; on an unverified one (tests feed it generated programs) anything
//! malformed becomes `RuntimeError::Malformed`, never a panic.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::graph::{Function, FunctionId, NodeId, Op, Program, QualifiedName, Type, Value};

/// Work limits for one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Node evaluations allowed.
    pub fuel: u64,
    /// Nested calls allowed, counting the entry function.
    pub max_depth: usize,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            fuel: 10_000_000,
            max_depth: 10_000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error("division by zero at {function} {node}")]
    DivisionByZero {
        function: QualifiedName,
        node: NodeId,
    },
    #[error("`{op}` overflowed at {function} {node}")]
    Overflow {
        function: QualifiedName,
        node: NodeId,
        op: &'static str,
    },
    #[error("fuel exhausted after {fuel} node evaluations")]
    FuelExhausted { fuel: u64 },
    #[error("call depth exceeded {max_depth}")]
    StackOverflow { max_depth: usize },
    #[error("{0}")]
    BadArgument(String),
    #[error("malformed program at {function}: {message}")]
    Malformed {
        function: QualifiedName,
        message: String,
    },
}

impl RuntimeError {
    /// The stable code an agent sees.
    pub fn code(&self) -> &'static str {
        match self {
            RuntimeError::DivisionByZero { .. } => "division_by_zero",
            RuntimeError::Overflow { .. } => "overflow",
            RuntimeError::FuelExhausted { .. } => "fuel_exhausted",
            RuntimeError::StackOverflow { .. } => "stack_overflow",
            RuntimeError::BadArgument(_) => "bad_argument",
            RuntimeError::Malformed { .. } => "malformed",
        }
    }
}

/// A successful run: the value and what it cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub value: Value,
    pub steps: u64,
    pub max_depth: usize,
}

#[derive(Clone, Copy)]
enum Slot {
    InProgress,
    Done(Value),
}

#[derive(Clone, Copy)]
enum Task {
    /// Evaluate the node (schedule its inputs first).
    Eval(NodeId),
    /// All inputs are done: compute the node.
    Apply(NodeId),
    /// The condition of an `if` is done: schedule the chosen branch.
    Choose(NodeId),
    /// The chosen branch is done: the `if` takes its value.
    Take(NodeId, NodeId),
}

struct Frame {
    function: Arc<Function>,
    args: Vec<Value>,
    slots: HashMap<NodeId, Slot>,
    tasks: Vec<Task>,
    /// The node of the caller waiting for this frame's result.
    caller_node: Option<NodeId>,
}

/// Runs `function` on `args` within `budget`.
/// Checks that `n_args` arguments fit `f`'s parameters, before anyone
/// converts or evaluates them.
pub fn check_arity(f: &Function, n_args: usize) -> Result<(), RuntimeError> {
    let n_params = f.signature.params.len();
    if n_args == n_params {
        return Ok(());
    }
    Err(RuntimeError::BadArgument(format!(
        "`{}` {} takes {n_params} argument{}, got {n_args}",
        f.name,
        f.signature,
        if n_params == 1 { "" } else { "s" },
    )))
}

pub fn run(
    program: &Program,
    function: FunctionId,
    args: &[Value],
    budget: Budget,
) -> Result<Outcome, RuntimeError> {
    let entry = program
        .get(function)
        .ok_or_else(|| RuntimeError::BadArgument(format!("no function {function}")))?;
    let f = &entry.function;
    check_arity(f, args.len())?;
    for (idx, (arg, p)) in args.iter().zip(&f.signature.params).enumerate() {
        if arg.ty() != p.ty {
            return Err(RuntimeError::BadArgument(format!(
                "argument {idx} (`{}`) of `{}` is {}, got {} `{arg}`",
                p.name,
                f.name,
                p.ty,
                arg.ty()
            )));
        }
    }
    Machine {
        program,
        budget,
        steps: 0,
        max_depth: 0,
        frames: Vec::new(),
    }
    .run(entry.function.clone(), args.to_vec())
}

struct Machine<'a> {
    program: &'a Program,
    budget: Budget,
    steps: u64,
    max_depth: usize,
    frames: Vec<Frame>,
}

impl Machine<'_> {
    fn malformed(f: &Function, message: String) -> RuntimeError {
        RuntimeError::Malformed {
            function: f.name.clone(),
            message,
        }
    }

    fn push_frame(
        &mut self,
        function: Arc<Function>,
        args: Vec<Value>,
        caller_node: Option<NodeId>,
    ) -> Result<(), RuntimeError> {
        if self.frames.len() >= self.budget.max_depth {
            return Err(RuntimeError::StackOverflow {
                max_depth: self.budget.max_depth,
            });
        }
        let mut returns = function
            .nodes
            .iter()
            .filter(|(_, n)| n.op == Op::Return)
            .map(|(id, _)| *id);
        let ret = match (returns.next(), returns.next()) {
            (Some(ret), None) => ret,
            _ => {
                return Err(Self::malformed(
                    &function,
                    "it needs exactly one return node".to_string(),
                ));
            }
        };
        self.frames.push(Frame {
            slots: HashMap::with_capacity(function.nodes.len()),
            function,
            args,
            tasks: vec![Task::Eval(ret)],
            caller_node,
        });
        self.max_depth = self.max_depth.max(self.frames.len());
        Ok(())
    }

    fn run(mut self, function: Arc<Function>, args: Vec<Value>) -> Result<Outcome, RuntimeError> {
        self.push_frame(function, args, None)?;
        loop {
            let frame = self.frames.last_mut().expect("a frame is running");
            let Some(task) = frame.tasks.pop() else {
                return Err(Self::malformed(
                    &frame.function,
                    "the return node produced no result".to_string(),
                ));
            };
            match task {
                Task::Eval(id) => {
                    match frame.slots.get(&id) {
                        Some(Slot::Done(_)) => continue,
                        Some(Slot::InProgress) => {
                            return Err(Self::malformed(
                                &frame.function,
                                format!("data flows in a cycle through {id}"),
                            ));
                        }
                        None => {}
                    }
                    if self.steps >= self.budget.fuel {
                        return Err(RuntimeError::FuelExhausted {
                            fuel: self.budget.fuel,
                        });
                    }
                    self.steps += 1;
                    let Some(node) = frame.function.nodes.get(&id) else {
                        return Err(Self::malformed(
                            &frame.function,
                            format!("node {id} does not exist"),
                        ));
                    };
                    frame.slots.insert(id, Slot::InProgress);
                    match node.op {
                        Op::Const(v) => {
                            frame.slots.insert(id, Slot::Done(v));
                        }
                        Op::Param(idx) => match frame.args.get(idx as usize) {
                            Some(v) => {
                                frame.slots.insert(id, Slot::Done(*v));
                            }
                            None => {
                                return Err(Self::malformed(
                                    &frame.function,
                                    format!("param {idx} does not exist"),
                                ));
                            }
                        },
                        Op::If => {
                            let Some(cond) = node.inputs.first() else {
                                return Err(Self::malformed(
                                    &frame.function,
                                    format!("`if` {id} has no condition"),
                                ));
                            };
                            frame.tasks.push(Task::Choose(id));
                            frame.tasks.push(Task::Eval(*cond));
                        }
                        _ => {
                            frame.tasks.push(Task::Apply(id));
                            frame
                                .tasks
                                .extend(node.inputs.iter().rev().map(|i| Task::Eval(*i)));
                        }
                    }
                }
                Task::Choose(id) => {
                    let node = &frame.function.nodes[&id];
                    let cond = input_value(frame, node.inputs[0])?;
                    let branch = match (cond, node.inputs.get(1), node.inputs.get(2)) {
                        (Value::Bool(true), Some(b), Some(_)) => *b,
                        (Value::Bool(false), Some(_), Some(b)) => *b,
                        _ => {
                            return Err(Self::malformed(
                                &frame.function,
                                format!("`if` {id} needs a bool and two branches"),
                            ));
                        }
                    };
                    frame.tasks.push(Task::Take(id, branch));
                    frame.tasks.push(Task::Eval(branch));
                }
                Task::Take(id, branch) => {
                    let v = input_value(frame, branch)?;
                    frame.slots.insert(id, Slot::Done(v));
                }
                Task::Apply(id) => {
                    let node = &frame.function.nodes[&id];
                    let inputs = node
                        .inputs
                        .iter()
                        .map(|i| input_value(frame, *i))
                        .collect::<Result<Vec<Value>, _>>()?;
                    match node.op {
                        Op::Return => {
                            let [v] = inputs[..] else {
                                return Err(Self::malformed(
                                    &frame.function,
                                    "return takes one input".to_string(),
                                ));
                            };
                            let done = self.frames.pop().expect("a frame is running");
                            match (done.caller_node, self.frames.last_mut()) {
                                (Some(node), Some(caller)) => {
                                    caller.slots.insert(node, Slot::Done(v));
                                }
                                _ => {
                                    return Ok(Outcome {
                                        value: v,
                                        steps: self.steps,
                                        max_depth: self.max_depth,
                                    });
                                }
                            }
                        }
                        Op::Call(callee) => {
                            let function = frame.function.clone();
                            let Some(entry) = self.program.get(callee) else {
                                return Err(Self::malformed(
                                    &function,
                                    format!("calls {callee}, which does not exist"),
                                ));
                            };
                            let params = &entry.function.signature.params;
                            if params.len() != inputs.len()
                                || params.iter().zip(&inputs).any(|(p, v)| p.ty != v.ty())
                            {
                                return Err(Self::malformed(
                                    &function,
                                    format!("call {id} does not match `{}`", entry.function.name),
                                ));
                            }
                            self.push_frame(entry.function.clone(), inputs, Some(id))?;
                        }
                        op => {
                            let v = apply_op(&frame.function, id, op, &inputs)?;
                            frame.slots.insert(id, Slot::Done(v));
                        }
                    }
                }
            }
        }
    }
}

fn input_value(frame: &Frame, id: NodeId) -> Result<Value, RuntimeError> {
    match frame.slots.get(&id) {
        Some(Slot::Done(v)) => Ok(*v),
        _ => Err(Machine::malformed(
            &frame.function,
            format!("input {id} has no value"),
        )),
    }
}

fn apply_op(f: &Function, node: NodeId, op: Op, inputs: &[Value]) -> Result<Value, RuntimeError> {
    use Value::{Bool, F64, I64};
    let overflow = || RuntimeError::Overflow {
        function: f.name.clone(),
        node,
        op: op.mnemonic(),
    };
    let div_zero = || RuntimeError::DivisionByZero {
        function: f.name.clone(),
        node,
    };
    let v = match (op, inputs) {
        (Op::Add, [I64(a), I64(b)]) => I64(a.checked_add(*b).ok_or_else(overflow)?),
        (Op::Sub, [I64(a), I64(b)]) => I64(a.checked_sub(*b).ok_or_else(overflow)?),
        (Op::Mul, [I64(a), I64(b)]) => I64(a.checked_mul(*b).ok_or_else(overflow)?),
        (Op::Div | Op::Rem, [I64(_), I64(0)]) => return Err(div_zero()),
        (Op::Div, [I64(a), I64(b)]) => I64(a.checked_div(*b).ok_or_else(overflow)?),
        (Op::Rem, [I64(a), I64(b)]) => I64(a.checked_rem(*b).ok_or_else(overflow)?),
        (Op::Neg, [I64(a)]) => I64(a.checked_neg().ok_or_else(overflow)?),
        (Op::Add, [F64(a), F64(b)]) => F64(a + b),
        (Op::Sub, [F64(a), F64(b)]) => F64(a - b),
        (Op::Mul, [F64(a), F64(b)]) => F64(a * b),
        (Op::Div, [F64(a), F64(b)]) => F64(a / b),
        (Op::Rem, [F64(a), F64(b)]) => F64(a % b),
        (Op::Neg, [F64(a)]) => F64(-a),
        (Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge, [a, b]) if a.ty() == b.ty() => {
            let ord = match (a, b) {
                (I64(a), I64(b)) => a.partial_cmp(b),
                (F64(a), F64(b)) => a.partial_cmp(b),
                (Bool(a), Bool(b)) => a.partial_cmp(b),
                _ => Some(std::cmp::Ordering::Equal),
            };
            use std::cmp::Ordering::{Equal, Greater, Less};
            Bool(match op {
                // IEEE semantics: NaN is unequal to everything, itself included.
                Op::Eq => ord == Some(Equal),
                Op::Ne => ord != Some(Equal),
                Op::Lt => ord == Some(Less),
                Op::Le => matches!(ord, Some(Less | Equal)),
                Op::Gt => ord == Some(Greater),
                _ => matches!(ord, Some(Greater | Equal)),
            })
        }
        (Op::And, [Bool(a), Bool(b)]) => Bool(*a && *b),
        (Op::Or, [Bool(a), Bool(b)]) => Bool(*a || *b),
        (Op::Xor, [Bool(a), Bool(b)]) => Bool(a ^ b),
        (Op::Not, [Bool(a)]) => Bool(!a),
        (Op::ToF64, [I64(a)]) => F64(*a as f64),
        (Op::ToI64, [F64(a)]) => {
            // i64::MIN is exactly representable; 2^63 is the first value
            // out of range.
            const LIMIT: f64 = 9_223_372_036_854_775_808.0;
            if a.is_nan() || *a >= LIMIT || *a < -LIMIT {
                return Err(overflow());
            }
            I64(a.trunc() as i64)
        }
        _ => {
            let types: Vec<Type> = inputs.iter().map(Value::ty).collect();
            return Err(Machine::malformed(
                f,
                format!(
                    "`{}` {node} cannot take inputs of types {types:?}",
                    op.mnemonic()
                ),
            ));
        }
    };
    Ok(v)
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::load_program_text;

    const FIB: &str = "fn math::fib(n: i64) -> i64 {\n  %0 = param 0\n  %1 = const 2\n  %2 = lt %0, %1\n  %3 = const 1\n  %4 = sub %0, %3\n  %5 = call math::fib %4\n  %6 = sub %4, %3\n  %7 = call math::fib %6\n  %8 = add %5, %7\n  %9 = if %2, %0, %8\n  %10 = return %9\n}\n";

    fn run_named(
        text: &str,
        name: &str,
        args: &[Value],
        budget: Budget,
    ) -> Result<Outcome, RuntimeError> {
        let program = load_program_text(text).unwrap();
        let id = program.lookup(&name.parse().unwrap()).unwrap();
        run(&program, id, args, budget)
    }

    #[test]
    fn fib_20() {
        let out = run_named(FIB, "math::fib", &[Value::I64(20)], Budget::default()).unwrap();
        assert_eq!(out.value, Value::I64(6765));
    }

    #[test]
    fn fuel_runs_out() {
        let budget = Budget {
            fuel: 1000,
            max_depth: 10_000,
        };
        let err = run_named(FIB, "math::fib", &[Value::I64(30)], budget).unwrap_err();
        assert_eq!(err.code(), "fuel_exhausted");
    }

    #[test]
    fn depth_runs_out() {
        let forever =
            "fn m::f(n: i64) -> i64 {\n  %0 = param 0\n  %1 = call m::f %0\n  %2 = return %1\n}\n";
        let budget = Budget {
            fuel: u64::MAX,
            max_depth: 500,
        };
        let err = run_named(forever, "m::f", &[Value::I64(1)], budget).unwrap_err();
        assert_eq!(err, RuntimeError::StackOverflow { max_depth: 500 });
    }

    #[test]
    fn runtime_errors_are_values() {
        let div = "fn m::f(a: i64, b: i64) -> i64 {\n  %0 = param 0\n  %1 = param 1\n  %2 = div %0, %1\n  %3 = return %2\n}\n";
        let e = run_named(
            div,
            "m::f",
            &[Value::I64(1), Value::I64(0)],
            Budget::default(),
        )
        .unwrap_err();
        assert_eq!(e.code(), "division_by_zero");
        let e = run_named(
            div,
            "m::f",
            &[Value::I64(i64::MIN), Value::I64(-1)],
            Budget::default(),
        )
        .unwrap_err();
        assert_eq!(e.code(), "overflow");
        let e = run_named(div, "m::f", &[Value::I64(1)], Budget::default()).unwrap_err();
        assert_eq!(e.code(), "bad_argument");
        let e = run_named(
            div,
            "m::f",
            &[Value::I64(1), Value::F64(1.0)],
            Budget::default(),
        )
        .unwrap_err();
        assert_eq!(e.code(), "bad_argument");
    }

    #[test]
    fn if_is_lazy() {
        // The untaken branch divides by zero.
        let text = "fn m::f(x: i64) -> i64 {\n  %0 = param 0\n  %1 = const 0\n  %2 = eq %0, %1\n  %3 = div %0, %1\n  %4 = if %2, %1, %3\n  %5 = return %4\n}\n";
        let out = run_named(text, "m::f", &[Value::I64(0)], Budget::default()).unwrap();
        assert_eq!(out.value, Value::I64(0));
        let e = run_named(text, "m::f", &[Value::I64(3)], Budget::default()).unwrap_err();
        assert_eq!(e.code(), "division_by_zero");
    }

    #[test]
    fn to_i64_out_of_range_overflows() {
        let text =
            "fn m::f(x: f64) -> i64 {\n  %0 = param 0\n  %1 = to_i64 %0\n  %2 = return %1\n}\n";
        for bad in [f64::NAN, f64::INFINITY, 1e19, -1e19] {
            let e = run_named(text, "m::f", &[Value::F64(bad)], Budget::default()).unwrap_err();
            assert_eq!(e.code(), "overflow", "{bad}");
        }
        let out = run_named(text, "m::f", &[Value::F64(-2.7)], Budget::default()).unwrap();
        assert_eq!(out.value, Value::I64(-2));
    }

    #[test]
    fn long_chains_do_not_overflow_the_native_stack() {
        let mut text = String::from("fn m::f() -> i64 {\n  %0 = const 1\n");
        for i in 1..200_000 {
            text.push_str(&format!("  %{i} = neg %{}\n", i - 1));
        }
        text.push_str("  %200000 = return %199999\n}\n");
        let out = run_named(&text, "m::f", &[], Budget::default()).unwrap();
        assert_eq!(out.value, Value::I64(-1));
    }
}
