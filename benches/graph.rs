//! Graph core benchmark. Prints, from one run:
//! - `verify_all` time for a generated program of 1,000,000 nodes;
//! - the resident memory per node of that program (target: at most 200 B);
//! - one small edit plus incremental verification on programs of 1,000 and
//!   of 100,000 functions, interleaved round by round, and their ratio
//!   (target: at most 1.3, i.e. cost independent of program size).
//!
//! Run: `cargo bench --bench graph`. No timing is asserted anywhere.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cograph::graph::FunctionRef;
use cograph::graph::{
    EditOp, Function, FunctionEntry, FunctionId, NodeId, NodeRef, Op, OpSpec, Param, Program,
    QualifiedName, Revision, Signature, Type, Value, apply,
};
use cograph::verify::{incremental_scope, verify_all, verify_scope};

/// Function `i` takes `x: i64`, adds constants to it in a chain of
/// `n_nodes` nodes in all, calls function `i - 1` (if any) and returns.
fn build_function(i: u64, n_nodes: u32) -> Function {
    let mut f = Function::new(
        QualifiedName::new(&format!("m{}::f{i}", i / 1000)).unwrap(),
        Signature {
            params: vec![Param {
                name: "x".into(),
                ty: Type::I64,
            }],
            returns: Type::I64,
        },
    );
    let mut last = f.push_node(Op::Param(0), vec![]);
    // The call (if any) and the return come last.
    let reserved = if i > 1 { 2 } else { 1 };
    while f.nodes.len() as u32 + reserved + 2 <= n_nodes {
        let c = f.push_node(Op::Const(Value::I64(1)), vec![]);
        last = f.push_node(Op::Add, vec![last, c]);
    }
    if (f.nodes.len() as u32) + reserved < n_nodes {
        f.push_node(Op::Const(Value::I64(0)), vec![]);
    }
    if i > 1 {
        last = f.push_node(Op::Call(FunctionId(i - 1)), vec![last]);
    }
    f.push_node(Op::Return, vec![last]);
    f
}

fn build_program(n_functions: u64, nodes_per_function: u32) -> Program {
    let mut p = Program::new();
    for i in 1..=n_functions {
        p.put(
            FunctionId(i),
            FunctionEntry::new(Arc::new(build_function(i, nodes_per_function)), Revision(0)),
        );
    }
    p
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One small edit: add a constant and route the first `add` through it.
fn small_edit(function: FunctionId, value: i64) -> Vec<EditOp> {
    vec![
        EditOp::AddNode {
            function: FunctionRef::Id(function),
            op: OpSpec::Op(Op::Const(Value::I64(value))),
            inputs: vec![],
            alias: Some("$c".into()),
        },
        EditOp::SetInputs {
            function: FunctionRef::Id(function),
            node: NodeRef::Id(NodeId(2)),
            inputs: vec![NodeRef::Id(NodeId(0)), NodeRef::Alias("$c".into())],
        },
    ]
}

/// Applies `n` small edits to random functions, each followed by
/// incremental verification, and returns the mean time per edit.
fn edit_round(program: &mut Program, rng: &mut Rng, n: u32) -> Duration {
    let n_functions = program.len() as u64;
    let start = Instant::now();
    for _ in 0..n {
        let id = FunctionId(rng.next() % n_functions + 1);
        let revision = program.revision().next();
        let applied = apply(
            program,
            &small_edit(id, (rng.next() % 100) as i64),
            revision,
        )
        .expect("the edit applies");
        let scope = incremental_scope(&applied.program, &applied.changes);
        let diagnostics = verify_scope(&applied.program, &scope);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        *program = applied.program;
        program.set_revision(revision);
    }
    start.elapsed() / n
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn main() {
    // Memory and verify_all over 1,000,000 nodes.
    let before = resident_bytes();
    let big = build_program(10_000, 100);
    let after = resident_bytes();
    let n_nodes = big.n_nodes();
    let start = Instant::now();
    let diagnostics = verify_all(black_box(&big));
    let verify_time = start.elapsed();
    assert!(diagnostics.is_empty(), "{:?}", &diagnostics[..1]);
    println!(
        "verify_all: {n_nodes} nodes in {} functions: {:.1} ms ({:.0} ns/node)",
        big.len(),
        verify_time.as_secs_f64() * 1e3,
        verify_time.as_nanos() as f64 / n_nodes as f64
    );
    let per_node = (after.saturating_sub(before)) as f64 / n_nodes as f64;
    println!(
        "memory: {n_nodes} nodes: {:.1} MiB resident, {per_node:.0} bytes/node (target <= 200)",
        (after - before) as f64 / (1024.0 * 1024.0)
    );
    drop(big);

    // One small edit + incremental verification, at two program sizes.
    let mut small = build_program(1_000, 10);
    let mut large = build_program(100_000, 10);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Warm up both.
    edit_round(&mut small, &mut rng, 2_000);
    edit_round(&mut large, &mut rng, 2_000);
    let (mut t_small, mut t_large) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        t_small.push(edit_round(&mut small, &mut rng, 5_000));
        t_large.push(edit_round(&mut large, &mut rng, 5_000));
    }
    let (s, l) = (median(t_small), median(t_large));
    println!(
        "edit + incremental verify: 1,000 functions: {:.2} us/edit; 100,000 functions: {:.2} us/edit; ratio {:.2} (target <= 1.3)",
        s.as_secs_f64() * 1e6,
        l.as_secs_f64() * 1e6,
        l.as_secs_f64() / s.as_secs_f64()
    );
}
