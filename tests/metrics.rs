//! `GET /metrics` (issue 13): a known sequence of tool calls moves each
//! counter by exactly the expected amount, the text passes
//! `promtool check metrics` (Debian's `prometheus` package, which
//! `.ci/run` installs), and the route keeps the same Host/Origin rules as
//! every other.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::json;

/// The samples of a scrape: `name{labels}` → value.
type Samples = BTreeMap<String, f64>;

async fn scrape(server: &Server) -> Samples {
    let r = get(server, "/metrics", &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    r.body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("a sample line");
            (name.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

async fn get(server: &Server, target: &str, extra: &[(&str, &str)]) -> common::raw::Response {
    common::raw::once(&server.addr.to_string(), "GET", target, extra, "").await
}

fn delta(before: &Samples, after: &Samples, sample: &str) -> f64 {
    let a = after
        .get(sample)
        .unwrap_or_else(|| panic!("`{sample}` is not in the scrape"));
    a - before.get(sample).copied().unwrap_or(0.0)
}

fn lock(kind: &str, mode: &str, outcome: &str) -> String {
    format!("cograph_lock_requests_total{{kind=\"{kind}\",mode=\"{mode}\",outcome=\"{outcome}\"}}")
}

fn tool(name: &str, outcome: &str) -> String {
    format!("cograph_tool_calls_total{{tool=\"{name}\",outcome=\"{outcome}\"}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_sequence_of_calls_moves_each_counter_by_the_expected_amount() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let bob = s.in_process("bob").await;
    let before = scrape(&s).await;

    // Locks: granted, denied, timed out, a deadlock, and other kinds.
    ok(&acquire(&alice, "demo::f", "write").await);
    err(&acquire(&bob, "demo::f", "write").await, "lock_denied");
    err(
        &acquire_with(&bob, "demo::f", "write", json!({"wait_ms": 30})).await,
        "lock_timeout",
    );
    ok(&acquire(&bob, "demo::g", "write").await);
    let waiting = spawn_call(
        &alice,
        acquire_params("demo::g", "write", json!({"wait_ms": 20_000})),
    );
    eventually("alice waits for demo::g", async || {
        lock_queue(&bob, "demo::g").await.1 == ["alice"]
    })
    .await;
    err(
        &acquire_with(&bob, "demo::f", "write", json!({"wait_ms": 20_000})).await,
        "deadlock",
    );
    ok(&call(&bob, "release_locks", json!({})).await);
    ok(&waiting.await.unwrap().unwrap());
    let others = json!({"locks": [
        {"path": "src/net/", "mode": "read"},
        {"semaphore": "gpu", "permits": 1, "capacity": 2}
    ]});
    ok(&call(&bob, "acquire_locks", others).await);

    // Edits: a commit, a refused conflict, a verification failure.
    read(&bob, "demo::f").await;
    read(&alice, "demo::f").await;
    let set = |node: &str, op: &str| json!({"ops": [{"set_op": {"function": "demo::f", "node": node, "op": op}}]});
    ok(&call(&alice, "propose_edit", set("%1", "const 5")).await);
    ok(&call(&alice, "release_locks", json!({})).await);
    let reject = with(set("%1", "const 6"), json!({"on_conflict": "reject"}));
    err(&call(&bob, "propose_edit", reject).await, "conflict");
    read(&bob, "demo::f").await;
    err(
        &call(&bob, "propose_edit", set("%1", "const true")).await,
        "verification_failed",
    );
    // A malformed call: a JSON-RPC error, not a tool result.
    invalid_params(&bob, "lock_status", json!({"kind": "spaceship"})).await;

    let after = scrape(&s).await;
    let expect = [
        (lock("function", "write", "granted"), 3.0),
        (lock("function", "write", "denied"), 1.0),
        (lock("function", "write", "timeout"), 1.0),
        (lock("function", "write", "deadlock"), 1.0),
        (lock("function", "read", "granted"), 0.0),
        (lock("path", "read", "granted"), 1.0),
        (lock("semaphore", "permits", "granted"), 1.0),
        ("cograph_lock_wait_seconds_count".into(), 3.0),
        ("cograph_commits_total".into(), 1.0),
        ("cograph_commit_duration_seconds_count".into(), 1.0),
        // One commit, so one group written durably.
        ("cograph_store_fsync_duration_seconds_count".into(), 1.0),
        ("cograph_conflicts_total{outcome=\"refused\"}".into(), 1.0),
        ("cograph_conflicts_total{outcome=\"merged\"}".into(), 0.0),
        ("cograph_verification_failures_total".into(), 1.0),
        (tool("acquire_locks", "ok"), 4.0),
        (tool("acquire_locks", "error"), 3.0),
        (tool("propose_edit", "ok"), 1.0),
        (tool("propose_edit", "error"), 2.0),
        (tool("lock_status", "failed"), 1.0),
        ("cograph_revision".into(), 1.0),
    ];
    for (sample, want) in &expect {
        assert_eq!(delta(&before, &after, sample), *want, "{sample}");
    }
    // Gauges: bob holds his path lock and permit; nobody waits.
    assert_eq!(after["cograph_locks_held"], 2.0);
    assert_eq!(after["cograph_lock_waiters"], 0.0);
    assert_eq!(after["cograph_agents{transport=\"in_process\"}"], 2.0);
    assert_eq!(after["cograph_build_info{version=\"0.1.0\"}"], 1.0);
    // The tool histogram counts every call the counters count.
    let calls: f64 = ["ok", "error", "failed"]
        .iter()
        .map(|o| after[&tool("acquire_locks", o)])
        .sum();
    assert_eq!(
        after["cograph_tool_call_duration_seconds_count{tool=\"acquire_locks\"}"],
        calls
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_the_metrics() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    ok(&acquire(&alice, "demo::f", "write").await);
    read(&alice, "demo::f").await;
    let text = get(&s, "/metrics", &[]).await.body;
    let file = s.dir.path().join("metrics.txt");
    std::fs::write(&file, &text).unwrap();
    let out = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "promtool did not run ({e}): install Debian's `prometheus` package, as .ci/run does"
            )
        });
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- the text:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn metrics_keep_the_origin_rule_of_every_route() {
    let s = Server::start().await;
    let foreign = get(&s, "/metrics", &[("Origin", "http://evil.example")]).await;
    assert_eq!(foreign.status, 403, "{foreign:?}");
    let local = get(&s, "/metrics", &[("Origin", "http://localhost:3000")]).await;
    assert_eq!(local.status, 200, "{local:?}");
}
