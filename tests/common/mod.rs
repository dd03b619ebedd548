//! Shared harness for the MCP integration tests: a hub with its HTTP
//! server on 127.0.0.1:0, real rmcp clients (in-process, HTTP with a
//! protocol session, stateless HTTP), and call helpers.

#![allow(dead_code)]

pub mod pg;
pub mod raw;
pub mod schema;
pub mod served;
pub mod stores;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cograph::locks::Transport;
use cograph::mcp::CographServer;
use cograph::mcp::http::{self, HttpConfig};
use cograph::mcp::hub::HubInfo;
use cograph::service::{Hub, HubConfig};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientConfig, ProgressNotificationParam, ProtocolVersion,
};
use rmcp::service::{
    ClientLifecycleMode, ClientServiceExt, NotificationContext, Peer, RunningService,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub type Client = RunningService<RoleClient, Recorder>;

/// A client handler that records progress notifications and the URIs of
/// `notifications/resources/updated`.
#[derive(Clone, Default)]
pub struct Recorder {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    pub updated: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }

    async fn on_resource_updated(
        &self,
        params: rmcp::model::ResourceUpdatedNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.updated.lock().unwrap().push(params.uri);
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::default()
    }
}

pub const F: &str = "fn demo::f(x: i64) -> i64 {\n  %0 = param 0\n  %1 = const 1\n  %2 = add %0, %1\n  %3 = const 2\n  %4 = mul %0, %3\n  %5 = add %2, %4\n  %6 = return %5\n}\n";
pub const G: &str = "fn demo::g() -> i64 {\n  %0 = const 5\n  %1 = return %0\n}\n";

/// A hub on a fresh, empty store in a temporary directory (removed when
/// the directory is dropped). Must run inside a tokio runtime.
pub fn open_hub(configure: impl FnOnce(&mut HubConfig)) -> (tempfile::TempDir, Arc<Hub>) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HubConfig::new(dir.path());
    configure(&mut config);
    let hub = Hub::open(config).unwrap();
    (dir, hub)
}

pub struct Server {
    pub dir: tempfile::TempDir,
    pub hub: Arc<Hub>,
    pub url: String,
    pub addr: std::net::SocketAddr,
    shutdown: CancellationToken,
}

impl Server {
    /// A hub on a fresh store, served over HTTP on 127.0.0.1:0, with
    /// `demo::f` and `demo::g`.
    pub async fn start() -> Server {
        Server::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut HubConfig)) -> Server {
        Server::start_full(configure, HttpConfig::default()).await
    }

    /// `start` with this HTTP configuration.
    pub async fn start_http(http: HttpConfig) -> Server {
        Server::start_full(|_| {}, http).await
    }

    async fn start_full(configure: impl FnOnce(&mut HubConfig), http: HttpConfig) -> Server {
        let (dir, hub) = open_hub(configure);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(http::serve(hub.clone(), listener, http, shutdown.clone()));
        let server = Server {
            dir,
            hub,
            url: format!("http://{addr}/mcp"),
            addr,
            shutdown,
        };
        let setup = server.in_process("setup").await;
        ok(&call(
            &setup,
            "propose_edit",
            json!({"ops": [{"create_function": {"text": F}}, {"create_function": {"text": G}}]}),
        )
        .await);
        setup.cancel().await.unwrap();
        server
    }

    /// A client connected in-process over a duplex pipe: one agent.
    pub async fn in_process(&self, name: &str) -> Client {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let server = CographServer::for_connection(self.hub.clone(), Transport::InProcess, name);
        tokio::spawn(async move {
            if let Ok(running) = server.serve(a).await {
                let _ = running.waiting().await;
            }
        });
        let client = Recorder::default().serve(b).await.unwrap();
        // The client's own name (from initialize) replaces the default one;
        // choosing a name explicitly keeps it.
        ok(&call(&client, "register_agent", json!({"name": name})).await);
        client
    }

    /// A client with a protocol session (initialize; 2025-11-25 or older).
    pub async fn http_session(&self) -> Client {
        Recorder::default()
            .serve(StreamableHttpClientTransport::from_uri(self.url.as_str()))
            .await
            .unwrap()
    }

    /// A client without a protocol session (2026-07-28).
    pub async fn http_stateless(&self) -> Client {
        Recorder::default()
            .serve_with_lifecycle(
                StreamableHttpClientTransport::from_uri(self.url.as_str()),
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                },
            )
            .await
            .unwrap()
    }

    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The request parameters of a `tools/call` of `tool` with `args`.
