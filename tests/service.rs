//! The commit pipeline against a real store, with several agents: stale
//! edits, conflict diffs, rebases, verification gate, read-required, lease
//! expiry, conflict cap, lock denial, and many concurrent committers. Each
//! test runs against both stores, SQLite and PostgreSQL (`each_store!`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use cograph::graph::{EditOp, FunctionRef, NodeId, Op, Program, Revision, Value, apply};
use cograph::locks::{AgentId, LockMode, LockTarget, ModuleName, Resource, Transport};
use cograph::service::{
    AgentSession, EditRequest, Hub, HubConfig, LockSpec, OnConflict, ServiceError,
};
use cograph::verify::verify_all;
use common::F;
use common::stores::TestStore;
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn fref(name: &str) -> FunctionRef {
    FunctionRef::parse(name).unwrap()
}

fn ops(v: serde_json::Value) -> Vec<EditOp> {
    serde_json::from_value(v).expect("valid ops")
}

fn edit(v: serde_json::Value) -> EditRequest {
    EditRequest {
        ops: ops(v),
        ..EditRequest::default()
    }
}

async fn hub_with(
    store: &TestStore,
    configure: impl FnOnce(&mut HubConfig),
) -> (Arc<Hub>, AgentSession) {
    let mut config = store.config();
    configure(&mut config);
    let hub = Hub::open(config).unwrap();
    let setup = hub.connect("setup", Transport::InProcess);
    hub.propose(
        setup.id(),
        edit(json!([
            {"create_function": {"name": "demo::f", "params": [{"name": "x", "type": "i64"}], "returns": "i64", "body": {"text": F}}},
            {"create_function": {"name": "demo::g", "params": [], "returns": "i64", "body": {"text": "%0 = const 5\n%1 = return %0\n"}}},
        ])),
    )
    .await
    .unwrap();
    (hub, setup)
}

async fn hub(store: &TestStore) -> (Arc<Hub>, AgentSession) {
    hub_with(store, |_| {}).await
}

fn const_of(hub: &Hub, node: u32) -> Value {
    let p = hub.snapshot();
    let f = &p.get(p.lookup(&fref("demo::f")).unwrap()).unwrap().function;
    match f.nodes[&NodeId(node)].op {
        Op::Const(v) => v,
        other => panic!("{other:?}"),
    }
}

fn set_const(node: u32, value: i64) -> EditRequest {
    edit(
        json!([{"set_op": {"function": "demo::f", "node": format!("%{node}"), "op": format!("const {value}")}}]),
    )
}

each_store! {
    #[tokio::test]
    async fn stale_edit_gets_conflict_with_commits_and_exact_diff(store) {
        let (hub, _s) = hub(&store).await;
        let a = hub.connect("alice", Transport::InProcess);
        let b = hub.connect("bob", Transport::InProcess);
        hub.read_function(a.id(), &fref("demo::f")).unwrap();
        hub.read_function(b.id(), &fref("demo::f")).unwrap();
        let done = hub.propose(a.id(), set_const(1, 10)).await.unwrap();
        let rev = done.revision.unwrap();
        let err = hub.propose(b.id(), set_const(1, 20)).await.unwrap_err();
        let ServiceError::Conflict { conflicts } = err else {
            panic!("{err:?}")
        };
        let c = &conflicts[0];
        assert_eq!(c.name.as_str(), "demo::f");
        assert_eq!(c.commits.len(), 1);
        assert_eq!(c.commits[0].revision, rev);
        assert_eq!(c.commits[0].agent_id, a.id().to_string());
        assert_eq!(c.commits[0].agent_name, "alice");
        assert_eq!(c.diff.nodes_changed.len(), 1);
        assert_eq!(c.diff.nodes_changed[0].id, NodeId(1));
        assert_eq!(c.diff.nodes_changed[0].before.op, Op::Const(Value::I64(1)));
        assert_eq!(c.diff.nodes_changed[0].after.op, Op::Const(Value::I64(10)));
        assert!(c.diff.nodes_added.is_empty() && c.diff.edges_added.is_empty());
        assert!(c.current_function.is_some());
        // Nothing of bob's edit committed.
        assert_eq!(hub.snapshot().revision(), rev);
        assert_eq!(const_of(&hub, 1), Value::I64(10));
    }
}

