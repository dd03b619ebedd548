//! Hostile input over the wire: malformed JSON-RPC, wrong types, unknown
//! functions, huge and deeply nested arguments, bad session handles and ids,
//! a foreign Origin. Every request gets a clear error, the server stays up,
//! and the program's root hash does not change.

mod common;

use common::Server;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Response {
    status: u16,
    headers: String,
    body: String,
}

impl Response {
    /// The JSON-RPC message in the body (plain JSON or the last SSE event).
    fn message(&self) -> Option<Value> {
        if let Ok(v) = serde_json::from_str(&self.body) {
            return Some(v);
        }
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .rfind(|v| v.get("id").is_some())
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

async fn post(addr: std::net::SocketAddr, extra: &[(&str, &str)], body: &[u8]) -> Response {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n",
        addr.port(),
        body.len()
    );
    let has = |name: &str| extra.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    if !has("content-type") {
        head.push_str("Content-Type: application/json\r\n");
    }
    if !has("accept") {
        head.push_str("Accept: application/json, text/event-stream\r\n");
    }
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    // The server may answer (413, 400) and close before it has read the whole
    // body, so the write may fail with a broken pipe: write and read at once,
    // and judge only the answer. Bytes that arrived before a reset stay
    // readable, and `read_to_end` keeps them when it then fails.
    let (mut rx, mut tx) = stream.into_split();
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    let writer = tokio::spawn(async move {
        let _ = tx.write_all(&request).await;
        tx
    });
    let mut raw = Vec::new();
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(10), rx.read_to_end(&mut raw)).await;
    writer.abort();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Response {
        status,
        headers: headers.to_string(),
        body: body.to_string(),
    }
}

/// What counts as a clear error: an HTTP 4xx with a body, a JSON-RPC error
/// with a message, or a tool result with `isError` and an error code.
fn clear_error(what: &str, r: &Response) {
    assert!(
        r.status < 500 && r.status != 0,
        "{what}: status {} {}",
        r.status,
        r.body
    );
    if r.status >= 400 {
        assert!(
            !r.body.trim().is_empty() || r.status == 404,
            "{what}: {} with an empty body",
            r.status
        );
        return;
    }
    let m = r
        .message()
        .unwrap_or_else(|| panic!("{what}: no JSON-RPC message in {:?}", r.body));
    if let Some(e) = m.get("error") {
        let message = e["message"].as_str().unwrap_or("");
        assert!(!message.is_empty(), "{what}: empty error message");
        return;
    }
    let result = &m["result"];
    assert_eq!(
        result["isError"], true,
        "{what}: expected an error, got {m}"
    );
    let code = result["structuredContent"]["error"]["code"]
        .as_str()
        .unwrap_or("");
    assert!(!code.is_empty(), "{what}: tool error without a code: {m}");
}

