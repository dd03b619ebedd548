//! The built binary over stdio: `cograph stdio --standalone` as one agent,
//! and two `cograph stdio` processes sharing one hub on one data
//! directory. Also checks that stdout carries protocol messages only.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::{Client, EXE, Recorder, acquire, call, eventually, ok, refused};
use rmcp::ServiceExt;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

const FIB: &str = include_str!("../examples/programs/fib.cg");

/// A client of the process `cmd` starts, speaking MCP over its stdio.
async fn connect(mut cmd: tokio::process::Command) -> Client {
    cmd.env("COGRAPH_LOG", "warn");
    Recorder::default()
        .serve(TokioChildProcess::new(cmd).unwrap())
        .await
        .unwrap()
}

/// A client of `cograph` run with `args`.
async fn spawn(args: &[&str]) -> Client {
    let mut cmd = tokio::process::Command::new(EXE);
    cmd.args(args);
    connect(cmd).await
}

const TOOLS: [&str; 12] = [
    "acquire_locks",
    "diff",
    "get_function",
    "history",
    "list_agents",
    "lock_status",
    "program_overview",
    "propose_edit",
    "register_agent",
    "release_locks",
    "run_function",
    "verify_all",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_stdio_serves_one_agent() {
    let dir = tempfile::tempdir().unwrap();
    let client = spawn(&[
        "stdio",
        "--standalone",
        "--data",
        dir.path().to_str().unwrap(),
    ])
    .await;
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    assert_eq!(names, TOOLS);
    let fib = FIB
        .lines()
        .filter(|l| !l.starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    ok(&call(
        &client,
        "propose_edit",
        json!({"ops": [{"create_function": {"text": fib}}]}),
    )
    .await);
    let run = ok(&call(
        &client,
        "run_function",
        json!({"function": "math::fib", "args": [20]}),
    )
    .await);
    assert_eq!(run["value"], 6765);
    let me = ok(&call(&client, "list_agents", json!({})).await);
    assert_eq!(me["agents"][0]["transport"], "stdio");
    client.cancel().await.unwrap();
}

/// Kills the hub a test started, found through hub.json.
struct HubGuard(std::path::PathBuf);

impl Drop for HubGuard {
    fn drop(&mut self) {
        if let Some(info) = cograph::mcp::hub::HubInfo::read(&self.0) {
            let _ = Command::new("kill").arg(info.pid.to_string()).status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stdio_processes_share_one_hub() {
    let dir = tempfile::tempdir().unwrap();
    let _hub = HubGuard(dir.path().to_path_buf());
    let data = dir.path().to_str().unwrap();
    let args = ["stdio", "--data", data];
    let (alice, bob) = tokio::join!(spawn(&args), spawn(&args));
    ok(&call(&alice, "register_agent", json!({"name": "alice"})).await);
    ok(&call(&bob, "register_agent", json!({"name": "bob"})).await);
    ok(&call(
        &alice,
        "propose_edit",
        json!({"ops": [{"create_function": {"text": common::F}}]}),
    )
    .await);
    // Bob sees Alice's edit and Alice herself.
    let f = ok(&call(&bob, "get_function", json!({"function": "demo::f"})).await);
    assert!(f["text"].as_str().unwrap().contains("%6 = return %5"));
    let agents = ok(&call(&bob, "list_agents", json!({})).await);
    let names: Vec<&str> = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"alice") && names.contains(&"bob"),
        "{names:?}"
    );
    // One lock table.
    ok(&acquire(&alice, "demo::f", "write").await);
    let denied = refused(
        &bob,
        "acquire_locks",
        common::lock_args("demo::f", "write"),
        "lock_denied",
    )
    .await;
    assert_eq!(denied["blocked"][0]["holders"][0]["agent_name"], "alice");
    // Alice's process ends (stdin closes): her lock goes at once.
    alice.cancel().await.unwrap();
    eventually("bob to get the lock after alice left", async || {
        acquire(&bob, "demo::f", "write").await.is_error != Some(true)
    })
    .await;
    bob.cancel().await.unwrap();
}

/// Every line the server writes to stdout is a JSON-RPC message, even when
/// it logs and when a call fails.
#[test]
fn stdout_carries_protocol_messages_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(EXE)
        .args([
            "stdio",
            "--standalone",
            "--data",
            dir.path().to_str().unwrap(),
        ])
        .env("COGRAPH_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let messages = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "get_function", "arguments": {"function": "no::such"}}}),
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "acquire_locks", "arguments": {"locks": "nope"}}}),
    ];
    for m in &messages {
        writeln!(stdin, "{m}").unwrap();
    }
    stdin.flush().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ids = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("non-protocol line on stdout: {line:?}: {e}"));
        assert_eq!(v["jsonrpc"], "2.0", "{line}");
        if let Some(id) = v["id"].as_u64() {
            ids.push(id);
            if ids.len() == 4 {
                break;
            }
        }
    }
    drop(stdin);
    // Requests run concurrently, so responses may come in any order.
    ids.sort();
    assert_eq!(ids, vec![1, 2, 3, 4]);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("store opened"),
        "logs go to stderr: {stderr}"
    );
}

