//! MCP resources and notifications (issue 13), through real rmcp clients:
//! `resources/list` pages through every function, a function resource is
//! its text form (and reading it counts as a read), templates name the
//! function URI, unknown URIs are not found; a subscriber to a function
//! hears when it changes and not when another does, an agent subscribed to
//! `cograph://reads` hears when someone else changes what it read (not
//! when it does), a holder subscribed to `cograph://locks/mine` hears when
//! someone queues behind it and reads who and why, and nothing is pushed
//! without a subscription; the lock table resource keeps recent lock
//! events (grant, expiry, release); a 2026-07-28 client's `subscriptions/listen`
//! hears of a function's change and is refused the per-agent resources.

// The legacy resources/subscribe is what sessions speak; rmcp marks it
// deprecated in favour of subscriptions/listen, which is tested too.
#![allow(deprecated)]

mod common;

use std::time::Duration;

use common::*;
use rmcp::model::{ReadResourceRequestParams, ResourceContents, SubscribeRequestParams};
use serde_json::{Value, json};

async fn read_text(client: &Client, uri: &str) -> String {
    let result = client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .unwrap_or_else(|e| panic!("resources/read {uri}: {e}"));
    match &result.contents[0] {
        ResourceContents::TextResourceContents { text, .. } => text.clone(),
        other => panic!("{uri}: not text: {other:?}"),
    }
}

async fn read_json(client: &Client, uri: &str) -> Value {
    serde_json::from_str(&read_text(client, uri).await).unwrap()
}

async fn subscribe(client: &Client, uri: &str) {
    client
        .subscribe(SubscribeRequestParams::new(uri))
        .await
        .unwrap_or_else(|e| panic!("resources/subscribe {uri}: {e}"));
}

fn updates(client: &Client) -> Vec<String> {
    client.service().updated.lock().unwrap().clone()
}

/// Waits (boundedly) until `client` has heard of `uri`.
async fn hears(client: &Client, uri: &str) {
    eventually(&format!("a notification for {uri}"), async || {
        updates(client).iter().any(|u| u == uri)
    })
    .await;
}

/// Gives notifications that should not come a fair chance to arrive.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

