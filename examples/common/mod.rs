//! What the examples share: a cograph server on 127.0.0.1 over a fresh
//! store, and tool calls that return structured content.

#![allow(dead_code)]

use cograph::mcp::http::{self, HttpConfig};
use cograph::service::{Hub, HubConfig};
use rmcp::RoleClient;
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub type Client = RunningService<RoleClient, ()>;

/// cograph serving streamable HTTP on 127.0.0.1:0, with its store in a
/// temporary directory that goes when this is dropped.
pub struct LocalServer {
    pub url: String,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl LocalServer {
    pub async fn start() -> anyhow::Result<LocalServer> {
        let dir = tempfile::tempdir()?;
        let hub = Hub::open(HubConfig::new(dir.path()))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/mcp", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(http::serve(
            hub,
            listener,
            HttpConfig::default(),
            shutdown.clone(),
        ));
        Ok(LocalServer {
            url,
            shutdown,
            task,
            _dir: dir,
        })
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await??;
        Ok(())
    }
}

/// Calls a tool; returns whether it failed and its structured content.
pub async fn call(client: &Client, tool: &str, args: Value) -> anyhow::Result<(bool, Value)> {
    let Value::Object(args) = args else {
        anyhow::bail!("arguments must be an object")
    };
    let r = client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
        .await?;
    Ok((
        r.is_error == Some(true),
        r.structured_content.unwrap_or(Value::Null),
    ))
}

/// Calls a tool that must succeed.
pub async fn ok(client: &Client, tool: &str, args: Value) -> anyhow::Result<Value> {
    match call(client, tool, args).await? {
        (false, v) => Ok(v),
        (true, v) => anyhow::bail!("{tool} failed: {v:#}"),
    }
}

/// Calls a tool that must fail with `code`.
pub async fn refused(
    client: &Client,
    tool: &str,
    args: Value,
    code: &str,
) -> anyhow::Result<Value> {
    match call(client, tool, args).await? {
        (true, v) if v["error"]["code"] == code => Ok(v),
        (_, v) => anyhow::bail!("{tool}: expected {code}, got {v:#}"),
    }
}

/// A JSON value for printing: strings without their quotes.
pub fn s(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}
