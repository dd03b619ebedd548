//! Bad input seen by hand (issue 11, section 6), each answered with an
//! error that says what was wrong, and changing nothing:
//! - a `tools/call` whose `arguments` is not an object was "method not
//!   found"; an unknown tool did not say which tools there are;
//! - a line on stdio that is not JSON, not UTF-8 or nested too deep got no
//!   answer at all;
//! - a lock target as a tuple `[1, "write"]` was granted;
//! - `diff` and `history` showed Rust Debug text, returned nothing for a
//!   function that never existed, and diffed from another function's hash;
//!   `"r1"` and `"1"` were not taken alike as revisions;
//! - a `base` naming one function twice with different hashes was dropped;
//! - a stateless read did not say it was not recorded.
//!
//! Raw JSON-RPC goes to the built binary over stdio (a typed client cannot
//! send it); the rest through real MCP clients.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// Raw JSON-RPC over `cograph stdio`

/// `cograph stdio` driven line by line.
struct Raw {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// Kept for the hub mode: the hub's directory, to stop it after.
    dir: tempfile::TempDir,
    next_id: u64,
}

impl Raw {
    /// `cograph stdio` (through a hub it starts) or `--standalone`, after
    /// initialize.
    fn start(standalone: bool) -> Raw {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["stdio", "--data", dir.path().to_str().unwrap()];
        if standalone {
            args.push("--standalone");
        }
        let mut child = Command::new(EXE)
            .args(&args)
            .env("COGRAPH_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut raw = Raw {
            child,
            stdin,
            lines,
            dir,
            next_id: 100,
        };
        let init = raw.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}),
        );
        assert!(init["result"]["serverInfo"].is_object(), "{init}");
        raw.line(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        raw
    }

    /// Sends one line as it is.
    fn line(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).unwrap();
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next message the server writes (a bound, not a timing check: a
    /// server that never answers fails here instead of hanging the suite).
    fn reply(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(60))
            .expect("an answer on stdout");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"))
    }

    /// A request and its answer.
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.line(message.to_string().as_bytes());
        let reply = self.reply();
        assert_eq!(reply["id"], id, "{reply}");
        reply
    }

    /// Checks that the session still serves: a tool call succeeds.
    fn still_serves(&mut self) {
        let r = self.request("tools/call", json!({"name": "verify_all", "arguments": {}}));
        assert_eq!(r["result"]["structuredContent"]["ok"], true, "{r}");
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(info) = cograph::mcp::hub::HubInfo::read(self.dir.path()) {
            let _ = Command::new("kill").arg(info.pid.to_string()).status();
        }
    }
}

/// Sends a line that is no JSON-RPC message and checks the parse error
/// (-32700, id null) and that the session serves the next line.
fn parse_error_then_serves(standalone: bool, line: &[u8], says: &str) {
    let mut raw = Raw::start(standalone);
    raw.line(line);
    let reply = raw.reply();
    assert_eq!(reply["error"]["code"], -32700, "{reply}");
    assert_eq!(reply["id"], Value::Null, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains(says), "{message}");
    raw.still_serves();
}

fn too_deep() -> Vec<u8> {
    format!("{}{}", "[".repeat(200), "]".repeat(200)).into_bytes()
}

#[test]
fn standalone_answers_a_line_that_is_not_json() {
    parse_error_then_serves(true, b"this is not json", "not valid JSON");
}

#[test]
fn standalone_answers_a_line_that_is_not_utf8() {
    parse_error_then_serves(true, b"{\"a\": \"\xff\xfe\"}", "not UTF-8");
}

#[test]
fn standalone_answers_a_line_nested_too_deep() {
    parse_error_then_serves(true, &too_deep(), "nested more than 128 levels");
}

#[test]
fn hub_answers_bad_lines_and_keeps_serving() {
    let mut raw = Raw::start(false);
    for (line, says) in [
        (b"this is not json".to_vec(), "not valid JSON"),
        (b"\xff\xfe".to_vec(), "not UTF-8"),
        (too_deep(), "nested more than 128 levels"),
    ] {
        raw.line(&line);
        let reply = raw.reply();
        assert_eq!(reply["error"]["code"], -32700, "{reply}");
        assert_eq!(reply["id"], Value::Null, "{reply}");
        assert!(
            reply["error"]["message"].as_str().unwrap().contains(says),
            "{reply}"
        );
        raw.still_serves();
    }
}