each_store! {
    #[tokio::test]
    async fn conflict_diff_names_added_nodes_and_edges(store) {
        let (hub, _s) = hub(&store).await;
        let a = hub.connect("alice", Transport::InProcess);
        let b = hub.connect("bob", Transport::InProcess);
        hub.read_function(a.id(), &fref("demo::f")).unwrap();
        hub.read_function(b.id(), &fref("demo::f")).unwrap();
        hub.propose(
            a.id(),
            edit(json!([
                {"add_node": {"function": "demo::f", "op": "const 7", "as": "$c"}},
                {"set_inputs": {"function": "demo::f", "node": "%2", "inputs": ["%0", "$c"]}},
            ])),
        )
        .await
        .unwrap();
        let err = hub
            .propose(b.id(), edit(json!([{"set_inputs": {"function": "demo::f", "node": "%2", "inputs": ["%1", "%0"]}}])))
            .await
            .unwrap_err();
        let ServiceError::Conflict { conflicts } = err else {
            panic!("{err:?}")
        };
        let d = &conflicts[0].diff;
        assert_eq!(d.nodes_added.len(), 1);
        assert_eq!(d.nodes_added[0].0, NodeId(7));
        assert_eq!(d.edges_added.len(), 1);
        assert_eq!(
            (
                d.edges_added[0].from,
                d.edges_added[0].to,
                d.edges_added[0].port
            ),
            (NodeId(7), NodeId(2), 1)
        );
        assert_eq!(d.edges_removed.len(), 1);
        assert_eq!(
            (d.edges_removed[0].from, d.edges_removed[0].to),
            (NodeId(1), NodeId(2))
        );
        assert!(!conflicts[0].overlaps.is_empty());
    }
}

each_store! {
    #[tokio::test]
    async fn disjoint_concurrent_edit_is_rebased_and_equals_both_in_order(store) {
        let (hub, _s) = hub(&store).await;
        let a = hub.connect("alice", Transport::InProcess);
        let b = hub.connect("bob", Transport::InProcess);
        hub.read_function(a.id(), &fref("demo::f")).unwrap();
        hub.read_function(b.id(), &fref("demo::f")).unwrap();
        let original: Program = (*hub.snapshot()).clone();
        let first = set_const(1, 10);
        let second = set_const(3, 30);
        hub.propose(a.id(), first.clone()).await.unwrap();
        let merged = hub.propose(b.id(), second.clone()).await.unwrap();
        assert!(merged.functions[0].merged);
        let both = apply(&original, &first.ops, Revision(9)).unwrap().program;
        let both = apply(&both, &second.ops, Revision(10)).unwrap().program;
        assert_eq!(hub.snapshot().root_hash(), both.root_hash());
        assert_eq!(
            (const_of(&hub, 1), const_of(&hub, 3)),
            (Value::I64(10), Value::I64(30))
        );
    }
}

each_store! {
    #[tokio::test]
    async fn on_conflict_reject_refuses_even_a_disjoint_edit(store) {
        let (hub, _s) = hub(&store).await;
        let a = hub.connect("alice", Transport::InProcess);
        let b = hub.connect("bob", Transport::InProcess);
        hub.read_function(a.id(), &fref("demo::f")).unwrap();
        hub.read_function(b.id(), &fref("demo::f")).unwrap();
        hub.propose(a.id(), set_const(1, 10)).await.unwrap();
        let mut req = set_const(3, 30);
        req.on_conflict = OnConflict::Reject;
        assert!(matches!(
            hub.propose(b.id(), req).await,
            Err(ServiceError::Conflict { .. })
        ));
    }
}

