//! A waiting `acquire_locks` whose client vanished: the regression where a
//! legacy-session waiter whose connection dropped stayed queued, was
//! granted on release, and then held a lock nobody heard about for its
//! whole lease. A dropped connection is not a cancellation by itself (the
//! client may resume the stream with `Last-Event-ID`), so the request is
//! abandoned only when its stream stays closed, unresumed, past the grace
//! period (`--stream-grace-ms`, a hidden flag, shortened here); a stream
//! resumed within it still gets its grant.
//!
//! The waiter is a raw HTTP/1.1 client on its own TCP connection, so that
//! dropping the connection is exactly what a killed client does.

mod common;

use std::time::Duration;

use common::served::Served;
use common::{acquire, call, eventually, lock_queue, ok};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PROTOCOL: &str = "2025-06-18";

/// A POST to /mcp on a fresh connection; returns the connection, to read
/// the response from.
async fn post(addr: &str, session: Option<&str>, body: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let session = session
        .map(|s| format!("Mcp-Session-Id: {s}\r\nMCP-Protocol-Version: {PROTOCOL}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{session}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

/// Reads from `stream` until what was read contains `needle`; returns it.
async fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no `{needle}` in {}", String::from_utf8_lossy(&seen)))
            .unwrap();
        assert!(
            n > 0,
            "closed before `{needle}`: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// Opens a protocol session by hand and names its agent; returns the
/// session id.
async fn raw_session(addr: &str, name: &str) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL, "capabilities": {},
        "clientInfo": {"name": name, "version": "1"}}});
    let mut s = post(addr, None, &init.to_string()).await;
    let head = read_until(&mut s, "\"result\"").await;
    let session = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("mcp-session-id")
                .then(|| v.trim().to_string())
        })
        .expect("a session id");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let mut s = post(addr, Some(&session), &initialized.to_string()).await;
    read_until(&mut s, "HTTP/1.1 202").await;
    session
}

/// Starts a waiting acquire of `demo::f` on its own connection and returns
/// the connection with the id of the stream's first event.
async fn raw_wait(addr: &str, session: &str) -> (TcpStream, String) {
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "acquire_locks",
        "arguments": {"locks": [{"function": "demo::f", "mode": "write"}], "wait_ms": 60000}}});
    let mut s = post(addr, Some(session), &call.to_string()).await;
    let seen = read_until(&mut s, "id: ").await;
    let rest = &seen[seen.find("id: ").unwrap() + 4..];
    let event_id = rest.lines().next().unwrap().trim().to_string();
    (s, event_id)
}

async fn holder_and_function(s: &Served) -> common::Client {
    let alice = s.session_client().await;
    ok(&call(&alice, "register_agent", json!({"name": "alice"})).await);
    ok(&call(
        &alice,
        "propose_edit",
        json!({"ops": [{"create_function": {"text": common::F}}]}),
    )
    .await);
    ok(&acquire(&alice, "demo::f", "write").await);
    alice
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_whose_connection_dropped_leaves_the_queue_and_is_never_granted() {
    let s = Served::start(&["--stream-grace-ms", "500"]);
    let alice = holder_and_function(&s).await;
    let session = raw_session(&s.addr, "bob").await;
    let (connection, _) = raw_wait(&s.addr, &session).await;
    eventually("bob to queue", async || {
        lock_queue(&alice, "demo::f").await.1 == ["bob"]
    })
    .await;
    drop(connection);
    // Past the grace, nobody resumed: bob leaves the queue.
    eventually("bob to leave the queue", async || {
        lock_queue(&alice, "demo::f").await.1.is_empty()
    })
    .await;
    ok(&call(&alice, "release_locks", json!({})).await);
    assert_eq!(lock_queue(&alice, "demo::f").await, (vec![], vec![]));
    let carol = s.session_client().await;
    ok(&call(&carol, "register_agent", json!({"name": "carol"})).await);
    ok(&acquire(&carol, "demo::f", "write").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_made_while_the_stream_is_closed_is_given_back() {
    // A long grace: the grant lands while bob's stream is closed, and is
    // given back when the grace runs out undelivered.
    let s = Served::start(&["--stream-grace-ms", "1500"]);
    let alice = holder_and_function(&s).await;
    let session = raw_session(&s.addr, "bob").await;
    let (connection, _) = raw_wait(&s.addr, &session).await;
    eventually("bob to queue", async || {
        lock_queue(&alice, "demo::f").await.1 == ["bob"]
    })
    .await;
    drop(connection);
    ok(&call(&alice, "release_locks", json!({})).await);
    // Bob may hold it for a moment; once the grace is over, nobody does.
    eventually("bob's undelivered grant to be given back", async || {
        lock_queue(&alice, "demo::f").await == (vec![], vec![])
    })
    .await;
    let carol = s.session_client().await;
    ok(&call(&carol, "register_agent", json!({"name": "carol"})).await);
    ok(&acquire(&carol, "demo::f", "write").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumed_within_the_grace_still_gets_its_grant() {
    let s = Served::start(&["--stream-grace-ms", "3000"]);
    let alice = holder_and_function(&s).await;
    let session = raw_session(&s.addr, "bob").await;
    let (connection, event_id) = raw_wait(&s.addr, &session).await;
    eventually("bob to queue", async || {
        lock_queue(&alice, "demo::f").await.1 == ["bob"]
    })
    .await;
    drop(connection);
    // Bob comes back at once with Last-Event-ID.
    let mut resumed = TcpStream::connect(&s.addr).await.unwrap();
    let get = format!(
        "GET /mcp HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {session}\r\nMCP-Protocol-Version: {PROTOCOL}\r\nLast-Event-ID: {event_id}\r\n\r\n",
        s.addr
    );
    resumed.write_all(get.as_bytes()).await.unwrap();
    read_until(&mut resumed, "HTTP/1.1 200").await;
    ok(&call(&alice, "release_locks", json!({})).await);
    let answer = read_until(&mut resumed, "fencing_token").await;
    assert!(answer.contains("\"granted\""), "{answer}");
    // Well past the grace, bob still holds what he was told he holds.
    tokio::time::sleep(Duration::from_millis(4000)).await;
    assert_eq!(lock_queue(&alice, "demo::f").await.0, ["bob"]);
}