pub fn params(tool: &str, args: Value) -> CallToolRequestParams {
    let Value::Object(map) = args else {
        panic!("arguments must be an object")
    };
    CallToolRequestParams::new(tool.to_string()).with_arguments(map)
}

/// Calls a tool, panicking on a protocol-level error (a tool error is a
/// result). Takes any client's peer, whatever its handler.
pub async fn call(client: &Peer<RoleClient>, tool: &str, args: Value) -> CallToolResult {
    try_call(client, tool, args)
        .await
        .unwrap_or_else(|e| panic!("{tool} failed at the protocol level: {e}"))
}

/// Like `call`, but returns the protocol-level error instead of panicking.
pub async fn try_call(
    client: &Peer<RoleClient>,
    tool: &str,
    args: Value,
) -> Result<CallToolResult, rmcp::ServiceError> {
    client.call_tool(params(tool, args)).await
}

/// The message of a JSON-RPC invalid-params error, which the call must
/// get.
pub async fn invalid_params(client: &Peer<RoleClient>, tool: &str, args: Value) -> String {
    match try_call(client, tool, args).await {
        Err(rmcp::ServiceError::McpError(e)) => {
            assert_eq!(e.code, rmcp::model::ErrorCode::INVALID_PARAMS, "{e:?}");
            e.message.to_string()
        }
        other => panic!("expected invalid params, got {other:?}"),
    }
}

/// The structured content of a successful result.
pub fn ok(result: &CallToolResult) -> Value {
    assert_ne!(
        result.is_error,
        Some(true),
        "expected success, got {}",
        text(result)
    );
    result
        .structured_content
        .clone()
        .expect("structured content")
}

/// The structured content of a tool error, checking its code.
pub fn err(result: &CallToolResult, code: &str) -> Value {
    assert_eq!(
        result.is_error,
        Some(true),
        "expected error {code}, got {}",
        text(result)
    );
    let s = result
        .structured_content
        .clone()
        .expect("structured content");
    assert_eq!(s["error"]["code"], code, "{s:#}");
    assert!(!s["error"]["message"].as_str().unwrap().is_empty());
    assert!(!s["error"]["hint"].as_str().unwrap().is_empty());
    s
}

pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Registers a stateless client and returns its session handle and
/// agent id.
pub async fn register(client: &Peer<RoleClient>, name: &str) -> (String, String) {
    let r = ok(&call(client, "register_agent", json!({"name": name})).await);
    (
        r["session"].as_str().expect("a session handle").to_string(),
        r["agent_id"].as_str().unwrap().to_string(),
    )
}

/// The caller's public agent id (register_agent with no arguments changes
/// nothing).
pub async fn agent_id(client: &Peer<RoleClient>) -> String {
    let r = ok(&call(client, "register_agent", json!({})).await);
    r["agent_id"].as_str().unwrap().to_string()
}

/// Reads a function (get_function), which records it as the caller's base.
pub async fn read(client: &Peer<RoleClient>, function: &str) -> Value {
    ok(&call(client, "get_function", json!({"function": function})).await)
}

/// `args` with the fields of the object `more` added (or replaced).
pub fn with(mut args: Value, more: Value) -> Value {
    let (Value::Object(to), Value::Object(from)) = (&mut args, more) else {
        panic!("both must be objects")
    };
    to.extend(from);
    args
}

/// `acquire_locks` arguments for one lock (`mode` is `read` or `write`),
/// without waiting.
pub fn lock_args(function: &str, mode: &str) -> Value {
    json!({"locks": [{"function": function, "mode": mode}]})
}

/// Asks for one lock, without waiting.
pub async fn acquire(client: &Peer<RoleClient>, function: &str, mode: &str) -> CallToolResult {
    acquire_with(client, function, mode, json!({})).await
}

/// Asks for one lock with more arguments (`wait_ms`, `ttl_ms`, `purpose`,
/// `session`).
pub async fn acquire_with(
    client: &Peer<RoleClient>,
    function: &str,
    mode: &str,
    more: Value,
) -> CallToolResult {
    call(
        client,
        "acquire_locks",
        with(lock_args(function, mode), more),
    )
    .await
}