each_store! {
    #[tokio::test]
    async fn verification_failure_commits_nothing(store) {
        let (hub, _s) = hub(&store).await;
        let a = hub.connect("alice", Transport::InProcess);
        hub.read_function(a.id(), &fref("demo::f")).unwrap();
        let before = hub.snapshot();
        let err = hub
            .propose(
                a.id(),
                edit(json!([{"set_op": {"function": "demo::f", "node": "%1", "op": "const true"}}])),
            )
            .await
            .unwrap_err();
        let ServiceError::VerificationFailed { diagnostics } = err else {
            panic!("{err:?}")
        };
        assert_eq!(diagnostics[0].code.as_str(), "type_mismatch");
        assert_eq!(diagnostics[0].node, Some(NodeId(2)));
        assert_eq!(hub.snapshot().root_hash(), before.root_hash());
        assert_eq!(hub.snapshot().revision(), before.revision());
    }
}

each_store! {
    #[tokio::test]
    async fn breaking_a_caller_is_refused(store) {
        let (hub, _s) = hub(&store).await;
        let a = hub.connect("alice", Transport::InProcess);
        hub.read_function(a.id(), &fref("demo::g")).unwrap();
        hub.read_function(a.id(), &fref("demo::f")).unwrap();
        // Make f call g, then try to change g's signature.
        hub.propose(
            a.id(),
            edit(json!([
                {"add_node": {"function": "demo::f", "op": "call demo::g", "as": "$g"}},
                {"set_inputs": {"function": "demo::f", "node": "%2", "inputs": ["%0", "$g"]}},
            ])),
        )
        .await
        .unwrap();
        let err = hub
            .propose(a.id(), edit(json!([{"set_signature": {"function": "demo::g", "params": [{"name": "y", "type": "i64"}], "returns": "i64"}}])))
            .await
            .unwrap_err();
        let ServiceError::VerificationFailed { diagnostics } = err else {
            panic!("{err:?}")
        };
        assert_eq!(diagnostics[0].code.as_str(), "call_arity");
        assert_eq!(diagnostics[0].function_name.as_str(), "demo::f");
        let err = hub
            .propose(
                a.id(),
                edit(json!([{"delete_function": {"function": "demo::g"}}])),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, ServiceError::VerificationFailed { .. }),
            "{err:?}"
        );
    }
}

each_store! {
    #[tokio::test]
    async fn blind_writes_are_refused_with_read_required(store) {
        let (hub, _s) = hub(&store).await;
        let c = hub.connect("carol", Transport::InProcess);
        let err = hub.propose(c.id(), set_const(1, 5)).await.unwrap_err();
        let ServiceError::ReadRequired { functions } = err else {
            panic!("{err:?}")
        };
        assert_eq!(functions[0].1.as_str(), "demo::f");
        // An explicit base is as good as a read.
        let hash = hub
            .snapshot()
            .get(hub.snapshot().lookup(&fref("demo::f")).unwrap())
            .unwrap()
            .hash;
        let mut req = set_const(1, 5);
        req.base = vec![(fref("demo::f"), hash)];
        hub.propose(c.id(), req).await.unwrap();
    }
}

/// Takes the write lock on `demo::f` for `agent` without waiting, with a
/// lease of `ttl` (the default when `None`).
async fn lock_f(hub: &Hub, agent: AgentId, ttl: Option<Duration>) {
    hub.acquire(
        agent,
        &[LockSpec::Function {
            function: fref("demo::f"),
            mode: LockMode::Write,
        }],
        Duration::ZERO,
        ttl,
        None,
        &CancellationToken::new(),
        None,
    )
    .await
    .unwrap();
}

