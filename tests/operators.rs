//! The operator's way out when a client vanished without ending its
//! session: `cograph agents`, `cograph end-agent` and `cograph break-lock`
//! against a running `cograph serve` (the built binary, agents over HTTP),
//! over the hub's admin socket. Each action takes effect at once (a waiter
//! is granted while the command runs), a broken lock's token stops
//! authorising, and each action is recorded: `cograph log` and `history`
//! show it. Bad requests get clear errors and change nothing.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::served::{Served, cli};
use common::{
    Client, F, acquire, call, err, eventually, lock_queue, ok, read, refused, spawn_call, wait_call,
};
use serde_json::json;

/// A named agent with a protocol session.
async fn agent(s: &Served, name: &str) -> Client {
    let c = s.session_client().await;
    ok(&call(&c, "register_agent", json!({"name": name})).await);
    c
}

/// Alice creates `demo::f` and holds its write lock; Bob waits for it.
async fn alice_holds_bob_waits(
    s: &Served,
) -> (
    Client,
    Client,
    tokio::task::JoinHandle<Result<rmcp::model::CallToolResult, rmcp::ServiceError>>,
) {
    let alice = agent(s, "alice").await;
    ok(&call(
        &alice,
        "propose_edit",
        json!({"ops": [{"create_function": {"text": F}}]}),
    )
    .await);
    ok(&acquire(&alice, "demo::f", "write").await);
    let bob = agent(s, "bob").await;
    let waiting = spawn_call(&bob, wait_call("demo::f", None));
    eventually("bob to queue", async || {
        lock_queue(&alice, "demo::f").await.1 == ["bob"]
    })
    .await;
    (alice, bob, waiting)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_lists_who_holds_and_waits_and_end_agent_grants_the_waiter() {
    let s = Served::start(&[]);
    let (alice, _bob, waiting) = alice_holds_bob_waits(&s).await;
    let socket = s.data().join("admin.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "admin.sock is for its owner only");

    let listed = s.cli(&["agents"]);
    assert_eq!(listed.code, Some(0), "{listed:?}");
    let out = &listed.stdout;
    assert!(out.contains("2 agents connected"), "{out}");
    assert!(out.contains("alice") && out.contains("bob"), "{out}");
    assert!(out.contains("[http_session]"), "{out}");
    assert!(out.contains("holds: demo::f (write)"), "{out}");
    assert!(out.contains("waits for: demo::f (write)"), "{out}");
    assert!(out.contains("last active"), "{out}");

    let ended = s.cli(&["end-agent", "alice"]);
    assert_eq!(ended.code, Some(0), "{ended:?}");
    assert!(ended.stdout.contains("end_agent alice"), "{ended:?}");
    assert!(ended.stdout.contains("demo::f (write"), "{ended:?}");
    // Bob is granted at once.
    let granted = waiting.await.unwrap().unwrap();
    ok(&granted);
    // Alice's session is still open, but her agent is gone.
    let after = s.cli(&["agents"]);
    assert!(after.stdout.contains("1 agents connected"), "{after:?}");
    assert!(!after.stdout.contains("alice"), "{after:?}");
    drop(alice);

    let log = s.cli(&["log"]);
    assert_eq!(log.code, Some(0), "{log:?}");
    assert!(log.stdout.contains("end_agent by uid"), "{log:?}");
    assert!(log.stdout.contains("alice"), "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_lock_grants_the_waiter_and_the_broken_token_stops_authorising() {
    let s = Served::start(&[]);
    let (alice, bob, waiting) = alice_holds_bob_waits(&s).await;
    read(&alice, "demo::f").await;

    let broken = s.cli(&["break-lock", "demo::f"]);
    assert_eq!(broken.code, Some(0), "{broken:?}");
    assert!(broken.stdout.contains("break_lock alice"), "{broken:?}");
    assert!(broken.stdout.contains("on demo::f"), "{broken:?}");
    ok(&waiting.await.unwrap().unwrap());

    // Bob, now the holder, commits; Alice's edit relied on her broken
    // lease and is refused.
    read(&bob, "demo::f").await;
    let set = |value: i64| json!({"ops": [{"set_op": {"function": "demo::f", "node": "%1", "op": format!("const {value}")}}]});
    ok(&call(&bob, "propose_edit", set(10)).await);
    ok(&call(&bob, "release_locks", json!({})).await);
    let refusal = call(&alice, "propose_edit", set(20)).await;
    err(&refusal, "lock_expired");

    let history = ok(&call(&bob, "history", json!({"function": "demo::f"})).await);
    let events = history["operator_events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{history:#}");
    let event = events[0].as_str().unwrap();
    assert!(
        event.contains("break_lock by uid")
            && event.contains(": alice (")
            && event.contains(" on demo::f: ")
            && event.contains("write lock, token"),
        "{event}"
    );

    let log = s.cli(&["log"]);
    assert!(log.stdout.contains("break_lock by uid"), "{log:?}");
    assert!(log.stdout.contains("on demo::f"), "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_refuse_clearly_and_change_nothing() {
    let nowhere = tempfile::tempdir().unwrap();
    let no_hub = cli(&["end-agent", "alice"], nowhere.path());
    assert_eq!(no_hub.code, Some(1), "{no_hub:?}");
    assert!(
        no_hub.stderr.contains("no hub is running for") && no_hub.stderr.contains("nothing to end"),
        "{no_hub:?}"
    );

    let s = Served::start(&[]);
    let alice = agent(&s, "alice").await;
    ok(&call(
        &alice,
        "propose_edit",
        json!({"ops": [{"create_function": {"text": F}}]}),
    )
    .await);
    let _twin1 = agent(&s, "twin").await;
    let _twin2 = agent(&s, "twin").await;

    let unknown = s.cli(&["end-agent", "zed"]);
    assert_eq!(unknown.code, Some(1), "{unknown:?}");
    assert!(
        unknown.stderr.contains("no agent `zed` is connected"),
        "{unknown:?}"
    );
    assert!(
        unknown.stderr.contains("alice (ag_"),
        "lists who is: {unknown:?}"
    );

    let ambiguous = s.cli(&["end-agent", "twin"]);
    assert_eq!(ambiguous.code, Some(1), "{ambiguous:?}");
    assert!(
        ambiguous.stderr.contains("2 agents are named `twin`"),
        "{ambiguous:?}"
    );
    assert_eq!(ambiguous.stderr.matches("ag_").count(), 2, "{ambiguous:?}");

    let unlocked = s.cli(&["break-lock", "demo::f"]);
    assert_eq!(unlocked.code, Some(1), "{unlocked:?}");
    assert!(
        unlocked.stderr.contains("nobody holds a lock on `demo::f`"),
        "{unlocked:?}"
    );

    let missing = s.cli(&["break-lock", "demo::nope"]);
    assert_eq!(missing.code, Some(1), "{missing:?}");
    assert!(
        missing.stderr.contains("no function `demo::nope`"),
        "{missing:?}"
    );

    // Nothing was ended or recorded.
    let listed = s.cli(&["agents"]);
    assert!(listed.stdout.contains("3 agents connected"), "{listed:?}");
    ok(&acquire(&alice, "demo::f", "write").await);
    let history = ok(&call(&alice, "history", json!({})).await);
    assert!(history.get("operator_events").is_none(), "{history:#}");
    refused(
        &alice,
        "acquire_locks",
        json!({"locks": [{"function": "demo::nope", "mode": "write"}]}),
        "not_found",
    )
    .await;
}

/// Alice holds the locks `held` names (`acquire_locks` targets); Bob
/// waits up to 60 s for `waited` (one target), queued once this returns.
async fn alice_holds_bob_waits_for(
    s: &Served,
    held: serde_json::Value,
    waited: serde_json::Value,
) -> (
    Client,
    Client,
    tokio::task::JoinHandle<Result<rmcp::model::CallToolResult, rmcp::ServiceError>>,
) {
    let alice = agent(s, "alice").await;
    let bob = agent(s, "bob").await;
    ok(&call(&alice, "acquire_locks", json!({ "locks": held })).await);
    let params = common::params(
        "acquire_locks",
        json!({"locks": [waited], "wait_ms": 60000}),
    );
    let waiting = spawn_call(&bob, params);
    eventually("bob to queue", async || {
        let status = ok(&call(&alice, "lock_status", json!({})).await);
        status["locks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| !l["waiters"].as_array().unwrap().is_empty())
    })
    .await;
    (alice, bob, waiting)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_lock_takes_any_kind_of_resource_and_records_it() {
    let s = Served::start(&[]);
    // Bob waits for a file below Alice's directory.
    let (alice, _bob, waiting) = alice_holds_bob_waits_for(
        &s,
        json!([{"path": "src/net/"}, {"semaphore": "gpu", "permits": 2, "capacity": 2}]),
        json!({"path": "src/net/tcp.rs"}),
    )
    .await;

    // Locks below or beside it are not it.
    let below = s.cli(&["break-lock", "path:src/net/tcp.rs"]);
    assert_eq!(below.code, Some(1), "{below:?}");
    assert!(
        below
            .stderr
            .contains("nobody holds a lock on `path:src/net/tcp.rs`"),
        "{below:?}"
    );

    let broken = s.cli(&["break-lock", "path:src/net/"]);
    assert_eq!(broken.code, Some(0), "{broken:?}");
    assert!(
        broken.stdout.contains("break_lock alice") && broken.stdout.contains("on path:src/net/"),
        "{broken:?}"
    );
    let granted = ok(&waiting.await.unwrap().unwrap());
    assert_eq!(granted["granted"][0]["resource"], "path:src/net/tcp.rs");

    let permits = s.cli(&["break-lock", "semaphore:gpu"]);
    assert_eq!(permits.code, Some(0), "{permits:?}");
    assert!(
        permits
            .stdout
            .contains("on semaphore:gpu: 2 permits, token"),
        "{permits:?}"
    );
    let left = ok(&call(&alice, "lock_status", json!({})).await);
    assert_eq!(left["yours"], json!([]), "{left:#}");

    for (given, says) in [
        ("fib", "`fib` names no resource"),
        ("path:/etc", "is absolute"),
        ("named:nobody", "nobody holds a lock on `named:nobody`"),
    ] {
        let refused = s.cli(&["break-lock", given]);
        assert_eq!(refused.code, Some(1), "{refused:?}");
        assert!(refused.stderr.contains(says), "{given}: {refused:?}");
    }

    let log = s.cli(&["log"]);
    assert!(
        log.stdout.contains("break_lock by uid")
            && log.stdout.contains("on path:src/net/: write lock, token"),
        "{log:?}"
    );
    assert!(log.stdout.contains("on semaphore:gpu"), "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_capacity_grants_waiters_and_is_refused_below_the_permits_in_use() {
    let s = Served::start(&[]);
    let (_alice, bob, waiting) = alice_holds_bob_waits_for(
        &s,
        json!([{"semaphore": "gpu", "permits": 2, "capacity": 2}]),
        json!({"semaphore": "gpu"}),
    )
    .await;

    let below = s.cli(&["set-capacity", "gpu", "1"]);
    assert_eq!(below.code, Some(1), "{below:?}");
    assert!(
        below.stderr.contains(
            "semaphore:gpu has 2 permits in use; break those locks before lowering it to 1"
        ),
        "{below:?}"
    );
    let zero = s.cli(&["set-capacity", "gpu", "0"]);
    assert_eq!(zero.code, Some(1), "{zero:?}");
    assert!(zero.stderr.contains("at least 1"), "{zero:?}");

    let raised = s.cli(&["set-capacity", "semaphore:gpu", "3"]);
    assert_eq!(raised.code, Some(0), "{raised:?}");
    assert_eq!(raised.stdout, "semaphore:gpu has capacity 3 (was 2)\n");
    let granted = ok(&waiting.await.unwrap().unwrap());
    assert_eq!(granted["granted"][0]["permits"], 1);

    // A semaphore nobody used yet gets its capacity from the operator:
    // a request needs none, and one that disagrees is refused.
    let fresh = s.cli(&["set-capacity", "api:github", "5000"]);
    assert_eq!(
        fresh.stdout, "semaphore:api:github has capacity 5000\n",
        "{fresh:?}"
    );
    let taken = ok(&call(
        &bob,
        "acquire_locks",
        json!({"locks": [{"semaphore": "api:github", "permits": 10}]}),
    )
    .await);
    assert_eq!(taken["granted"][0]["permits"], 10);
    let status = ok(&call(&bob, "lock_status", json!({"prefix": "api"})).await);
    assert_eq!(
        (
            &status["locks"][0]["capacity"],
            &status["locks"][0]["in_use"]
        ),
        (&json!(5000), &json!(10)),
        "{status:#}"
    );
}
