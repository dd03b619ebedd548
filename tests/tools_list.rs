//! `tools/list` an agent can afford (issue 11, section 2), through real
//! rmcp clients: the whole result as the server sends it stays within the
//! budget (DESIGN.md section 8) with an input and an output schema for every
//! tool; every structured result, each failure included, matches its
//! tool's output schema with nothing undeclared, so the error branch names
//! the details the server really sends; and `lock_denied` has one shape
//! whichever tool gives it.

mod common;

use std::collections::BTreeMap;

use cograph::mcp::schemas::TOOLS_LIST_BUDGET;
use common::schema::violations;
use common::*;
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

/// Every tool's output schema, by name, as a client received it.
async fn output_schemas(client: &Client) -> BTreeMap<String, Value> {
    let list = client.list_tools(None).await.unwrap();
    list.tools
        .into_iter()
        .map(|t| {
            let schema = Value::Object((*t.output_schema.expect("an output schema")).clone());
            (t.name.to_string(), schema)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_tools_list_fits_the_budget() {
    let s = Server::start().await;
    for (transport, client) in [
        ("in-process", s.in_process("alice").await),
        ("http session", s.http_session().await),
    ] {
        let list = client.list_tools(None).await.unwrap();
        let total = serde_json::to_string(&list).unwrap().len();
        println!("tools/list over {transport}: {total} characters (budget {TOOLS_LIST_BUDGET})");
        for t in &list.tools {
            let size = |v: String| v.len();
            println!(
                "  {:<17} {:>5}  (input {:>4}, output {:>4}, description {:>3})",
                t.name,
                size(serde_json::to_string(t).unwrap()),
                size(serde_json::to_string(&t.input_schema).unwrap()),
                size(serde_json::to_string(&t.output_schema).unwrap()),
                t.description.as_deref().unwrap_or("").len(),
            );
            assert_eq!(t.input_schema["type"], "object", "{}", t.name);
            let output = t
                .output_schema
                .as_deref()
                .unwrap_or_else(|| panic!("{}: no output schema", t.name));
            assert_eq!(output["type"], "object", "{}", t.name);
        }
        assert_eq!(list.tools.len(), 12);
        assert!(
            total <= TOOLS_LIST_BUDGET,
            "tools/list is {total} characters, over the {TOOLS_LIST_BUDGET} budget"
        );
    }
}

/// Checks a result's structured content against the tool's output schema.
fn conforms(schemas: &BTreeMap<String, Value>, tool: &str, result: &CallToolResult) -> Value {
    let content = result
        .structured_content
        .clone()
        .expect("structured content");
    let problems = violations(&schemas[tool], &content);
    assert!(
        problems.is_empty(),
        "{tool} sent what its output schema does not declare:\n{problems:#?}\n{content:#}"
    );
    content
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_matches_its_tools_error_branch_with_every_detail_declared() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let bob = s.in_process("bob").await;
    let carol = s.in_process("carol").await;
    let schemas = output_schemas(&alice).await;
    let mut seen: Vec<String> = Vec::new();
    macro_rules! expect {
        ($client:expr, $tool:expr, $args:expr, $code:expr) => {{
            let r = call(&$client, $tool, $args).await;
            err(&r, $code);
            seen.push(format!("{}:{}", $tool, $code));
            conforms(&schemas, $tool, &r)
        }};
    }

    // Successes conform too.
    let f = read(&alice, "demo::f").await;
    let g = read(&bob, "demo::g").await;
    conforms(
        &schemas,
        "acquire_locks",
        &acquire(&alice, "demo::f", "write").await,
    );
    conforms(
        &schemas,
        "lock_status",
        &call(&alice, "lock_status", json!({})).await,
    );
    conforms(
        &schemas,
        "list_agents",
        &call(&alice, "list_agents", json!({})).await,
    );
    conforms(
        &schemas,
        "run_function",
        &call(
            &alice,
            "run_function",
            json!({"function": "demo::f", "args": [2]}),
        )
        .await,
    );

    // Lock refusals: denied, timed out, deadlocked.
    expect!(
        bob,
        "acquire_locks",
        lock_args("demo::f", "write"),
        "lock_denied"
    );
    read(&bob, "demo::f").await;
    let set_f =
        json!({"ops": [{"set_op": {"function": "demo::f", "node": "%1", "op": "const 7"}}]});
    expect!(bob, "propose_edit", set_f.clone(), "lock_denied");
    expect!(
        bob,
        "acquire_locks",
        with(lock_args("demo::f", "write"), json!({"wait_ms": 20})),
        "lock_timeout"
    );
    ok(&acquire(&bob, "demo::g", "write").await);
    let alice_wait = spawn_call(
        &alice,
        acquire_params("demo::g", "write", json!({"wait_ms": 10000})),
    );
    eventually("alice to queue", async || s.hub.locks().n_waiting() == 1).await;
    let deadlock = expect!(
        bob,
        "acquire_locks",
        with(lock_args("demo::f", "write"), json!({"wait_ms": 10000})),
        "deadlock"
    );
    assert_eq!(
        deadlock["cycle"].as_array().unwrap().len(),
        3,
        "{deadlock:#}"
    );
    ok(&call(&bob, "release_locks", json!({})).await);
    conforms(
        &schemas,
        "acquire_locks",
        &alice_wait.await.unwrap().unwrap(),
    );
    ok(&call(&alice, "release_locks", json!({})).await);

    // Edit refusals.
    let set_g = |v: i64| json!({"ops": [{"set_op": {"function": "demo::g", "node": "%0", "op": format!("const {v}")}}]});
    expect!(carol, "propose_edit", set_g(1), "read_required");
    read(&alice, "demo::g").await;
    ok(&call(&alice, "propose_edit", set_g(6)).await);
    let conflict = expect!(
        bob,
        "propose_edit",
        with(set_g(7), json!({"on_conflict": "reject"})),
        "conflict"
    );
    assert!(
        conflict["conflicts"][0]["current_text"].is_string(),
        "{conflict:#}"
    );
    let stale = json!({"demo::g": g["hash"]});
    let mut n_conflicts = 1;
    loop {
        let r = call(
            &bob,
            "propose_edit",
            with(set_g(7), json!({"on_conflict": "reject", "base": stale})),
        )
        .await;
        let content = conforms(&schemas, "propose_edit", &r);
        n_conflicts += 1;
        if content["error"]["code"] == "too_many_conflicts" {
            seen.push("propose_edit:too_many_conflicts".into());
            break;
        }
        assert_eq!(content["error"]["code"], "conflict", "{content:#}");
        assert!(
            n_conflicts < 10,
            "no too_many_conflicts after {n_conflicts} conflicts"
        );
    }
    read(&carol, "demo::g").await;
    expect!(
        carol,
        "propose_edit",
        json!({"ops": [{"set_op": {"function": "demo::g", "node": "%1", "op": "neg"}}]}),
        "verification_failed"
    );
    expect!(
        carol,
        "propose_edit",
        json!({"ops": [{"remove_node": {"function": "demo::g", "node": "%9"}}]}),
        "invalid_edit"
    );

    // Reads and runs.
    expect!(
        carol,
        "get_function",
        json!({"function": "demo::nope"}),
        "not_found"
    );
    expect!(
        carol,
        "run_function",
        json!({"function": "demo::nope"}),
        "not_found"
    );
    expect!(
        carol,
        "run_function",
        json!({"function": "demo::f", "args": []}),
        "runtime_error"
    );
    expect!(
        carol,
        "lock_status",
        json!({"function": "demo::nope"}),
        "not_found"
    );
    expect!(
        carol,
        "list_agents",
        json!({"session": "no-such-handle"}),
        "session_required"
    );
    assert_eq!(f["name"], "demo::f");
    assert_eq!(seen.len(), 14, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_denied_has_one_shape_from_acquire_locks_and_propose_edit() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let bob = s.in_process("bob").await;
    let carol = s.in_process("carol").await;
    let alice_id = agent_id(&alice).await;
    ok(&acquire_with(&alice, "demo::f", "write", json!({"purpose": "rewrite f"})).await);
    // Carol waits, so a denial shows a waiter ahead and a queue of one.
    let carol_wait = spawn_call(&carol, wait_call("demo::f", None));
    eventually("carol to queue", async || {
        lock_queue(&alice, "demo::f").await.1 == ["carol"]
    })
    .await;

    let by_lock = err(&acquire(&bob, "demo::f", "write").await, "lock_denied");
    read(&bob, "demo::f").await;
    let by_edit = refused(
        &bob,
        "propose_edit",
        json!({"ops": [{"set_op": {"function": "demo::f", "node": "%1", "op": "const 7"}}]}),
        "lock_denied",
    )
    .await;
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&by_edit), ["blocked", "error"], "{by_edit:#}");
    assert_eq!(keys(&by_lock), keys(&by_edit));
    let (a, b) = (&by_lock["blocked"][0], &by_edit["blocked"][0]);
    assert_eq!(keys(a), keys(b));
    assert_eq!(b["resource"], "demo::f");
    assert_eq!(b["holders"][0]["agent_id"], alice_id.as_str());
    assert_eq!(b["holders"][0]["agent_name"], "alice");
    assert_eq!(b["holders"][0]["mode"], "write");
    assert_eq!(b["holders"][0]["purpose"], "rewrite f");
    assert!(b["holders"][0]["since"].is_string() && b["holders"][0]["expires_at"].is_string());
    assert_eq!(b["waiting_ahead"][0]["agent_name"], "carol");
    // Bob would queue behind carol for the write lock.
    assert_eq!(b["queue_length"], 1);
    assert_eq!(b["queue_position"], 2);
    assert_eq!(a["queue_position"], b["queue_position"]);
    ok(&call(&alice, "release_locks", json!({})).await);
    ok(&carol_wait.await.unwrap().unwrap());
}