each_store! {
    /// On tokio's paused clock: the lease lapses because the test advances the
    /// clock, and no wall-clock time passes. Awaiting a commit waits for the
    /// store's writer, a std thread the runtime cannot see; meanwhile tokio
    /// auto-advances to its next timer, which only moves the clock further
    /// past the expiry this test is about.
    #[tokio::test(start_paused = true)]
    async fn edit_on_an_expired_lease_after_another_commit_is_lock_expired(store) {
        let (hub, _s) = hub(&store).await;
        let a = hub.connect("alice", Transport::InProcess);
        let b = hub.connect("bob", Transport::InProcess);
        lock_f(&hub, a.id(), Some(Duration::from_millis(1000))).await;
        hub.read_function(a.id(), &fref("demo::f")).unwrap();
        // While alice holds it, bob cannot edit.
        hub.read_function(b.id(), &fref("demo::f")).unwrap();
        let err = hub.propose(b.id(), set_const(3, 3)).await.unwrap_err();
        let ServiceError::LockDenied { locked } = err else {
            panic!("{err:?}")
        };
        assert_eq!(locked[0].blocked.holders[0].agent, a.id());
        tokio::time::advance(Duration::from_millis(1100)).await;
        // The lease lapsed: bob takes the lock and commits.
        lock_f(&hub, b.id(), None).await;
        hub.propose(b.id(), set_const(3, 3)).await.unwrap();
        hub.release(b.id(), None).unwrap();
        let err = hub.propose(a.id(), set_const(1, 10)).await.unwrap_err();
        assert!(matches!(err, ServiceError::LockExpired { .. }), "{err:?}");
    }
}

each_store! {
    /// A write lock on a function's module authorises editing the function
    /// just as a lock on the function does, and its fencing token is relied
    /// on: once the module's lease lapses and someone else commits under a
    /// newer lock, the old holder's edit is `lock_expired`, not merged.
    #[tokio::test(start_paused = true)]
    async fn edit_under_an_expired_module_lease_is_lock_expired(store) {
        let (hub, _s) = hub(&store).await;
        let a = hub.connect("alice", Transport::InProcess);
        let b = hub.connect("bob", Transport::InProcess);
        let module = LockSpec::Other(LockTarget::new(
            Resource::Module(ModuleName::parse("demo").unwrap()),
            LockMode::Write,
        ));
        let no_cancel = CancellationToken::new();
        let ttl = Some(Duration::from_millis(1000));
        hub.acquire(
            a.id(),
            &[module],
            Duration::ZERO,
            ttl,
            None,
            &no_cancel,
            None,
        )
        .await
        .unwrap();
        hub.read_function(a.id(), &fref("demo::f")).unwrap();
        hub.propose(a.id(), set_const(1, 7)).await.unwrap();
        tokio::time::advance(Duration::from_millis(1100)).await;
        hub.read_function(b.id(), &fref("demo::f")).unwrap();
        lock_f(&hub, b.id(), None).await;
        hub.propose(b.id(), set_const(3, 3)).await.unwrap();
        hub.release(b.id(), None).unwrap();
        let err = hub.propose(a.id(), set_const(1, 10)).await.unwrap_err();
        assert!(matches!(err, ServiceError::LockExpired { .. }), "{err:?}");
    }
}

each_store! {
    #[tokio::test]
    async fn too_many_conflicts_after_the_cap(store) {
        let (hub, _s) = hub_with(&store, |c| c.max_conflicts = 3).await;
        let a = hub.connect("alice", Transport::InProcess);
        let b = hub.connect("bob", Transport::InProcess);
        for round in 0..3 {
            hub.read_function(b.id(), &fref("demo::f")).unwrap();
            hub.read_function(a.id(), &fref("demo::f")).unwrap();
            hub.propose(a.id(), set_const(1, 100 + round))
                .await
                .unwrap();
            let err = hub
                .propose(b.id(), set_const(1, 200 + round))
                .await
                .unwrap_err();
            match (round, &err) {
                (0 | 1, ServiceError::Conflict { .. }) => {}
                (2, ServiceError::TooManyConflicts { n_conflicts: 3, .. }) => {}
                _ => panic!("round {round}: {err:?}"),
            }
        }
    }
}