/// A `tools/call` with `arguments` of the wrong kind: invalid params
/// naming `arguments` and the kind given.
fn arguments_refused(arguments: Value, kind: &str) {
    let mut raw = Raw::start(true);
    let reply = raw.request(
        "tools/call",
        json!({"name": "program_overview", "arguments": arguments}),
    );
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("`arguments`"), "{message}");
    assert!(message.contains(kind), "{message}");
    raw.still_serves();
}

#[test]
fn arguments_as_an_array_is_invalid_params() {
    arguments_refused(json!([]), "an array");
}

#[test]
fn arguments_as_a_string_is_invalid_params() {
    arguments_refused(json!("x"), "a string");
}

#[test]
fn arguments_as_a_number_is_invalid_params() {
    arguments_refused(json!(5), "a number");
}

#[test]
fn arguments_null_is_invalid_params() {
    arguments_refused(Value::Null, "null");
}

#[test]
fn arguments_left_out_are_fine() {
    let mut raw = Raw::start(true);
    let reply = raw.request("tools/call", json!({"name": "verify_all"}));
    assert_eq!(reply["result"]["structuredContent"]["ok"], true, "{reply}");
}

#[test]
fn a_tools_call_without_a_name_says_so() {
    let mut raw = Raw::start(true);
    let reply = raw.request("tools/call", json!({"arguments": {}}));
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`name`"),
        "{reply}"
    );
}

#[test]
fn an_unknown_tool_is_named_and_the_tools_listed() {
    let mut raw = Raw::start(true);
    let reply = raw.request("tools/call", json!({"name": "select", "arguments": {}}));
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("`select`"), "{message}");
    for tool in ["get_function", "propose_edit", "acquire_locks", "diff"] {
        assert!(message.contains(tool), "{message}");
    }
    assert_eq!(
        reply["error"]["data"]["tools"].as_array().unwrap().len(),
        12
    );
}

