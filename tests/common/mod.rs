//! Shared harness for the MCP integration tests: a hub with its HTTP
//! server on 127.0.0.1:0, real rmcp clients (in-process, HTTP with a
//! protocol session, stateless HTTP), and call helpers.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cograph::locks::Transport;
use cograph::mcp::CographServer;
use cograph::mcp::http::{self, HttpConfig};
use cograph::service::{Hub, HubConfig};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientConfig, ProgressNotificationParam, ProtocolVersion,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, NotificationContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub type Client = RunningService<RoleClient, Recorder>;

/// A client handler that records progress notifications.
#[derive(Clone, Default)]
pub struct Recorder {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::default()
    }
}

pub const F: &str = "fn demo::f(x: i64) -> i64 {\n  %0 = param 0\n  %1 = const 1\n  %2 = add %0, %1\n  %3 = const 2\n  %4 = mul %0, %3\n  %5 = add %2, %4\n  %6 = return %5\n}\n";
pub const G: &str = "fn demo::g() -> i64 {\n  %0 = const 5\n  %1 = return %0\n}\n";

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
        let dir = tempfile::tempdir().unwrap();
        let mut config = HubConfig::new(dir.path());
        configure(&mut config);
        let hub = Hub::open(config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(http::serve(
            hub.clone(),
            listener,
            HttpConfig::default(),
            shutdown.clone(),
        ));
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

pub async fn call(client: &Client, tool: &str, args: Value) -> CallToolResult {
    let Value::Object(map) = args else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(map))
        .await
        .unwrap_or_else(|e| panic!("{tool} failed at the protocol level: {e}"))
}

/// Like `call`, but returns the protocol-level error instead of panicking.
pub async fn try_call(
    client: &Client,
    tool: &str,
    args: Value,
) -> Result<CallToolResult, rmcp::ServiceError> {
    let Value::Object(map) = args else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(map))
        .await
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

/// Registers a stateless client and returns its session handle.
pub async fn register(client: &Client, name: &str) -> (String, String) {
    let r = ok(&call(client, "register_agent", json!({"name": name})).await);
    (
        r["session"].as_str().expect("a session handle").to_string(),
        r["agent_id"].as_str().unwrap().to_string(),
    )
}

pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
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
    let mut params = CallToolRequestParams::new("acquire_locks").with_arguments(
        json!({"locks": [{"function": function, "mode": "write"}], "wait_ms": 60000})
            .as_object()
            .unwrap()
            .clone(),
    );
    if let Some(t) = progress_token {
        params.meta = Some(rmcp::model::RequestMetaObject::with_progress_token(
            rmcp::model::ProgressToken(rmcp::model::NumberOrString::Number(t)),
        ));
    }
    params
}