/// The request parameters of an `acquire_locks` of one lock, with more
/// arguments: for `spawn_call` and `send_cancellable_request`.
pub fn acquire_params(function: &str, mode: &str, more: Value) -> CallToolRequestParams {
    params("acquire_locks", with(lock_args(function, mode), more))
}

/// Starts a call (one that waits, such as `wait_call`) in a task of its
/// own; aborting the task drops the call, which cancels it.
pub fn spawn_call(
    client: &Peer<RoleClient>,
    params: CallToolRequestParams,
) -> JoinHandle<Result<CallToolResult, rmcp::ServiceError>> {
    let peer = client.clone();
    tokio::spawn(async move { peer.call_tool(params).await })
}

/// The program as `verify_all` reports it: (revision, root hash).
pub async fn program_state(client: &Peer<RoleClient>) -> (u64, String) {
    let v = ok(&call(client, "verify_all", json!({})).await);
    assert_eq!(v["ok"], true, "the committed program verifies: {v:#}");
    (
        v["revision"].as_u64().unwrap(),
        v["root_hash"].as_str().unwrap().to_string(),
    )
}

/// Makes a call that must be refused with `code` (see `err`) and checks
/// that it changed nothing: the revision and root hash are the same after.
/// Returns the error's structured content.
pub async fn refused(client: &Peer<RoleClient>, tool: &str, args: Value, code: &str) -> Value {
    let before = program_state(client).await;
    let e = err(&call(client, tool, args).await, code);
    assert_eq!(
        program_state(client).await,
        before,
        "a refused {tool} ({code}) changed the program"
    );
    e
}

/// Who holds a lock on `function` and who waits for it, by agent name, as
/// `lock_status` shows them.
pub async fn lock_queue(client: &Peer<RoleClient>, function: &str) -> (Vec<String>, Vec<String>) {
    let status = ok(&call(client, "lock_status", json!({"function": function})).await);
    let names = |key: &str| -> Vec<String> {
        status["locks"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|l| l[key].as_array().unwrap().clone())
            .map(|a| a["agent_name"].as_str().unwrap().to_string())
            .collect()
    };
    (names("holders"), names("waiters"))
}

/// The locks the caller holds, as (function, mode), per `lock_status`.
pub async fn my_locks(client: &Peer<RoleClient>) -> Vec<(String, String)> {
    let status = ok(&call(client, "lock_status", json!({})).await);
    status["yours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["resource"].as_str().unwrap().to_string(),
                l["mode"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Waits until `check` holds, polling; fails the test after a generous
/// 20 s.
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An `acquire_locks` call that waits up to 60 s for a write lock on
/// `function`, with a progress token if given.
pub fn wait_call(function: &str, progress_token: Option<i64>) -> CallToolRequestParams {
    let mut params = acquire_params(function, "write", json!({"wait_ms": 60000}));
    if let Some(t) = progress_token {
        params.meta = Some(rmcp::model::RequestMetaObject::with_progress_token(
            rmcp::model::ProgressToken(rmcp::model::NumberOrString::Number(t)),
        ));
    }
    params
}

/// The `cograph` binary of this build.
pub const EXE: &str = env!("CARGO_BIN_EXE_cograph");

/// Waits (at most 20 s) until the hub with process id `pid` has written
/// its `hub.json` in `dir`, and returns what it wrote.
pub fn wait_for_hub(dir: &std::path::Path, pid: u32) -> HubInfo {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(info) = HubInfo::read(dir)
            && info.pid == pid
        {
            return info;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server (pid {pid}) never wrote hub.json"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Replays a commit log from an empty program and checks that each
/// commit's ops give exactly the hashes it recorded; returns the program.
pub fn replay(log: &[cograph::store::CommitRecord]) -> cograph::graph::Program {
    let mut program = cograph::graph::Program::new();
    for c in log {
        program = cograph::graph::apply(&program, &c.ops, c.revision)
            .unwrap_or_else(|e| panic!("r{} no longer applies: {e}", c.revision.0))
            .program;
        for ch in &c.changes {
            assert_eq!(
                program.get(ch.function).map(|e| e.hash),
                ch.after,
                "r{} replays differently",
                c.revision.0
            );
        }
    }
    program
}