fn set(function: &str, node: &str, op: &str) -> Value {
    json!({"ops": [{"set_op": {"function": function, "node": node, "op": op}}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_list_pages_through_every_function() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let ops: Vec<Value> = (0..250)
        .map(|i| {
            json!({"create_function": {"text": format!("fn many::f{i:03}() -> i64 {{\n  %0 = const {i}\n  %1 = return %0\n}}\n")}})
        })
        .collect();
    ok(&call(&alice, "propose_edit", json!({"ops": ops})).await);

    let first = alice.list_resources(None).await.unwrap();
    assert!(
        first.next_cursor.is_some(),
        "250 functions take several pages"
    );
    let all = alice.list_all_resources().await.unwrap();
    let uris: Vec<&str> = all.iter().map(|r| r.uri.as_str()).collect();
    let functions = uris
        .iter()
        .filter(|u| u.starts_with("cograph://function/"))
        .count();
    assert_eq!(functions, 252, "demo::f, demo::g and 250 more, once each");
    let mut unique = uris.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), uris.len(), "no resource twice");
    for fixed in [
        "cograph://docs/language",
        "cograph://locks",
        "cograph://locks/mine",
        "cograph://reads",
        "cograph://log",
    ] {
        assert!(uris.contains(&fixed), "{fixed} missing");
    }

    let templates = alice.list_all_resource_templates().await.unwrap();
    assert_eq!(templates.len(), 1);
    assert_eq!(templates[0].uri_template, "cograph://function/{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_resource_is_its_text_form_and_reading_it_is_a_read() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let text = read_text(&alice, "cograph://function/demo::f").await;
    let got = ok(&call(&alice, "get_function", json!({"function": "demo::g"})).await);
    assert_eq!(text, F, "the resource is the function's text form");
    assert!(got["text"].as_str().unwrap().starts_with("fn demo::g"));
    // No get_function of demo::f: the resource read is the base.
    ok(&call(&alice, "propose_edit", set("demo::f", "%1", "const 9")).await);

    let missing = alice
        .read_resource(ReadResourceRequestParams::new(
            "cograph://function/demo::ff",
        ))
        .await
        .unwrap_err();
    let rmcp::ServiceError::McpError(e) = missing else {
        panic!("{missing:?}")
    };
    assert_eq!(e.code, rmcp::model::ErrorCode::RESOURCE_NOT_FOUND, "{e:?}");
    assert!(
        e.message.contains("cograph://function/demo::f"),
        "{}",
        e.message
    );
    let unknown = alice
        .read_resource(ReadResourceRequestParams::new("file:///etc/passwd"))
        .await
        .unwrap_err();
    assert!(
        format!("{unknown:?}").contains("file:///etc/passwd"),
        "{unknown:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_hears_when_its_function_changes_and_only_then() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let bob = s.in_process("bob").await;
    let carol = s.in_process("carol").await;
    subscribe(&alice, "cograph://function/demo::f").await;
    subscribe(&alice, "cograph://log").await;

    read(&bob, "demo::g").await;
    ok(&call(&bob, "propose_edit", set("demo::g", "%0", "const 6")).await);
    hears(&alice, "cograph://log").await;
    settle().await;
    assert!(
        !updates(&alice).contains(&"cograph://function/demo::f".to_string()),
        "demo::g changed, not demo::f: {:?}",
        updates(&alice)
    );

    read(&bob, "demo::f").await;
    ok(&call(&bob, "propose_edit", set("demo::f", "%1", "const 7")).await);
    hears(&alice, "cograph://function/demo::f").await;
    let text = read_text(&alice, "cograph://function/demo::f").await;
    assert!(text.contains("%1 = const 7"), "{text}");

    // Carol subscribed to nothing and heard nothing.
    settle().await;
    assert!(updates(&carol).is_empty(), "{:?}", updates(&carol));
    // Unsubscribing stops it.
    alice
        .unsubscribe(rmcp::model::UnsubscribeRequestParams::new(
            "cograph://function/demo::f",
        ))
        .await
        .unwrap();
    let n = updates(&alice).len();
    ok(&call(&bob, "propose_edit", set("demo::f", "%1", "const 8")).await);
    hears(&alice, "cograph://log").await;
    settle().await;
    let after: Vec<String> = updates(&alice)[n..].to_vec();
    assert_eq!(after, ["cograph://log"], "only the log after unsubscribing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_hears_when_someone_else_changes_what_it_read() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let bob = s.in_process("bob").await;
    read(&alice, "demo::f").await;
    subscribe(&alice, "cograph://reads").await;

    // Her own commit moves her read along: nothing to hear.
    ok(&call(&alice, "propose_edit", set("demo::f", "%1", "const 2")).await);
    settle().await;
    assert!(updates(&alice).is_empty(), "{:?}", updates(&alice));
    assert_eq!(
        read_json(&alice, "cograph://reads").await["stale"],
        json!([])
    );

    read(&bob, "demo::f").await;
    ok(&call(&bob, "propose_edit", set("demo::f", "%1", "const 3")).await);
    hears(&alice, "cograph://reads").await;
    let stale = read_json(&alice, "cograph://reads").await;
    assert_eq!(stale["stale"][0]["function"], "demo::f", "{stale:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_hears_when_someone_queues_behind_it() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let bob = s.in_process("bob").await;
    ok(&call(
        &alice,
        "acquire_locks",
        json!({"locks": [{"path": "src/net/"}]}),
    )
    .await);
    subscribe(&alice, "cograph://locks/mine").await;

    let waiting = spawn_call(
        &bob,
        params(
            "acquire_locks",
            json!({"locks": [{"path": "src/net/tcp.rs"}], "wait_ms": 20_000, "purpose": "fix the retry loop"}),
        ),
    );
    hears(&alice, "cograph://locks/mine").await;
    let mine = read_json(&alice, "cograph://locks/mine").await;
    let behind = &mine["waiting_behind"][0];
    assert_eq!(behind["resource"], "path:src/net/tcp.rs", "{mine:#}");
    assert_eq!(behind["waiter"]["agent_name"], "bob", "{mine:#}");
    assert_eq!(
        behind["waiter"]["purpose"], "fix the retry loop",
        "{mine:#}"
    );
    assert_eq!(mine["held"][0]["resource"], "path:src/net/", "{mine:#}");

    ok(&call(&alice, "release_locks", json!({})).await);
    ok(&waiting.await.unwrap().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_to_what_cannot_be_followed_is_refused_clearly() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    for (uri, says) in [
        ("cograph://locks", "cannot be subscribed"),
        ("cograph://docs/language", "cannot be subscribed"),
        ("cograph://nothing", "no resource"),
    ] {
        let e = alice
            .subscribe(SubscribeRequestParams::new(uri))
            .await
            .unwrap_err();
        assert!(format!("{e:?}").contains(says), "{uri}: {e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_listener_hears_when_a_function_changes() {
    let s = Server::start().await;
    let listener = s.http_stateless().await;
    let bob = s.in_process("bob").await;
    let mut filter = rmcp::model::SubscriptionFilter::new();
    filter.resource_subscriptions = Some(vec![
        "cograph://function/demo::f".into(),
        "cograph://reads".into(),
    ]);
    let mut subscription = listener.listen(filter).await.unwrap();
    assert_eq!(
        subscription.acknowledged().resource_subscriptions,
        Some(vec!["cograph://function/demo::f".to_string()]),
        "a stateless listener has no reads of its own to follow"
    );
    read(&bob, "demo::f").await;
    ok(&call(&bob, "propose_edit", set("demo::f", "%1", "const 4")).await);
    let heard = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("a notification within 10 s")
        .unwrap();
    match heard {
        Some(rmcp::model::ServerNotification::ResourceUpdatedNotification(n)) => {
            assert_eq!(n.params.uri, "cograph://function/demo::f");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_table_resource_keeps_the_recent_lock_events() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let bob = s.in_process("bob").await;
    ok(&acquire_with(&alice, "demo::f", "write", json!({"ttl_ms": 200})).await);
    ok(&acquire(&bob, "demo::g", "write").await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Bob's request finds alice's lease lapsed: it expires, then bob gets it.
    ok(&acquire(&bob, "demo::f", "write").await);
    ok(&call(&bob, "release_locks", json!({"resources": ["demo::g"]})).await);

    let table = read_json(&alice, "cograph://locks").await;
    let events: Vec<(String, String, String)> = table["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["agent_name"].as_str().unwrap().to_string(),
                e["resource"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("granted", "alice", "demo::f"),
        ("granted", "bob", "demo::g"),
        ("expired", "alice", "demo::f"),
        ("granted", "bob", "demo::f"),
    ];
    let got: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    assert_eq!(&got[..4], &want, "{table:#}");
    assert!(got.contains(&("released", "bob", "demo::g")), "{table:#}");
    let seqs: Vec<u64> = table["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_with_an_http_session_hears_when_its_function_changes() {
    let s = Server::start().await;
    let alice = s.http_session().await;
    let bob = s.http_session().await;
    subscribe(&alice, "cograph://function/demo::f").await;
    read(&bob, "demo::f").await;
    ok(&call(&bob, "propose_edit", set("demo::f", "%1", "const 7")).await);
    hears(&alice, "cograph://function/demo::f").await;
    assert!(
        updates(&bob).is_empty(),
        "bob subscribed to nothing: {:?}",
        updates(&bob)
    );
}
