//! The acceptance story of DESIGN.md section 10, driven only through MCP
//! clients: rmcp's client in-process, over HTTP with a protocol session,
//! and over HTTP without one (register_agent + `session`).

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_contend_for_a_write_lock() {
    let s = Server::start().await;
    let alice = s.http_session().await;
    ok(&call(
        &alice,
        "register_agent",
        json!({"name": "alice", "purpose": "refactor f"}),
    )
    .await);
    let alice_id = agent_id(&alice).await;
    let bob = s.http_stateless().await;
    let (bob_session, _) = register(&bob, "bob").await;
    let carol = s.in_process("carol").await;

    ok(&acquire(&alice, "demo::f", "write").await);
    // Bob sees who holds it and where he would stand.
    let denied = refused(
        &bob,
        "acquire_locks",
        with(
            lock_args("demo::f", "write"),
            json!({"session": bob_session}),
        ),
        "lock_denied",
    )
    .await;
    let b = &denied["blocked"][0];
    assert_eq!(b["holders"][0]["agent_id"], alice_id.as_str());
    assert_eq!(b["holders"][0]["agent_name"], "alice");
    assert_eq!(b["holders"][0]["mode"], "write");
    assert_eq!(b["holders"][0]["purpose"], "refactor f");
    assert_eq!(
        (b["queue_position"].as_u64(), b["queue_length"].as_u64()),
        (Some(1), Some(0))
    );

    // Bob queues; Carol, arriving later, sees she would be second.
    let bob_wait = spawn_call(
        &bob,
        acquire_params(
            "demo::f",
            "write",
            json!({"wait_ms": 10000, "session": bob_session}),
        ),
    );
    eventually("bob to queue", async || s.hub.locks().n_waiting() == 1).await;
    let denied = refused(
        &carol,
        "acquire_locks",
        lock_args("demo::f", "read"),
        "lock_denied",
    )
    .await;
    let b = &denied["blocked"][0];
    assert_eq!(
        (b["queue_position"].as_u64(), b["queue_length"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(b["waiting_ahead"][0]["agent_name"], "bob");
    let status = ok(&call(&carol, "lock_status", json!({"function": "demo::f"})).await);
    assert_eq!(status["locks"][0]["waiters"][0]["agent_name"], "bob");
    assert_eq!(status["locks"][0]["waiters"][0]["position"], 1);

    // Alice releases: Bob is granted from the queue.
    ok(&call(&alice, "release_locks", json!({})).await);
    let granted = ok(&bob_wait.await.unwrap().unwrap());
    assert_eq!(granted["granted"][0]["resource"], "demo::f");
    assert_eq!(granted["granted"][0]["mode"], "write");
    let status = ok(&call(&carol, "lock_status", json!({})).await);
    assert_eq!(status["locks"][0]["holders"][0]["agent_name"], "bob");
    drop(bob);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_all_or_nothing() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let bob = s.in_process("bob").await;
    ok(&acquire(&alice, "demo::f", "read").await);
    ok(&acquire(&bob, "demo::g", "write").await);
    // f is free for a write upgrade, g is not: nothing is granted, and
    // alice keeps exactly the read lock she had.
    let both = json!({"locks": [{"function": "demo::f", "mode": "write"}, {"function": "demo::g", "mode": "write"}]});
    let denied = refused(&alice, "acquire_locks", both, "lock_denied").await;
    assert_eq!(denied["blocked"].as_array().unwrap().len(), 1);
    assert_eq!(denied["blocked"][0]["resource"], "demo::g");
    assert_eq!(
        my_locks(&alice).await,
        vec![("demo::f".to_string(), "read".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_edit_gets_the_conflict_diff_and_disjoint_edit_merges() {
    let s = Server::start().await;
    let alice = s.http_session().await;
    let bob = s.in_process("bob").await;
    read(&alice, "demo::f").await;
    let base = read(&bob, "demo::f").await["hash"].clone();
    let done = ok(&call(&alice, "propose_edit", json!({"ops": [{"set_op": {"function": "demo::f", "node": "%1", "op": "const 10"}}], "purpose": "bump"})).await);
    assert_eq!(done["status"], "committed");
    let rev = done["revision"].clone();

    // Bob's edit touches the same node: a conflict naming Alice's commit and
    // exactly what changed, with the current text.
    let conflict = refused(
        &bob,
        "propose_edit",
        json!({"ops": [{"set_op": {"function": "demo::f", "node": "%1", "op": "const 20"}}]}),
        "conflict",
    )
    .await;
    let c = &conflict["conflicts"][0];
    assert_eq!(c["function"], "demo::f");
    assert_eq!(c["base"], base);
    assert_eq!(c["commits"][0]["revision"], rev);
    assert_eq!(c["commits"][0]["purpose"], "bump");
    assert_eq!(c["diff"]["nodes_changed"][0]["id"], "%1");
    assert_eq!(c["diff"]["nodes_changed"][0]["before"], "%1 = const 1");
    assert_eq!(c["diff"]["nodes_changed"][0]["after"], "%1 = const 10");
    assert!(
        c["current_text"]
            .as_str()
            .unwrap()
            .contains("%1 = const 10")
    );
    assert!(!c["overlaps"].as_array().unwrap().is_empty());

    // With on_conflict: reject, even a disjoint stale edit is refused.
    refused(
        &bob,
        "propose_edit",
        json!({
            "ops": [{"set_op": {"function": "demo::f", "node": "%3", "op": "const 30"}}],
            "base": {"demo::f": base},
            "on_conflict": "reject",
        }),
        "conflict",
    )
    .await;

    // A disjoint edit written against the same stale base merges.
    let merged = ok(&call(
        &bob,
        "propose_edit",
        json!({
            "ops": [{"set_op": {"function": "demo::f", "node": "%3", "op": "const 30"}}],
            "base": {"demo::f": base},
        }),
    )
    .await);
    assert_eq!(merged["functions"][0]["merged"], true);
    let text = read(&bob, "demo::f").await["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains("%1 = const 10") && text.contains("%3 = const 30"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaking_edit_is_refused_with_diagnostics() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let before = ok(&call(&alice, "verify_all", json!({})).await)["root_hash"].clone();
    read(&alice, "demo::f").await;
    let e = refused(
        &alice,
        "propose_edit",
        json!({"ops": [{"set_inputs": {"function": "demo::f", "node": "%6", "inputs": []}}]}),
        "verification_failed",
    )
    .await;
    assert_eq!(e["diagnostics"][0]["code"], "arity");
    assert_eq!(e["diagnostics"][0]["node"], "%6");
    let after = ok(&call(&alice, "verify_all", json!({})).await);
    assert_eq!(after["root_hash"], before);
    assert_eq!(after["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_session_releases_its_locks_at_once() {
    // No progress tick and no wait timeout within the test: only the end of
    // alice's session can take her out of the queue.
    let s = Server::start_with(|c| c.locks.progress_interval = Duration::from_secs(3600)).await;
    let alice = s.http_session().await;
    let bob = s.in_process("bob").await;
    ok(&acquire(&alice, "demo::f", "write").await);
    ok(&acquire(&bob, "demo::g", "write").await);
    refused(
        &bob,
        "acquire_locks",
        lock_args("demo::f", "write"),
        "lock_denied",
    )
    .await;
    // Alice also waits for g, a call still in flight when her session ends.
    let waiting = spawn_call(&alice, wait_call("demo::g", None));
    eventually("alice to queue for g", async || {
        s.hub.locks().n_waiting() == 1
    })
    .await;
    // Closing the client sends DELETE for the protocol session and awaits
    // the answer: by then her lock and her queue place are gone.
    alice.cancel().await.unwrap();
    assert_eq!(s.hub.locks().n_waiting(), 0, "alice still queued");
    let held: Vec<serde_json::Value> = ok(&call(&bob, "lock_status", json!({})).await)["locks"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(held.len(), 1, "{held:#?}");
    assert_eq!(held[0]["resource"], "demo::g");
    ok(&acquire(&bob, "demo::f", "write").await);
    waiting.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_lets_the_waiter_in_and_fences_the_old_holder_out() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let bob = s.http_stateless().await;
    let (bob_session, _) = register(&bob, "bob").await;
    read(&alice, "demo::f").await;
    ok(&acquire_with(&alice, "demo::f", "write", json!({"ttl_ms": 300})).await);
    // Bob waits; the lease lapses without any release and he is granted.
    let bob_wait = json!({"wait_ms": 10000, "session": bob_session});
    let granted = ok(&acquire_with(&bob, "demo::f", "write", bob_wait).await);
    assert!(granted["waited_ms"].as_u64().unwrap() >= 200, "{granted}");
    ok(&call(
        &bob,
        "get_function",
        json!({"function": "demo::f", "session": bob_session}),
    )
    .await);
    ok(&call(&bob, "propose_edit", json!({"ops": [{"set_op": {"function": "demo::f", "node": "%3", "op": "const 3"}}], "session": bob_session})).await);
    // Alice's edit relied on her lapsed lease: while Bob holds the lock it
    // is denied, and after he is done it is fenced out as expired.
    refused(
        &alice,
        "propose_edit",
        json!({"ops": [{"set_op": {"function": "demo::f", "node": "%1", "op": "const 9"}}]}),
        "lock_denied",
    )
    .await;
    ok(&call(&bob, "release_locks", json!({"session": bob_session})).await);
    let expired = refused(
        &alice,
        "propose_edit",
        json!({"ops": [{"set_op": {"function": "demo::f", "node": "%1", "op": "const 9"}}]}),
        "lock_expired",
    )
    .await;
    assert_eq!(expired["function"], "demo::f");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_is_refused_and_nobody_loses_a_lock() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let bob = s.in_process("bob").await;
    let alice_id = agent_id(&alice).await;
    let bob_id = agent_id(&bob).await;
    ok(&acquire(&alice, "demo::f", "write").await);
    ok(&acquire(&bob, "demo::g", "write").await);
    let alice_wait = spawn_call(
        &alice,
        acquire_params("demo::g", "write", json!({"wait_ms": 10000})),
    );
    eventually("alice to queue", async || s.hub.locks().n_waiting() == 1).await;
    let e = refused(
        &bob,
        "acquire_locks",
        with(lock_args("demo::f", "write"), json!({"wait_ms": 10000})),
        "deadlock",
    )
    .await;
    let cycle: Vec<&str> = e["cycle"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        cycle,
        vec![bob_id.as_str(), alice_id.as_str(), bob_id.as_str()]
    );
    // Bob still holds g, alice still holds f and waits.
    let status = ok(&call(&bob, "lock_status", json!({})).await);
    assert_eq!(status["yours"][0]["resource"], "demo::g");
    assert_eq!(status["locks"].as_array().unwrap().len(), 2);
    ok(&call(&bob, "release_locks", json!({})).await);
    let granted = alice_wait.await.unwrap().unwrap();
    assert_eq!(ok(&granted)["granted"][0]["resource"], "demo::g");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_gets_progress_and_a_cancelled_wait_leaves_the_queue() {
    // No progress tick and no wait timeout within the test's deadlines: only
    // the cancellation can take bob out of the queue.
    let s = Server::start_with(|c| c.locks.progress_interval = Duration::from_secs(3600)).await;
    let alice = s.in_process("alice").await;
    let bob = s.http_session().await;
    ok(&acquire(&alice, "demo::f", "write").await);
    let progress = bob.service().progress.clone();
    let waiting = spawn_call(&bob, wait_call("demo::f", Some(7)));
    eventually("a progress notification", async || {
        !progress.lock().unwrap().is_empty()
    })
    .await;
    let first = progress.lock().unwrap()[0].clone();
    let message = first.message.unwrap();
    assert!(
        message.contains("demo::f: position 1 of 1, held by alice"),
        "{message}"
    );
    // Dropping the call sends notifications/cancelled: bob leaves the queue
    // long before his 60 s wait would end.
    waiting.abort();
    eventually("the queue to empty", async || {
        s.hub.locks().n_waiting() == 0
    })
    .await;
    drop(bob);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_leaves_the_queue() {
    let s = Server::start_with(|c| c.locks.progress_interval = Duration::from_millis(200)).await;
    let alice = s.in_process("alice").await;
    ok(&acquire(&alice, "demo::f", "write").await);
    let bob = s.http_stateless().await;
    let (session, _) = register(&bob, "bob").await;
    let waiting = tokio::spawn(async move {
        let args = json!({"wait_ms": 60000, "session": session});
        let _ = bob
            .call_tool(acquire_params("demo::f", "write", args))
            .await;
    });
    eventually("bob to queue", async || s.hub.locks().n_waiting() == 1).await;
    // The whole client vanishes mid-wait.
    waiting.abort();
    eventually("the queue to empty", async || {
        s.hub.locks().n_waiting() == 0
    })
    .await;
}

/// The one agent `list_agents` marks as the caller when passed `session`.
async fn whoami(client: &Client, session: &str) -> serde_json::Value {
    let agents = ok(&call(client, "list_agents", json!({"session": session})).await);
    let you: Vec<_> = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["you"] == true)
        .cloned()
        .collect();
    assert_eq!(you.len(), 1, "{agents:#}");
    you[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_rules_over_stateless_http() {
    let s = Server::start().await;
    let anon = s.http_stateless().await;
    // Reads work without an identity, but do not count as a read.
    let f = ok(&call(&anon, "get_function", json!({"function": "demo::f"})).await);
    assert_eq!(f["read_recorded"], false);
    // Anything that acts for an agent needs one.
    refused(
        &anon,
        "acquire_locks",
        lock_args("demo::f", "write"),
        "session_required",
    )
    .await;
    refused(
        &anon,
        "propose_edit",
        json!({"ops": [{"set_doc": {"function": "demo::f", "doc": "x"}}]}),
        "session_required",
    )
    .await;
    refused(
        &anon,
        "release_locks",
        json!({"session": "not-a-handle"}),
        "session_required",
    )
    .await;
    let (session, id) = register(&anon, "dana").await;
    let me = whoami(&anon, &session).await;
    assert_eq!(me["agent_id"], id.as_str());
    assert_eq!(me["transport"], "http_stateless");
    // The secret never appears in what others see.
    let other = s.in_process("eve").await;
    let seen = call(&other, "list_agents", json!({})).await;
    assert!(
        !serde_json::to_string(&seen.structured_content)
            .unwrap()
            .contains(&session)
    );
    // A blind write is refused; after a read it goes through.
    refused(
        &anon,
        "propose_edit",
        json!({"ops": [{"set_doc": {"function": "demo::f", "doc": "x"}}], "session": session}),
        "read_required",
    )
    .await;
    ok(&call(
        &anon,
        "get_function",
        json!({"function": "demo::f", "session": session}),
    )
    .await);
    ok(&call(
        &anon,
        "propose_edit",
        json!({"ops": [{"set_doc": {"function": "demo::f", "doc": "x"}}], "session": session}),
    )
    .await);
    let log = ok(&call(&anon, "history", json!({"function": "demo::f", "limit": 1})).await);
    assert_eq!(log["commits"][0]["agent_id"], id.as_str());
    assert_eq!(log["commits"][0]["agent_name"], "dana");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_bound_agent_gets_a_handle_that_names_it_and_dies_with_it() {
    let s = Server::start().await;
    let http = s.http_session().await;
    let inproc = s.in_process("ivy").await;
    let stateless = s.http_stateless().await;
    for client in [&http, &inproc] {
        let me = ok(&call(client, "register_agent", json!({"name": "named"})).await);
        let handle = me["session"].as_str().expect("a handle on every transport");
        assert_eq!(handle.len(), 64);
        // The same handle each time; passed from elsewhere, it is this agent.
        let again = ok(&call(client, "register_agent", json!({})).await);
        assert_eq!(again["session"], handle);
        let you = whoami(&stateless, handle).await;
        assert_eq!(you["agent_id"], me["agent_id"]);
        assert_ne!(you["transport"], "http_stateless");
    }
    let handle = ok(&call(&http, "register_agent", json!({})).await)["session"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&call(
        &stateless,
        "acquire_locks",
        json!({"locks": [{"path": "src/"}], "session": handle}),
    )
    .await);
    let held = ok(&call(&http, "lock_status", json!({})).await);
    assert_eq!(held["yours"][0]["resource"], "path:src/", "{held:#}");
    // Ending the session ends its handle.
    http.cancel().await.unwrap();
    refused(
        &stateless,
        "lock_status",
        json!({"session": handle}),
        "session_required",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_read_run_diff_and_page() {
    let s = Server::start().await;
    let a = s.in_process("alice").await;
    let run = ok(&call(
        &a,
        "run_function",
        json!({"function": "demo::f", "args": [4]}),
    )
    .await);
    assert_eq!(run["value"], 13);
    let e = refused(
        &a,
        "run_function",
        json!({"function": "demo::f", "args": []}),
        "runtime_error",
    )
    .await;
    assert_eq!(e["runtime_code"], "bad_argument");
    let page = ok(&call(&a, "program_overview", json!({"limit": 1})).await);
    assert_eq!(page["functions"][0]["name"], "demo::f");
    let next = ok(&call(
        &a,
        "program_overview",
        json!({"limit": 1, "cursor": page["next_cursor"]}),
    )
    .await);
    assert_eq!(next["functions"][0]["name"], "demo::g");
    assert!(next.get("next_cursor").is_none());
    let before = read(&a, "demo::f").await["hash"].clone();
    ok(&call(
        &a,
        "propose_edit",
        json!({"ops": [
            {"add_node": {"function": "demo::f", "op": "const 7", "as": "$seven"}},
            {"set_inputs": {"function": "demo::f", "node": "%5", "inputs": ["%2", "$seven"]}},
        ]}),
    )
    .await);
    let d = ok(&call(&a, "diff", json!({"function": "demo::f", "from": before})).await);
    assert_eq!(d["diff"]["nodes_added"][0], "%7 = const 7");
    assert_eq!(d["diff"]["edges_added"][0]["from"], "%7");
    assert_eq!(d["diff"]["edges_removed"][0]["from"], "%4");
    let json_form = ok(&call(&a, "get_function", json!({"function": 1, "format": "json"})).await);
    assert!(
        json_form["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == "%7")
    );
    assert_eq!(
        ok(&call(&a, "run_function", json!({"function": "#1", "args": [4]})).await)["value"],
        12
    );
    let hist = ok(&call(&a, "history", json!({"limit": 1})).await);
    assert_eq!(hist["commits"].as_array().unwrap().len(), 1);
    assert!(hist["next_before_revision"].is_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_agents_idle_out_but_not_while_waiting() {
    let s = Server::start_with(|c| c.stateless_idle = Duration::from_millis(300)).await;
    let bob = s.http_stateless().await;
    let (bob_session, _) = register(&bob, "bob").await;
    let alice = s.in_process("alice").await;
    ok(&acquire_with(&alice, "demo::f", "write", json!({"ttl_ms": 1500})).await);
    // Bob waits longer than the idle limit; he is not reaped meanwhile.
    let bob_wait = json!({"wait_ms": 20000, "session": bob_session});
    let granted = acquire_with(&bob, "demo::f", "write", bob_wait).await;
    ok(&granted);
    // Idle afterwards, he is ended and his lock goes.
    eventually("bob to be reaped", async || {
        s.hub.locks().status().is_empty()
    })
    .await;
    refused(
        &bob,
        "release_locks",
        json!({"session": bob_session}),
        "session_required",
    )
    .await;
}