each_store! {
    #[tokio::test]
    async fn conflicting_dry_runs_do_not_count_toward_the_cap(store) {
        let (hub, _s) = hub_with(&store, |c| c.max_conflicts = 3).await;
        let a = hub.connect("alice", Transport::InProcess);
        let b = hub.connect("bob", Transport::InProcess);
        hub.read_function(b.id(), &fref("demo::f")).unwrap();
        for round in 0..5 {
            hub.read_function(a.id(), &fref("demo::f")).unwrap();
            hub.propose(a.id(), set_const(1, 100 + round))
                .await
                .unwrap();
            // Each conflict moves bob's base to what it showed him, so each
            // round's dry run is stale again after alice's commit.
            let mut probe = set_const(1, 200 + round);
            probe.dry_run = true;
            let err = hub.propose(b.id(), probe).await.unwrap_err();
            assert!(
                matches!(err, ServiceError::Conflict { .. }),
                "dry run {round}: {err:?}"
            );
        }
        // The first real attempt is the first that counts.
        hub.read_function(a.id(), &fref("demo::f")).unwrap();
        hub.propose(a.id(), set_const(1, 300)).await.unwrap();
        let err = hub.propose(b.id(), set_const(1, 400)).await.unwrap_err();
        assert!(matches!(err, ServiceError::Conflict { .. }), "{err:?}");
    }
}

each_store! {
    #[tokio::test]
    async fn dry_run_commits_nothing(store) {
        let (hub, _s) = hub(&store).await;
        let a = hub.connect("alice", Transport::InProcess);
        hub.read_function(a.id(), &fref("demo::f")).unwrap();
        let before = hub.snapshot().root_hash();
        let mut req = set_const(1, 10);
        req.dry_run = true;
        let out = hub.propose(a.id(), req).await.unwrap();
        assert!(out.dry_run && out.revision.is_none());
        assert_ne!(out.functions[0].before, out.functions[0].after);
        assert_eq!(hub.snapshot().root_hash(), before);
    }
}

each_store! {
    #[tokio::test]
    async fn invalid_ops_name_the_op_and_change_nothing(store) {
        let (hub, _s) = hub(&store).await;
        let a = hub.connect("alice", Transport::InProcess);
        hub.read_function(a.id(), &fref("demo::f")).unwrap();
        let before = hub.snapshot().root_hash();
        let err = hub
            .propose(
                a.id(),
                edit(json!([
                    {"set_op": {"function": "demo::f", "node": "%1", "op": "const 3"}},
                    {"remove_node": {"function": "demo::f", "node": "%0"}},
                ])),
            )
            .await
            .unwrap_err();
        let ServiceError::InvalidEdit(e) = err else {
            panic!("{err:?}")
        };
        assert_eq!(e.index, 1);
        assert!(e.to_string().contains("still used"), "{e}");
        assert_eq!(hub.snapshot().root_hash(), before);
    }
}

