//! The error codes of DESIGN.md section 10 that the acceptance story does
//! not reach, each through a real MCP client (in-process or HTTP with a
//! protocol session): `lock_timeout`, `too_many_conflicts`, `invalid_edit`
//! and `cancelled`. Each test checks the error's structured fields as a
//! client sees them, and that the refusal changed nothing: no lock granted
//! or queue place left behind, the program's root hash unchanged.

mod common;

use std::time::Duration;

use common::*;
use rmcp::model::{CallToolRequest, ClientRequest};
use rmcp::service::PeerRequestOptions;
use serde_json::json;

/// A server whose waiters get no progress tick within a test, so only what
/// the test does (a timeout, a cancellation, a release) moves a queue.
async fn quiet_server() -> Server {
    Server::start_with(|c| c.locks.progress_interval = Duration::from_secs(3600)).await
}

/// An HTTP client with a protocol session, registered under `name`.
async fn http_agent(s: &Server, name: &str) -> Client {
    let client = s.http_session().await;
    ok(&call(&client, "register_agent", json!({"name": name})).await);
    client
}

fn set_const(node: &str, value: i64) -> serde_json::Value {
    json!({"set_op": {"function": "demo::f", "node": node, "op": format!("const {value}")}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_timeout_names_holder_and_queue_and_leaves_the_queue() {
    let s = quiet_server().await;
    let alice = s.in_process("alice").await;
    let bob = http_agent(&s, "bob").await;
    let carol = s.in_process("carol").await;
    let alice_id = agent_id(&alice).await;
    let held = ok(&acquire_with(&alice, "demo::f", "write", json!({"purpose": "rewrite f"})).await);
    // Carol queues first, so bob has a waiter ahead of him.
    let carol_wait = spawn_call(&carol, wait_call("demo::f", None));
    eventually("carol to queue", async || {
        lock_queue(&alice, "demo::f").await.1 == ["carol"]
    })
    .await;

    let timeout = refused(
        &bob,
        "acquire_locks",
        with(lock_args("demo::f", "write"), json!({"wait_ms": 200})),
        "lock_timeout",
    )
    .await;
    assert!(
        timeout["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wait_ms ran out"),
        "{timeout:#}"
    );
    assert!(
        timeout["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("longer wait_ms"),
        "{timeout:#}"
    );
    let blocked = timeout["blocked"].as_array().unwrap();
    assert_eq!(blocked.len(), 1, "{timeout:#}");
    let b = &blocked[0];
    assert_eq!(b["resource"], "demo::f");
    assert_eq!(b["resource"], held["granted"][0]["resource"]);
    let holder = &b["holders"][0];
    assert_eq!(holder["agent_id"], alice_id.as_str());
    assert_eq!(holder["agent_name"], "alice");
    assert_eq!(holder["mode"], "write");
    assert_eq!(holder["purpose"], "rewrite f");
    // A token is its holder's proof of the lock: others never see it.
    assert!(holder.get("fencing_token").is_none(), "{holder:#}");
    assert_eq!(holder["expires_at"], held["granted"][0]["expires_at"]);
    assert_eq!(b["waiting_ahead"][0]["agent_name"], "carol");
    assert_eq!(b["waiting_ahead"][0]["mode"], "write");
    assert_eq!(b["waiting_ahead"][0]["position"], 1);
    assert_eq!(
        (b["queue_position"].as_u64(), b["queue_length"].as_u64()),
        (Some(2), Some(2)),
        "{timeout:#}"
    );

    // Bob left the queue and holds nothing; carol still waits, first.
    assert_eq!(
        lock_queue(&carol, "demo::f").await,
        (vec!["alice".to_string()], vec!["carol".to_string()])
    );
    assert!(my_locks(&bob).await.is_empty());
    // Alice releases: carol, not bob, is granted.
    ok(&call(&alice, "release_locks", json!({})).await);
    let granted = carol_wait.await.unwrap().expect("carol's wait answers");
    assert_eq!(ok(&granted)["granted"][0]["resource"], "demo::f");
    assert_eq!(
        lock_queue(&bob, "demo::f").await,
        (vec!["carol".to_string()], vec![])
    );
    assert!(my_locks(&bob).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_conflicts_after_max_conflicts_advises_a_write_lock() {
    // The default cap: 5 consecutive conflicts on one function.
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let bob = http_agent(&s, "bob").await;
    let stale = read(&bob, "demo::f").await["hash"].clone();
    read(&alice, "demo::f").await;
    let done = ok(&call(
        &alice,
        "propose_edit",
        json!({"ops": [set_const("%1", 10)], "purpose": "bump"}),
    )
    .await);
    let current = done["functions"][0]["after"].clone();
    assert_ne!(current, stale);

    // Bob keeps proposing an overlapping edit against his stale base.
    let stale_edit = json!({"ops": [set_const("%1", 20)], "base": {"demo::f": stale}});
    for attempt in 1..5 {
        let c = refused(&bob, "propose_edit", stale_edit.clone(), "conflict").await;
        assert_eq!(c["conflicts"][0]["base"], stale, "attempt {attempt}");
    }
    let e = refused(
        &bob,
        "propose_edit",
        stale_edit.clone(),
        "too_many_conflicts",
    )
    .await;
    assert_eq!(e["n_conflicts"], 5, "{e:#}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("5 conflicts in a row on `demo::f`"),
        "{e:#}"
    );
    let hint = e["error"]["hint"].as_str().unwrap();
    assert!(
        hint.contains("write lock") && hint.contains("acquire_locks") && hint.contains("wait_ms"),
        "{hint}"
    );
    let c = &e["conflicts"][0];
    assert_eq!(c["function"], "demo::f");
    assert_eq!(c["base"], stale);
    assert_eq!(c["current"], current);
    assert_eq!(c["commits"][0]["revision"], done["revision"]);
    assert_eq!(c["commits"][0]["agent_name"], "alice");
    assert_eq!(c["diff"]["nodes_changed"][0]["id"], "%1");
    assert_eq!(c["diff"]["nodes_changed"][0]["after"], "%1 = const 10");
    assert!(
        c["current_text"]
            .as_str()
            .unwrap()
            .contains("%1 = const 10")
    );
    // Past the cap it stays refused the same way.
    refused(&bob, "propose_edit", stale_edit, "too_many_conflicts").await;

    // Following the advice works: with the write lock and a fresh read,
    // bob's edit commits.
    ok(&acquire_with(&bob, "demo::f", "write", json!({"wait_ms": 10000})).await);
    read(&bob, "demo::f").await;
    let committed = ok(&call(&bob, "propose_edit", json!({"ops": [set_const("%1", 20)]})).await);
    assert_eq!(committed["status"], "committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_edit_names_the_op_and_applies_none_of_the_request() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let before_text = read(&alice, "demo::f").await["text"].clone();
    let overview = ok(&call(&alice, "program_overview", json!({})).await);

    // Ops 0 and 1 are fine; op 2 removes a node that %2 and %4 still use.
    let e = refused(
        &alice,
        "propose_edit",
        json!({"ops": [
            set_const("%1", 3),
            {"set_doc": {"function": "demo::f", "doc": "never written"}},
            {"remove_node": {"function": "demo::f", "node": "%0"}},
        ]}),
        "invalid_edit",
    )
    .await;
    assert_eq!(e["op_index"], 2, "{e:#}");
    assert_eq!(e["op"], "remove_node", "{e:#}");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("op 2 (remove_node)") && message.contains("still used"),
        "{message}"
    );
    let hint = e["error"]["hint"].as_str().unwrap();
    assert!(
        hint.contains("fix op 2 (remove_node)")
            && hint.contains("no op of this request was applied"),
        "{hint}"
    );

    // Nothing of it landed: same root hash and revision in the overview,
    // same text, no doc.
    let after = ok(&call(&alice, "program_overview", json!({})).await);
    assert_eq!(after["root_hash"], overview["root_hash"]);
    assert_eq!(after["revision"], overview["revision"]);
    let f = read(&alice, "demo::f").await;
    assert_eq!(f["text"], before_text);
    assert!(f.get("doc").is_none(), "{f:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_wait_leaves_the_queue_and_is_never_granted() {
    // The wait is 60 s and no progress tick comes: only the cancellation
    // can take bob out of the queue.
    let s = quiet_server().await;
    let alice = s.in_process("alice").await;
    let bob = http_agent(&s, "bob").await;
    ok(&acquire(&alice, "demo::f", "write").await);
    let before = program_state(&alice).await;
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(wait_call("demo::f", None)));
    let waiting = bob
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    eventually("bob to queue", async || {
        lock_queue(&alice, "demo::f").await.1 == ["bob"]
    })
    .await;

    // notifications/cancelled: the server drops bob's place in the queue.
    waiting
        .cancel(Some("no longer needed".into()))
        .await
        .unwrap();
    eventually("bob to leave the queue", async || {
        lock_queue(&alice, "demo::f").await.1.is_empty()
    })
    .await;

    // A release by the holder grants nobody: bob is not in line any more.
    let released = ok(&call(&alice, "release_locks", json!({})).await);
    assert_eq!(released["released"][0]["resource"], "demo::f");
    assert_eq!(lock_queue(&alice, "demo::f").await, (vec![], vec![]));
    assert!(my_locks(&bob).await.is_empty());
    assert_eq!(program_state(&alice).await, before);
    // Bob's session is unharmed: he can ask again and is granted.
    ok(&acquire(&bob, "demo::f", "write").await);
    assert_eq!(
        my_locks(&bob).await,
        vec![("demo::f".to_string(), "write".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_is_the_answer_when_the_waiting_agent_is_ended() {
    // An operator ends bob (as `cograph end-agent` does) while his call
    // waits: the call answers `cancelled`, and he leaves the queue.
    let s = quiet_server().await;
    let alice = s.in_process("alice").await;
    let bob = s.in_process("bob").await;
    let bob_id = agent_id(&bob).await;
    ok(&acquire(&alice, "demo::f", "write").await);
    let waiting = spawn_call(&bob, wait_call("demo::f", None));
    eventually("bob to queue", async || {
        lock_queue(&alice, "demo::f").await.1 == ["bob"]
    })
    .await;
    s.hub.end_agent(bob_id.parse().unwrap());
    let answer = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("bob's wait answers once his agent is ended")
        .unwrap()
        .expect("a tool result, not a protocol error");
    let e = err(&answer, "cancelled");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("session ended while waiting"),
        "{e:#}"
    );
    assert_eq!(
        lock_queue(&alice, "demo::f").await,
        (vec!["alice".to_string()], vec![])
    );
    ok(&call(&alice, "release_locks", json!({})).await);
    assert_eq!(lock_queue(&alice, "demo::f").await, (vec![], vec![]));
}
