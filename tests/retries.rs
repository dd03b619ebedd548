//! Safe retries (issue 11, section 4): MCP 2026-07-28 streams do not resume,
//! so a client that loses an answer re-sends the request. Before
//! `request_id`, a retried `propose_edit` whose first attempt had committed
//! applied its ops a second time (its base had moved to its own commit, so
//! nothing conflicted: an `add_node` sent twice added two nodes). These
//! tests lose answers in the ways clients do (a dropped connection, a
//! killed server) and check that each edit is committed exactly once.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An op that changes `demo::g` every time it is applied: a second
/// application would show as a second new node.
fn add_node(request_id: &str) -> Value {
    json!({
        "ops": [{"add_node": {"function": "demo::g", "op": "const 7"}}],
        "request_id": request_id,
    })
}

fn n_nodes(s: &Server) -> usize {
    let program = s.hub.snapshot();
    let id = program
        .id_of(&cograph::graph::QualifiedName::new("demo::g").unwrap())
        .unwrap();
    program.get(id).unwrap().function.nodes.len()
}

/// Commits logged under `request_id`.
fn commits_under(dir: &Path, request_id: &str) -> usize {
    cograph::store::StoreReader::open(dir)
        .unwrap()
        .all_commits()
        .unwrap()
        .iter()
        .filter(|c| c.request.as_ref().is_some_and(|t| t.id == request_id))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_propose_edit_commits_once_and_answers_with_the_first_commit() {
    let s = Server::start().await;
    let a = s.in_process("a").await;
    read(&a, "demo::g").await;
    let before = n_nodes(&s);
    let first = ok(&call(&a, "propose_edit", add_node("edit-1")).await);
    assert_eq!(first["status"], "committed");
    assert!(first.get("repeated").is_none(), "{first:#}");
    let again = call(&a, "propose_edit", add_node("edit-1")).await;
    let repeat = ok(&again);
    assert_eq!(repeat["repeated"], true, "{repeat:#}");
    assert_eq!(repeat["revision"], first["revision"]);
    assert_eq!(
        repeat["functions"][0]["after"],
        first["functions"][0]["after"]
    );
    assert!(text(&again).contains("repeat"), "{}", text(&again));
    assert_eq!(n_nodes(&s), before + 1, "the op was applied once");
    assert_eq!(commits_under(s.dir.path(), "edit-1"), 1);

    // A new id is a new edit.
    read(&a, "demo::g").await;
    ok(&call(&a, "propose_edit", add_node("edit-2")).await);
    assert_eq!(n_nodes(&s), before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_reused_for_another_edit_is_refused_and_changes_nothing() {
    let s = Server::start().await;
    let a = s.in_process("a").await;
    read(&a, "demo::g").await;
    ok(&call(&a, "propose_edit", add_node("edit-1")).await);
    let (revision, root) = program_state(&a).await;
    let other = json!({
        "ops": [{"set_doc": {"function": "demo::g", "doc": "another edit"}}],
        "request_id": "edit-1",
    });
    let r = try_call(&a, "propose_edit", other).await;
    let message = match r {
        Ok(result) => {
            assert_eq!(result.is_error, Some(true), "{result:?}");
            text(&result)
        }
        Err(e) => e.to_string(),
    };
    assert!(
        message.contains("request_id") && message.contains("different edit"),
        "{message}"
    );
    assert_eq!(program_state(&a).await, (revision, root));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_request_ids_are_refused_by_name() {
    let s = Server::start().await;
    let a = s.in_process("a").await;
    read(&a, "demo::g").await;
    for (id, why) in [("", "empty"), (&"x".repeat(201)[..], "at most 200")] {
        let r = try_call(&a, "propose_edit", add_node(id)).await;
        let message = match r {
            Ok(result) => text(&result),
            Err(e) => e.to_string(),
        };
        assert!(
            message.contains("request_id") && message.contains(why),
            "{message}"
        );
    }
}

/// One POST to `/mcp` over a fresh connection: the request is written
/// whole; then, if `read`, the answer is read to its end (`Connection:
/// close`), else the connection is closed at once without reading a byte.
async fn post(
    addr: std::net::SocketAddr,
    headers: &[(String, String)],
    body: &Value,
    read: bool,
) -> Posted {
    let body = serde_json::to_vec(body).unwrap();
    let mut head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nConnection: close\r\nContent-Length: {}\r\n",
        addr.port(),
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    stream.flush().await.unwrap();
    if !read {
        return Posted::Unread(stream);
    }
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("an answer within 30 s")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Posted::Answer(head.to_string(), body.to_string())
}

/// What `post` gives: the answer's head and body, or the connection whose
/// answer nobody has read.
enum Posted {
    Answer(String, String),
    Unread(#[allow(dead_code)] tokio::net::TcpStream),
}

impl Posted {
    fn answer(self) -> (String, String) {
        match self {
            Posted::Answer(head, body) => (head, body),
            Posted::Unread(_) => panic!("the answer was not read"),
        }
    }
}

/// Initializes a protocol session over raw HTTP and returns its headers.
async fn raw_session(addr: std::net::SocketAddr) -> Vec<(String, String)> {
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"retrier","version":"0"}}});
    let (head, _) = post(addr, &[], &init, true).await.answer();
    let sid = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("mcp-session-id")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no session id in {head}"));
    let headers = vec![
        ("Mcp-Session-Id".to_string(), sid),
        ("MCP-Protocol-Version".to_string(), "2025-06-18".to_string()),
    ];
    let initialized = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    post(addr, &headers, &initialized, true).await;
    headers
}

/// Sends one request and closes its connection without reading the answer.
async fn send_and_drop(addr: std::net::SocketAddr, headers: &[(String, String)], body: &Value) {
    drop(post(addr, headers, body, false).await);
}

/// One request over raw HTTP, answer read: the JSON-RPC response.
async fn call_raw(addr: std::net::SocketAddr, headers: &[(String, String)], body: &Value) -> Value {
    let (_, text) = post(addr, headers, body, true).await.answer();
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .chain(std::iter::once(text.as_str()))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC answer in {text}"))
}

fn tools_call(id: u64, tool: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_lost_with_its_connection_is_recovered_by_a_retry_without_a_second_commit() {
    let s = Server::start().await;
    let headers = raw_session(s.addr).await;
    call_raw(
        s.addr,
        &headers,
        &tools_call(1, "get_function", json!({"function": "demo::g"})),
    )
    .await;
    let before = n_nodes(&s);

    // The first attempt's answer is lost: its connection closes unread.
    send_and_drop(
        s.addr,
        &headers,
        &tools_call(2, "propose_edit", add_node("lost-1")),
    )
    .await;
    // The client retries (it cannot know whether the first one landed).
    let retry = call_raw(
        s.addr,
        &headers,
        &tools_call(3, "propose_edit", add_node("lost-1")),
    )
    .await;
    let result = &retry["result"]["structuredContent"];
    assert_eq!(result["status"], "committed", "{retry:#}");
    // Whichever of the two reached the commit pipeline first committed; the
    // other found its commit. Wait for the first to have finished too.
    eventually("the dropped attempt has finished", async || {
        s.hub.snapshot().revision().0 >= result["revision"].as_u64().unwrap()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(n_nodes(&s), before + 1, "the op was applied once");
    assert_eq!(commits_under(s.dir.path(), "lost-1"), 1);
}

/// A `cograph serve` on `dir`, its HTTP address once it is up.
fn serve(dir: &Path) -> (Child, String) {
    let child = Command::new(EXE)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir)
        .env("COGRAPH_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = wait_for_hub(dir, child.id()).http;
    (child, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_kill_9_and_restart_returns_the_durable_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (mut hub, addr) = serve(dir.path());
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let headers = raw_session(addr).await;
    let named = |id, name: &str| tools_call(id, "register_agent", json!({"name": name}));
    call_raw(addr, &headers, &named(1, "worker")).await;
    let create = json!({"ops": [{"create_function": {"text": G}}]});
    let created = call_raw(addr, &headers, &tools_call(2, "propose_edit", create)).await;
    assert_eq!(
        created["result"]["structuredContent"]["status"],
        "committed"
    );

    // The edit is sent and the hub is killed as soon as the commit is
    // durable, whether or not its answer went out: the client never reads
    // it (the connection stays open, unread, until the hub dies).
    let unread = post(
        addr,
        &headers,
        &tools_call(3, "propose_edit", add_node("kill-1")),
        false,
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while commits_under(dir.path(), "kill-1") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the edit never committed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    hub.kill().unwrap();
    hub.wait().unwrap();
    drop(unread);

    // A new hub, a new session under the same agent name, the same request.
    let (mut hub, addr) = serve(dir.path());
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let headers = raw_session(addr).await;
    call_raw(addr, &headers, &named(1, "worker")).await;
    let retry = call_raw(
        addr,
        &headers,
        &tools_call(2, "propose_edit", add_node("kill-1")),
    )
    .await;
    let result = &retry["result"]["structuredContent"];
    assert_eq!(result["status"], "committed", "{retry:#}");
    assert_eq!(result["repeated"], true, "{retry:#}");
    assert_eq!(result["revision"], 2);
    hub.kill().unwrap();
    hub.wait().unwrap();

    assert_eq!(commits_under(dir.path(), "kill-1"), 1);
    let program = cograph::store::StoreReader::open(dir.path())
        .unwrap()
        .program()
        .unwrap();
    let g = program
        .id_of(&cograph::graph::QualifiedName::new("demo::g").unwrap())
        .unwrap();
    assert_eq!(
        program.get(g).unwrap().function.nodes.len(),
        3,
        "two nodes of G, one added"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_acquire_locks_returns_the_first_grant_and_changes_nothing() {
    let s = Server::start().await;
    let a = s.in_process("a").await;
    let first = ok(&acquire_with(&a, "demo::f", "write", json!({"request_id": "lock-1"})).await);
    let again = ok(&acquire_with(&a, "demo::f", "write", json!({"request_id": "lock-1"})).await);
    assert_eq!(again["fencing_token"], first["fencing_token"]);
    assert_eq!(
        again["granted"][0]["expires_at"],
        first["granted"][0]["expires_at"]
    );

    // After a release, the repeat still answers the first outcome and takes
    // nothing.
    ok(&call(&a, "release_locks", json!({})).await);
    let late = ok(&acquire_with(&a, "demo::f", "write", json!({"request_id": "lock-1"})).await);
    assert_eq!(late["fencing_token"], first["fencing_token"]);
    assert_eq!(my_locks(&a).await, []);

    // Another request under the same id is refused.
    let r = try_call(
        &a,
        "acquire_locks",
        with(
            lock_args("demo::g", "write"),
            json!({"request_id": "lock-1"}),
        ),
    )
    .await;
    let message = match r {
        Ok(result) => {
            assert_eq!(result.is_error, Some(true), "{result:?}");
            text(&result)
        }
        Err(e) => e.to_string(),
    };
    assert!(message.contains("request_id"), "{message}");
    assert_eq!(my_locks(&a).await, []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_of_a_waiting_acquire_gets_the_same_grant_and_queues_once() {
    let s = Server::start().await;
    let holder = s.in_process("holder").await;
    let a = s.in_process("a").await;
    ok(&acquire(&holder, "demo::f", "write").await);
    let wait = json!({"request_id": "wait-1", "wait_ms": 20_000});
    let first = spawn_call(&a, acquire_params("demo::f", "write", wait.clone()));
    eventually("a is queued", async || {
        lock_queue(&holder, "demo::f").await.1.len() == 1
    })
    .await;
    let repeat = spawn_call(&a, acquire_params("demo::f", "write", wait));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        lock_queue(&holder, "demo::f").await.1.len(),
        1,
        "queued once"
    );
    ok(&call(&holder, "release_locks", json!({})).await);
    let first = ok(&first.await.unwrap().unwrap());
    let repeat = ok(&repeat.await.unwrap().unwrap());
    assert_eq!(repeat["fencing_token"], first["fencing_token"]);
    assert_eq!(my_locks(&a).await.len(), 1);
}