each_store! {
    /// Many agents commit random edits to a few shared functions at once.
    /// Afterwards every acknowledged commit is in the log exactly once, the log
    /// replays to the same program, and the program verifies.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_commits_lose_nothing_and_replay(store) {
        let (hub, setup) = hub(&store).await;
        let n_agents = 12;
        let per_agent = 15;
        let mut tasks = Vec::new();
        for k in 0..n_agents {
            let hub = hub.clone();
            tasks.push(tokio::spawn(async move {
                let me = hub.connect(&format!("agent{k}"), Transport::InProcess);
                let mut acked = Vec::new();
                let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ (k as u64 * 0x9e37);
                let mut attempts = 0;
                while acked.len() < per_agent && attempts < per_agent * 20 {
                    attempts += 1;
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let function = if seed.is_multiple_of(3) { "demo::g" } else { "demo::f" };
                    let node = if function == "demo::g" { 0 } else { [1, 3][(seed >> 8) as usize % 2] };
                    hub.read_function(me.id(), &fref(function)).unwrap();
                    tokio::task::yield_now().await;
                    let req = edit(json!([{"set_op": {"function": function, "node": format!("%{node}"), "op": format!("const {}", seed % 1000)}}]));
                    match hub.propose(me.id(), req).await {
                        Ok(out) => {
                            if let Some(rev) = out.revision {
                                acked.push((rev, out.functions[0].after.unwrap()));
                            }
                        }
                        Err(ServiceError::Conflict { .. } | ServiceError::TooManyConflicts { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                acked
            }));
        }
        let mut acked = Vec::new();
        for t in tasks {
            acked.extend(t.await.unwrap());
        }
        assert!(
            acked.len() >= n_agents * per_agent / 2,
            "only {} commits",
            acked.len()
        );
        let log = hub.store().all_commits().unwrap();
        // Revisions are 1..=n without gaps, each acknowledged one exactly once
        // and with the hash its committer was told.
        for (idx, c) in log.iter().enumerate() {
            assert_eq!(c.revision, Revision(idx as u64 + 1));
        }
        for (rev, hash) in &acked {
            let hits: Vec<_> = log.iter().filter(|c| c.revision == *rev).collect();
            assert_eq!(hits.len(), 1);
            assert_eq!(hits[0].changes[0].after, Some(*hash));
        }
        // Replaying the log from nothing gives the current program.
        let mut replay = Program::new();
        for c in &log {
            replay = apply(&replay, &c.ops, c.revision).unwrap().program;
        }
        let current = hub.snapshot();
        assert_eq!(replay.root_hash(), current.root_hash());
        assert!(verify_all(&current).is_empty());
        // And the store reopens to the same program.
        let root = current.root_hash();
        hub.shutdown().await;
        drop(setup);
        drop(hub);
        let reopened = store.reopen();
        assert_eq!(reopened.snapshot().root_hash(), root);
    }
}

each_store! {
    /// A name that an agent read twice, for two different functions (the first
    /// was renamed away and a new function took its name), means the function
    /// that holds the name now: the edit lands there, not on the renamed one.
    #[tokio::test]
    async fn a_reused_name_means_the_function_read_under_it_last(store) {
        let (hub, _s) = hub(&store).await;
        let x = hub.connect("x", Transport::InProcess);
        let y = hub.connect("y", Transport::InProcess);
        hub.read_function(x.id(), &fref("demo::g")).unwrap();
        hub.read_function(y.id(), &fref("demo::g")).unwrap();
        let old = hub.snapshot().lookup(&fref("demo::g")).unwrap();
        hub.propose(
            y.id(),
            edit(json!([
                {"rename_function": {"function": "demo::g", "new_name": "demo::g_old"}},
                {"create_function": {"name": "demo::g", "params": [], "returns": "i64", "body": {"text": "%0 = const 7\n%1 = return %0\n"}}},
            ])),
        )
        .await
        .unwrap();
        hub.read_function(x.id(), &fref("demo::g")).unwrap();
        let new = hub.snapshot().lookup(&fref("demo::g")).unwrap();
        assert_ne!(old, new);
        hub.propose(
            x.id(),
            edit(json!([{"set_op": {"function": "demo::g", "node": "%0", "op": "const 70"}}])),
        )
        .await
        .unwrap();
        let p = hub.snapshot();
        let op_of = |id| p.get(id).unwrap().function.nodes[&NodeId(0)].op;
        assert_eq!(op_of(new), Op::Const(Value::I64(70)));
        assert_eq!(op_of(old), Op::Const(Value::I64(5)));
    }
}