// ---------------------------------------------------------------------------
// Through MCP clients

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_target_as_a_tuple_is_refused() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let message = invalid_params(&alice, "acquire_locks", json!({"locks": [[1, "write"]]})).await;
    assert!(message.contains("locks[0]"), "{message}");
    assert!(message.contains("object"), "{message}");
    assert!(my_locks(&alice).await.is_empty(), "nothing was granted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_of_a_function_that_never_existed_is_not_found() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let e = err(
        &call(&alice, "history", json!({"function": 999})).await,
        "not_found",
    );
    assert!(
        e["error"]["message"].as_str().unwrap().contains("#999"),
        "{e}"
    );
    err(
        &call(&alice, "diff", json!({"function": 999, "from": 1})).await,
        "not_found",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_function_keeps_its_history_and_diff() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let g = read(&alice, "demo::g").await;
    let id = g["id"].as_u64().unwrap();
    ok(&call(
        &alice,
        "propose_edit",
        json!({"ops": [{"delete_function": {"function": "demo::g"}}]}),
    )
    .await);
    let h = ok(&call(&alice, "history", json!({"function": id})).await);
    assert_eq!(h["commits"].as_array().unwrap().len(), 2, "{h}");
    let d = ok(&call(
        &alice,
        "diff",
        json!({"function": id, "from": 1, "to": g["hash"]}),
    )
    .await);
    assert_eq!(d["from"], g["hash"]);
    // Its current version is gone: said in words, not Debug text.
    let e = err(
        &call(&alice, "diff", json!({"function": id, "from": 1})).await,
        "not_found",
    );
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.contains("no current version"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_messages_carry_no_debug_text() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let e = err(
        &call(&alice, "diff", json!({"function": "demo::f", "from": 0})).await,
        "not_found",
    );
    let message = e["error"]["message"].as_str().unwrap();
    assert!(!message.contains("Revision("), "{message}");
    assert!(message.contains("revision 0"), "{message}");
    let unknown = "ab".repeat(32);
    let e = err(
        &call(
            &alice,
            "diff",
            json!({"function": "demo::f", "from": unknown}),
        )
        .await,
        "not_found",
    );
    let message = e["error"]["message"].as_str().unwrap();
    assert!(!message.contains("Hash("), "{message}");
    assert!(message.contains(&unknown), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_from_another_functions_hash_is_refused() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let g = read(&alice, "demo::g").await;
    let e = err(
        &call(
            &alice,
            "diff",
            json!({"function": "demo::f", "from": g["hash"]}),
        )
        .await,
        "not_found",
    );
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.contains("demo::f"), "{message}");
}

/// Commits one change to `demo::f` (revision 2 on a fresh server).
async fn change_f(client: &Client) {
    read(client, "demo::f").await;
    ok(&call(
        client,
        "propose_edit",
        json!({"ops": [{"set_op": {"function": "demo::f", "node": "%1", "op": "const 9"}}]}),
    )
    .await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisions_are_taken_alike_as_numbers_and_text() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    change_f(&alice).await;
    let spellings = [json!(1), json!("1"), json!("r1")];
    let diffs: Vec<Value> = diffs_from(&alice, &spellings).await;
    for d in &diffs {
        assert_eq!(d["from"], diffs[0]["from"], "{d}");
        assert_eq!(d["to"], diffs[0]["to"], "{d}");
    }
    let mut pages = Vec::new();
    for before in [json!(2), json!("2"), json!("r2")] {
        let h = ok(&call(&alice, "history", json!({"before_revision": before})).await);
        pages.push(h["commits"].clone());
    }
    assert_eq!(pages[0].as_array().unwrap().len(), 1, "{:?}", pages[0]);
    assert!(pages.iter().all(|p| *p == pages[0]), "{pages:?}");
    for bad in [json!("r"), json!("+1"), json!("rr1"), json!(-1)] {
        let message = invalid_params(&alice, "history", json!({"before_revision": bad})).await;
        assert!(message.contains("before_revision"), "{message}");
    }
}

async fn diffs_from(client: &Client, froms: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for from in froms {
        out.push(ok(&call(
            client,
            "diff",
            json!({"function": "demo::f", "from": from, "to": "r2"}),
        )
        .await));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_naming_one_function_twice_with_different_hashes_is_refused() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let f = read(&alice, "demo::f").await;
    let g = read(&alice, "demo::g").await;
    let id = f["id"].as_u64().unwrap().to_string();
    let before = program_state(&alice).await;
    let message = invalid_params(
        &alice,
        "propose_edit",
        json!({
            "ops": [{"set_op": {"function": "demo::f", "node": "%1", "op": "const 9"}}],
            "base": {"demo::f": f["hash"], id.clone(): g["hash"]},
        }),
    )
    .await;
    assert!(message.contains("`base`"), "{message}");
    assert!(message.contains("demo::f"), "{message}");
    assert_eq!(program_state(&alice).await, before);
    // The same hash twice is no contradiction.
    ok(&call(
        &alice,
        "propose_edit",
        json!({
            "ops": [{"set_op": {"function": "demo::f", "node": "%1", "op": "const 9"}}],
            "base": {"demo::f": f["hash"], id: f["hash"]},
        }),
    )
    .await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_read_without_session_warns_it_was_not_recorded() {
    let s = Server::start().await;
    let anon = s.http_stateless().await;
    let r = call(&anon, "get_function", json!({"function": "demo::f"})).await;
    let f = ok(&r);
    assert_eq!(f["read_recorded"], false);
    let warning = f["warning"].as_str().expect("a warning");
    assert!(warning.contains("not recorded"), "{warning}");
    assert!(warning.contains("base"), "{warning}");
    assert!(warning.contains(f["hash"].as_str().unwrap()), "{warning}");
    assert!(text(&r).contains("warning: this read was not recorded"));
    // With a session the read counts, and nothing warns.
    let (session, _) = register(&anon, "stateless").await;
    let f = ok(&call(
        &anon,
        "get_function",
        json!({"function": "demo::f", "session": session}),
    )
    .await);
    assert_eq!(f["read_recorded"], true);
    assert!(f.get("warning").is_none(), "{f}");
}