fn call(id: u64, tool: &str, args: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}})).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_clear_errors_and_change_nothing() {
    let s = Server::start().await;
    let root = s.hub.snapshot().root_hash();
    let revision = s.hub.snapshot().revision();

    // A protocol session to send tool calls in.
    let init = post(
        s.addr,
        &[],
        br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"hostile","version":"0"}}}"#,
    )
    .await;
    let sid = init.header("mcp-session-id").expect("a session id");
    let session = [
        ("Mcp-Session-Id", sid.as_str()),
        ("MCP-Protocol-Version", "2025-06-18"),
    ];
    post(
        s.addr,
        &session,
        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;

    let deep = format!("{}1{}", "[".repeat(20_000), "]".repeat(20_000));
    let huge_name = "x".repeat(1_000_000);
    let many_ops: Vec<Value> = (0..5000)
        .map(|_| json!({"set_doc": {"function": "demo::f", "doc": "d"}}))
        .collect();
    type Case = (String, Vec<(&'static str, &'static str)>, Vec<u8>);
    let mut cases: Vec<Case> = Vec::new();
    let mut add = |name: &str, headers: Vec<(&'static str, &'static str)>, body: Vec<u8>| {
        cases.push((name.to_string(), headers, body));
    };
    // Malformed JSON-RPC and HTTP.
    add("not json", vec![], b"{{{".to_vec());
    add("empty body", vec![], b"".to_vec());
    add("empty batch", vec![], b"[]".to_vec());
    add(
        "wrong jsonrpc version",
        vec![],
        br#"{"jsonrpc":"1.0","id":1,"method":"tools/list"}"#.to_vec(),
    );
    add("no method", vec![], br#"{"jsonrpc":"2.0","id":1}"#.to_vec());
    add(
        "unknown method",
        vec![],
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/explode"}"#.to_vec(),
    );
    add(
        "object id",
        vec![],
        br#"{"jsonrpc":"2.0","id":{"a":1},"method":"tools/list"}"#.to_vec(),
    );
    add(
        "invalid utf-8",
        vec![],
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\xfe\"}".to_vec(),
    );
    add("deeply nested", vec![], format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"get_function","arguments":{{"function":{deep}}}}}}}"#).into_bytes());
    add("body over the limit", vec![], vec![b' '; 5 * 1024 * 1024]);
    add(
        "wrong content type",
        vec![("Content-Type", "text/plain")],
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_vec(),
    );
    add(
        "no accept",
        vec![("Accept", "text/html")],
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_vec(),
    );
    add(
        "foreign origin",
        vec![("Origin", "http://evil.example")],
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_vec(),
    );
    add(
        "unknown session id",
        vec![("Mcp-Session-Id", "00000000-0000-0000-0000-000000000000")],
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_vec(),
    );
    add(
        "params not an object",
        vec![],
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"x"}"#.to_vec(),
    );
    add("unknown tool", vec![], call(1, "drop_database", json!({})));
    add("number overflow", vec![], br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"acquire_locks","arguments":{"locks":[{"function":"demo::f","mode":"write"}],"wait_ms":1e400}}}"#.to_vec());
    // Wrong types and unknown things, per tool.
    for (i, args) in [
        json!({"function": true}),
        json!({"function": []}),
        json!({"function": {}}),
        json!({"function": null}),
        json!({"function": -1}),
        json!({"function": 1.5}),
        json!({"function": ""}),
        json!({"function": "no::such"}),
        json!({"function": "a::b::"}),
        json!({"function": huge_name}),
        json!({"function": "demo::f", "format": "xml"}),
        json!({"function": 999999}),
    ]
    .into_iter()
    .enumerate()
    {
        add(
            &format!("get_function #{i}"),
            vec![],
            call(1, "get_function", args),
        );
    }
    for (i, args) in [
        json!({"locks": "x"}),
        json!({"locks": []}),
        json!({"locks": [{}]}),
        json!({"locks": [{"function": "demo::f", "mode": "exclusive"}]}),
        json!({"locks": [{"function": "demo::f", "mode": "write"}], "wait_ms": -1}),
        json!({"locks": [{"function": "demo::f", "mode": "write"}], "wait_ms": 99999999}),
        json!({"locks": [{"function": "demo::f", "mode": "write"}], "ttl_ms": 0}),
        json!({"locks": [{"function": "demo::f", "mode": "write"}], "wait": 5}),
        json!({"locks": [{"function": "no::such", "mode": "write"}]}),
        json!({"locks": [{"function": "demo::f", "mode": "write"}], "session": "forged"}),
    ]
    .into_iter()
    .enumerate()
    {
        add(
            &format!("acquire_locks #{i}"),
            vec![],
            call(1, "acquire_locks", args),
        );
    }
    for (i, args) in [
        json!({"ops": {}}),
        json!({"ops": []}),
        json!({"ops": [{"nope": {}}]}),
        json!({"ops": [{"add_node": {}}]}),
        json!({"ops": [{"add_node": {"function": "demo::f", "op": "add %1"}}]}),
        json!({"ops": [{"add_node": {"function": "demo::f", "op": "add", "inputs": ["$"]}}]}),
        json!({"ops": [{"remove_node": {"function": "demo::f", "node": "%99999999999"}}]}),
        json!({"ops": [{"create_function": {"text": "fn garbage"}}]}),
        json!({"ops": [{"create_function": {"name": "bad name", "returns": "i64"}}]}),
        json!({"ops": [{"set_doc": {"function": "demo::f", "doc": "x"}}], "base": {"demo::f": "zz"}}),
        json!({"ops": [{"set_doc": {"function": "demo::f", "doc": "x"}}], "base": {"no::such": "00"}}),
        json!({"ops": many_ops}),
        json!({"ops": [{"set_doc": {"function": "demo::f", "doc": "x"}}], "on_conflict": "maybe"}),
        json!({"ops": [{"set_doc": {"function": "demo::f", "doc": "x"}}]}),
        json!({"ops": [{"set_doc": {"function": "demo::f", "doc": "\u{0007}bell"}}], "base": {"demo::f": "0000000000000000000000000000000000000000000000000000000000000000"}}),
    ]
    .into_iter()
    .enumerate()
    {
        add(&format!("propose_edit #{i}"), vec![], call(1, "propose_edit", args));
    }
    for (i, (tool, args)) in [
        (
            "run_function",
            json!({"function": "demo::f", "args": ["x"]}),
        ),
        (
            "run_function",
            json!({"function": "demo::f", "args": [1, 2]}),
        ),
        (
            "run_function",
            json!({"function": "demo::f", "args": [1], "fuel": -1}),
        ),
        ("run_function", json!({"function": "no::such", "args": []})),
        ("register_agent", json!({"name": "evil\u{0000}name"})),
        ("register_agent", json!({"purpose": "p".repeat(10_000)})),
        ("register_agent", json!({"session": "garbage"})),
        ("history", json!({"limit": 0})),
        ("history", json!({"limit": 1000})),
        ("history", json!({"function": "no::such"})),
        ("diff", json!({"function": "demo::f", "from": "nothash"})),
        ("diff", json!({"function": "demo::f", "from": 99999})),
        ("program_overview", json!({"cursor": "not a cursor"})),
        ("program_overview", json!({"limit": 0})),
        ("release_locks", json!({"functions": ["no::such"]})),
        ("lock_status", json!({"function": "no::such"})),
        ("list_agents", json!({"session": 5})),
        ("verify_all", json!({"extra": true})),
    ]
    .into_iter()
    .enumerate()
    {
        add(&format!("{tool} #{i}"), vec![], call(1, tool, args));
    }

    let n = cases.len();
    assert!(n >= 50, "only {n} hostile requests");
    for (name, headers, body) in cases {
        let mut all: Vec<(&str, &str)> = session.to_vec();
        if headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("mcp-session-id"))
        {
            all.clear();
        }
        all.extend(headers.iter().copied());
        let r = post(s.addr, &all, &body).await;
        clear_error(&name, &r);
        // Refused, and nothing changed: the same program, no lock granted,
        // no queue place left behind.
        let now = s.hub.snapshot();
        assert_eq!(now.root_hash(), root, "{name} changed the program");
        assert_eq!(now.revision(), revision, "{name} committed");
        let locks = s.hub.locks().status();
        assert!(locks.is_empty(), "{name} left locks behind: {locks:?}");
    }

    // Still up, still the same program.
    let health = post(s.addr, &session, &call(9, "verify_all", json!({}))).await;
    let m = health.message().expect("verify_all answers");
    assert_eq!(m["result"]["structuredContent"]["ok"], true);
    assert_eq!(s.hub.snapshot().root_hash(), root);
    assert_eq!(s.hub.snapshot().revision(), revision);
    eprintln!("{n} hostile requests, all refused clearly");
}
