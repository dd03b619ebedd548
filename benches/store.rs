//! Store and commit-pipeline benchmark. Prints, from one run:
//! - durable commits per second through the service with 1 committer and
//!   with 32 concurrent committers on disjoint functions, and their ratio
//!   (target: at least 8, from group commit);
//! - the same on the PostgreSQL store (one hub, a throwaway cluster this
//!   benchmark starts on loopback with fsync on; `tests/common/pg.rs`),
//!   beside SQLite's;
//! - the time to reopen a store of 100,000 commits (store recovery alone,
//!   and the whole hub including `verify_all`);
//! - the store's size on disk per commit.
//!
//! Every commit is fsynced (SQLite: WAL, synchronous=FULL; PostgreSQL:
//! synchronous_commit on, fsync on) before it is counted.
//! Run: `cargo bench --bench store`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cograph::graph::FunctionRef;
use cograph::graph::{
    EditOp, NodeId, NodeRef, Op, OpSpec, Program, QualifiedName, Revision, Value, apply,
};
use cograph::locks::Transport;
use cograph::service::{EditRequest, Hub, HubConfig};
use cograph::store::{ChangeRecord, CommitRecord, CommitWrite, Store, StoreLocation};

#[allow(dead_code)]
#[path = "../tests/common/pg.rs"]
mod pg;

fn body(i: usize) -> EditOp {
    EditOp::CreateFunction {
        name: QualifiedName::new(&format!("bench::f{i}")).unwrap(),
        params: vec![],
        returns: cograph::graph::Type::I64,
        doc: None,
        body: Some(cograph::graph::Body::Text(
            "%0 = const 0\n%1 = return %0\n".into(),
        )),
    }
}

fn set_const(i: usize, v: i64) -> EditOp {
    EditOp::SetOp {
        function: FunctionRef::Name(QualifiedName::new(&format!("bench::f{i}")).unwrap()),
        node: NodeRef::Id(NodeId(0)),
        op: OpSpec::Op(Op::Const(Value::I64(v))),
    }
}

/// `committers` tasks, each committing `per` edits to its own function.
async fn commits_per_second(hub: &Arc<Hub>, committers: usize, per: usize) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = (0..committers)
        .map(|k| {
            let hub = hub.clone();
            tokio::spawn(async move {
                let me = hub.connect(&format!("c{k}"), Transport::InProcess);
                let name = FunctionRef::parse(&format!("bench::f{k}")).unwrap();
                for n in 0..per {
                    hub.read_function(me.id(), &name).unwrap();
                    let req = EditRequest {
                        ops: vec![set_const(k, n as i64 + 1)],
                        ..EditRequest::default()
                    };
                    hub.propose(me.id(), req).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (committers * per) as f64 / start.elapsed().as_secs_f64()
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("cograph.db"))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// Writes `n` commits of small edits over 1,000 functions straight through
/// the store's group-commit writer.
async fn fill(dir: &std::path::Path, n: usize) {
    let (store, recovered) = Store::open(dir).unwrap();
    let mut program: Program = recovered.program;
    let setup: Vec<EditOp> = (0..1000).map(body).collect();
    let mut acks = Vec::new();
    let write = |program: &mut Program, ops: Vec<EditOp>, rev: Revision, acks: &mut Vec<_>| {
        let applied = apply(program, &ops, rev).unwrap();
        let mut changes = Vec::new();
        let mut versions = Vec::new();
        for (id, c) in &applied.changes {
            changes.push(ChangeRecord::of(*id, c));
            versions.extend(c.after.as_ref().map(|e| e.function.clone()));
        }
        *program = applied.program;
        program.set_revision(rev);
        acks.push(store.submit(CommitWrite {
            record: CommitRecord {
                revision: rev,
                time_ms: 0,
                agent_id: "ag_0000000000000001".into(),
                agent_name: "bench".into(),
                purpose: None,
                summary: "bench".into(),
                ops,
                changes,
                request: None,
            },
            versions,
            fences: Default::default(),
            next_function_id: program.next_function_id().0,
        }));
    };
    write(&mut program, setup, Revision(1), &mut acks);
    for r in 2..=n as u64 {
        write(
            &mut program,
            vec![set_const(r as usize % 1000, r as i64)],
            Revision(r),
            &mut acks,
        );
        if acks.len() >= 4096 {
            for a in acks.drain(..) {
                a.await.unwrap().unwrap();
            }
        }
    }
    for a in acks {
        a.await.unwrap().unwrap();
    }
    store.close();
}

/// Durable commits per second on a fresh hub of `config`: one committer
/// (the mean of a run before and after) and 32 at once.
async fn group_commit(config: HubConfig) -> (f64, f64) {
    let hub = Hub::open(config).unwrap();
    let setup = hub.connect("setup", Transport::InProcess);
    hub.propose(
        setup.id(),
        EditRequest {
            ops: (0..32).map(body).collect(),
            ..EditRequest::default()
        },
    )
    .await
    .unwrap();
    commits_per_second(&hub, 1, 50).await;
    let one = commits_per_second(&hub, 1, 300).await;
    let many = commits_per_second(&hub, 32, 60).await;
    let one_again = commits_per_second(&hub, 1, 300).await;
    drop(setup);
    hub.shutdown().await;
    ((one + one_again) / 2.0, many)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // Group commit: 1 committer vs 32 on disjoint functions, on SQLite,
    // then on PostgreSQL.
    let dir = tempfile::tempdir().unwrap();
    let (one, many) = group_commit(HubConfig::new(dir.path())).await;
    println!(
        "SQLite: durable commits/s: 1 committer {one:.0}; 32 committers {many:.0}; ratio {:.1} (target >= 8)",
        many / one
    );
    let cluster = pg::Cluster::start(true);
    let pg_dir = tempfile::tempdir().unwrap();
    let mut config = HubConfig::new(pg_dir.path());
    config.store = StoreLocation::Postgres(cluster.create_database().parse().unwrap());
    let (pg_one, pg_many) = group_commit(config).await;
    println!(
        "PostgreSQL (one hub, loopback): durable commits/s: 1 committer {pg_one:.0}; 32 committers {pg_many:.0}; ratio {:.1}",
        pg_many / pg_one
    );
    println!(
        "PostgreSQL vs SQLite: 1 committer {:.2}; 32 committers {:.2}; one PostgreSQL commit takes {:.2} ms (etcd's published single-client write: 1.6 ms)",
        pg_one / one,
        pg_many / many,
        1e3 / pg_one
    );

    // Reopen a store of 100,000 commits.
    let big = tempfile::tempdir().unwrap();
    let n = 100_000;
    let t = Instant::now();
    fill(big.path(), n).await;
    let fill_time = t.elapsed();
    let t = Instant::now();
    let (store, recovered) = Store::open(big.path()).unwrap();
    let store_open = t.elapsed();
    assert_eq!(recovered.n_commits, n as u64);
    drop(store);
    let t = Instant::now();
    let hub = Hub::open(HubConfig::new(big.path())).unwrap();
    let hub_open = t.elapsed();
    assert_eq!(hub.snapshot().revision(), Revision(n as u64));
    hub.shutdown().await;
    drop(hub);
    let size = dir_size(big.path());
    println!(
        "store of {n} commits: written in {:.1} s; reopen {:.0} ms (store) / {:.0} ms (hub, with verify_all); {:.0} bytes/commit on disk",
        fill_time.as_secs_f64(),
        ms(store_open),
        ms(hub_open),
        size as f64 / n as f64
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
