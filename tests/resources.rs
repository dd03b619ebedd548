//! Locks on every kind of resource through the MCP tools (issue 12):
//! repository paths (a directory covers what is below it, a sibling with a
//! common prefix is not below it), modules (covering their functions and
//! refusing others' edits to them), named resources, semaphores (permits
//! within a capacity fixed by first use), mixed batches that are all or
//! nothing, a deadlock through a directory and a semaphore, fencing tokens
//! anyone can check, lock_status filters, and clear refusals of bad names.

mod common;

use common::*;
use serde_json::{Value, json};

async fn lock(client: &Client, locks: Value) -> rmcp::model::CallToolResult {
    call(client, "acquire_locks", json!({ "locks": locks })).await
}

async fn yours(client: &Client) -> Vec<String> {
    let s = ok(&call(client, "lock_status", json!({})).await);
    s["yours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["resource"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_lock_covers_the_files_below_it_and_nothing_beside_it() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let bob = s.in_process("bob").await;
    let held = ok(&lock(&alice, json!([{"path": "src/net/", "mode": "write"}])).await);
    assert_eq!(held["granted"][0]["resource"], "path:src/net/");
    assert_eq!(held["granted"][0]["mode"], "write");

    let denied = err(
        &lock(&bob, json!([{"path": "src/net/tcp.rs", "mode": "read"}])).await,
        "lock_denied",
    );
    let b = &denied["blocked"][0];
    assert_eq!(b["resource"], "path:src/net/tcp.rs", "{denied:#}");
    assert_eq!(b["holders"][0]["agent_name"], "alice");
    assert_eq!(b["holders"][0]["resource"], "path:src/net/", "{denied:#}");
    assert!(b["holders"][0].get("fencing_token").is_none());

    // A sibling that shares a prefix is not below the directory.
    ok(&lock(&bob, json!([{"path": "src/netx/a.rs"}])).await);
    // `src/net` without its slash may be the directory itself: it meets
    // the directory's lock (overlap is never missed).
    err(
        &lock(&bob, json!([{"path": "src/net"}])).await,
        "lock_denied",
    );
    assert_eq!(yours(&bob).await, vec!["path:src/netx/a.rs"]);

    // The directory above alice's lock is refused too, naming what lies below.
    let denied = err(&lock(&bob, json!([{"path": "src/"}])).await, "lock_denied");
    let holder = &denied["blocked"][0]["holders"][0];
    assert_eq!(holder["agent_name"], "alice", "{denied:#}");
    assert_eq!(holder["below"], true, "{denied:#}");

    ok(&call(
        &alice,
        "release_locks",
        json!({"resources": ["path:src/net/"]}),
    )
    .await);
    ok(&lock(&bob, json!([{"path": "src/net/tcp.rs"}])).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_lock_covers_its_functions_and_refuses_others_edits() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let bob = s.in_process("bob").await;
    read(&bob, "demo::f").await;
    ok(&lock(&alice, json!([{"module": "demo", "mode": "write"}])).await);

    let denied = err(
        &lock(&bob, json!([{"function": "demo::f", "mode": "read"}])).await,
        "lock_denied",
    );
    assert_eq!(denied["blocked"][0]["resource"], "demo::f", "{denied:#}");
    assert_eq!(
        denied["blocked"][0]["holders"][0]["resource"], "module:demo",
        "{denied:#}"
    );

    let set = json!({"ops": [{"set_op": {"function": "demo::f", "node": "%1", "op": "const 5"}}]});
    let refused_edit = refused(&bob, "propose_edit", set.clone(), "lock_denied").await;
    assert_eq!(refused_edit["blocked"][0]["resource"], "demo::f");

    // Creating a function in the module, or renaming one out of it, is a
    // structure change inside it: refused too.
    let create = json!({"ops": [{"create_function": {"text": "fn demo::new() -> i64 {\n  %0 = const 1\n  %1 = return %0\n}\n"}}]});
    refused(&bob, "propose_edit", create, "lock_denied").await;
    read(&bob, "demo::g").await;
    let rename =
        json!({"ops": [{"rename_function": {"function": "demo::g", "new_name": "other::g"}}]});
    refused(&bob, "propose_edit", rename, "lock_denied").await;

    // The holder of the module edits its functions.
    read(&alice, "demo::f").await;
    ok(&call(&alice, "propose_edit", set).await);
    ok(&call(&alice, "release_locks", json!({})).await);
    ok(&lock(&bob, json!([{"function": "demo::f", "mode": "write"}])).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_semaphore_grants_permits_within_its_capacity() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let bob = s.in_process("bob").await;
    let carol = s.in_process("carol").await;
    let held = ok(&lock(
        &alice,
        json!([{"semaphore": "gpu", "permits": 2, "capacity": 3}]),
    )
    .await);
    assert_eq!(held["granted"][0]["resource"], "semaphore:gpu");
    assert_eq!(held["granted"][0]["permits"], 2);
    assert!(held["granted"][0].get("mode").is_none(), "{held:#}");

    let denied = err(
        &lock(&bob, json!([{"semaphore": "gpu", "permits": 2}])).await,
        "lock_denied",
    );
    let b = &denied["blocked"][0];
    assert_eq!(
        (b["capacity"].as_u64(), b["in_use"].as_u64()),
        (Some(3), Some(2)),
        "{denied:#}"
    );
    assert_eq!(b["holders"][0]["permits"], 2);
    // One permit is left, and the capacity need not be repeated.
    ok(&lock(&bob, json!([{"semaphore": "gpu"}])).await);

    let status = ok(&call(&carol, "lock_status", json!({"kind": "semaphore"})).await);
    let gpu = &status["locks"][0];
    assert_eq!(gpu["resource"], "semaphore:gpu", "{status:#}");
    assert_eq!(
        (gpu["capacity"].as_u64(), gpu["in_use"].as_u64()),
        (Some(3), Some(3))
    );

    let m = invalid_params(
        &carol,
        "acquire_locks",
        json!({"locks": [{"semaphore": "gpu", "capacity": 4}]}),
    )
    .await;
    assert!(m.contains("capacity") && m.contains('3'), "{m}");
    let m = invalid_params(
        &carol,
        "acquire_locks",
        json!({"locks": [{"semaphore": "gpu", "mode": "read"}]}),
    )
    .await;
    assert!(m.contains("locks[0].mode") && m.contains("permits"), "{m}");
    let m = invalid_params(
        &carol,
        "acquire_locks",
        json!({"locks": [{"semaphore": "gpu", "permits": 4}]}),
    )
    .await;
    assert!(m.contains('4') && m.contains('3'), "{m}");
    assert!(yours(&carol).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_batch_is_all_or_nothing() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let bob = s.in_process("bob").await;
    ok(&lock(&alice, json!([{"named": "deploy:staging"}])).await);
    let denied = err(
        &lock(
            &bob,
            json!([
                {"function": "demo::g", "mode": "write"},
                {"path": "docs/"},
                {"semaphore": "builds", "capacity": 2},
                {"named": "deploy:staging", "mode": "read"},
            ]),
        )
        .await,
        "lock_denied",
    );
    assert_eq!(denied["blocked"].as_array().unwrap().len(), 1, "{denied:#}");
    assert_eq!(denied["blocked"][0]["resource"], "named:deploy:staging");
    assert!(
        yours(&bob).await.is_empty(),
        "a failed request holds nothing"
    );
    ok(&call(&alice, "release_locks", json!({})).await);
    let granted = ok(&lock(
        &bob,
        json!([
            {"function": "demo::g", "mode": "write"},
            {"path": "docs/"},
            {"semaphore": "builds", "capacity": 2},
            {"named": "deploy:staging", "mode": "read"},
        ]),
    )
    .await);
    assert_eq!(
        granted["granted"].as_array().unwrap().len(),
        4,
        "{granted:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_through_a_directory_and_a_semaphore_is_refused() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let bob = s.in_process("bob").await;
    ok(&lock(&alice, json!([{"path": "src/"}])).await);
    ok(&lock(&bob, json!([{"semaphore": "slot", "capacity": 1}])).await);
    let waiting = spawn_call(
        &alice,
        params(
            "acquire_locks",
            json!({"locks": [{"semaphore": "slot"}], "wait_ms": 20_000}),
        ),
    );
    eventually("alice queues for the slot", async || {
        let s = ok(&call(&bob, "lock_status", json!({"prefix": "slot"})).await);
        s["locks"][0]["waiters"]
            .as_array()
            .is_some_and(|w| !w.is_empty())
    })
    .await;
    let refused = err(
        &call(
            &bob,
            "acquire_locks",
            json!({"locks": [{"path": "src/lib.rs"}], "wait_ms": 20_000}),
        )
        .await,
        "deadlock",
    );
    let cycle: Vec<&str> = refused["cycle"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        cycle.contains(&"alice") && cycle.contains(&"bob"),
        "{refused:#}"
    );
    // Nothing was revoked: bob still holds the slot; releasing it grants alice.
    assert_eq!(yours(&bob).await, vec!["semaphore:slot"]);
    ok(&call(&bob, "release_locks", json!({})).await);
    ok(&waiting.await.unwrap().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anyone_can_check_a_fencing_token() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let deployer = s.in_process("deploy-step").await;
    let held = ok(&lock(&alice, json!([{"named": "deploy:staging"}])).await);
    let token = held["fencing_token"].as_u64().unwrap();
    let check = ok(&call(&deployer, "lock_status", json!({"token": token})).await);
    let t = &check["token"];
    assert_eq!(t["live"], true, "{check:#}");
    assert_eq!(t["resource"], "named:deploy:staging");
    assert!(t["holder"].as_str().unwrap().starts_with("alice ("), "{t}");
    assert!(t["expires_at"].is_string());
    ok(&call(
        &alice,
        "release_locks",
        json!({"resources": ["named:deploy:staging"]}),
    )
    .await);
    let check = ok(&call(&deployer, "lock_status", json!({"token": token})).await);
    assert_eq!(check["token"]["live"], false, "{check:#}");
    assert!(check["token"].get("resource").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_status_filters_by_kind_and_prefix() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    ok(&lock(
        &alice,
        json!([
            {"path": "src/net/"},
            {"path": "docs/a.md"},
            {"named": "deploy"},
            {"function": "demo::f"},
        ]),
    )
    .await);
    let names = |v: &Value| -> Vec<String> {
        v["locks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["resource"].as_str().unwrap().to_string())
            .collect()
    };
    let paths = ok(&call(&alice, "lock_status", json!({"kind": "path"})).await);
    assert_eq!(names(&paths), vec!["path:docs/a.md", "path:src/net/"]);
    let src = ok(&call(&alice, "lock_status", json!({"prefix": "src/"})).await);
    assert_eq!(names(&src), vec!["path:src/net/"]);
    let demo = ok(&call(&alice, "lock_status", json!({"prefix": "demo::"})).await);
    assert_eq!(names(&demo), vec!["demo::f"]);
    let one = ok(&call(&alice, "lock_status", json!({"function": "demo::f"})).await);
    assert_eq!(names(&one), vec!["demo::f"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_resource_names_are_refused_naming_what_is_wrong() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let before = program_state(&alice).await;
    for (target, field, says) in [
        (json!({"path": "../etc/passwd"}), "locks[0].path", ".."),
        (json!({"path": "/etc/passwd"}), "locks[0].path", "absolute"),
        (
            json!({"path": "src//a.rs"}),
            "locks[0].path",
            "empty segment",
        ),
        (json!({"path": ""}), "locks[0].path", "empty"),
        (json!({"module": "a b"}), "locks[0].module", "identifier"),
        (json!({"named": ""}), "locks[0].named", "empty"),
        (
            json!({"path": "a", "named": "b"}),
            "locks[0]",
            "exactly one",
        ),
        (json!({"mode": "write"}), "locks[0]", "none was given"),
        (
            json!({"path": "a", "permits": 2}),
            "locks[0].permits",
            "only a semaphore",
        ),
    ] {
        let m = invalid_params(&alice, "acquire_locks", json!({ "locks": [target] })).await;
        assert!(m.contains(field) && m.contains(says), "{target}: {m}");
    }
    let m = invalid_params(&alice, "release_locks", json!({"resources": ["path:../x"]})).await;
    assert!(m.contains("resources[0]") && m.contains(".."), "{m}");
    assert!(yours(&alice).await.is_empty());
    assert_eq!(program_state(&alice).await, before);
}