/// The `mcp.json` at the repository root is a working client config as
/// copied: its one entry, the stdio one, run as written (with the built
/// binary for `cograph`) in a fresh project directory, serves the tools.
/// It has no HTTP entry: a hub that `cograph stdio` starts listens on a
/// port of its own choosing, so a fixed URL would point at nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_mcp_json_starts_a_working_server() {
    let config: Value =
        serde_json::from_str(include_str!("../mcp.json")).expect("mcp.json is JSON");
    let servers = config["mcpServers"].as_object().expect("mcpServers");
    assert_eq!(
        servers.keys().collect::<Vec<_>>(),
        ["cograph"],
        "one entry, which works as copied"
    );
    let stdio = &servers["cograph"];
    assert_eq!(stdio["command"], "cograph");
    assert!(stdio.get("url").is_none());
    let args: Vec<&str> = stdio["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let project = tempfile::tempdir().unwrap();
    let _hub = HubGuard(project.path().join(".cograph"));
    let mut cmd = tokio::process::Command::new(EXE);
    cmd.args(&args).current_dir(project.path());
    let client = connect(cmd).await;
    assert_eq!(client.list_all_tools().await.unwrap().len(), TOOLS.len());
    ok(&call(&client, "verify_all", json!({})).await);
    client.cancel().await.unwrap();
    assert!(project.path().join(".cograph").join("hub.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_subscriber_hears_a_change_made_through_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let _hub = HubGuard(dir.path().to_path_buf());
    let data = dir.path().to_str().unwrap();
    let args = ["stdio", "--data", data];
    let (alice, bob) = tokio::join!(spawn(&args), spawn(&args));
    ok(&call(
        &alice,
        "propose_edit",
        json!({"ops": [{"create_function": {"text": common::F}}]}),
    )
    .await);
    #[allow(deprecated)] // stdio sessions speak the legacy subscribe
    alice
        .subscribe(rmcp::model::SubscribeRequestParams::new(
            "cograph://function/demo::f",
        ))
        .await
        .unwrap();
    let f = ok(&call(&bob, "get_function", json!({"function": "demo::f"})).await);
    ok(&call(
        &bob,
        "propose_edit",
        json!({"ops": [{"set_op": {"function": "demo::f", "node": "%1", "op": "const 9"}}],
               "base": {"demo::f": f["hash"]}}),
    )
    .await);
    eventually("alice hears of bob's change over stdio", async || {
        alice
            .service()
            .updated
            .lock()
            .unwrap()
            .iter()
            .any(|u| u == "cograph://function/demo::f")
    })
    .await;
}
