//! A 2026-07-28 client: no `initialize`, no `Mcp-Session-Id`, identity by
//! `register_agent`'s secret handle.
//!
//!     cargo run --example stateless_client
//!
//! Starts cograph on 127.0.0.1 (a fresh store in a temporary directory),
//! connects one client that negotiates MCP 2026-07-28, so every request
//! stands alone, and prints how it gets and uses an agent identity.

mod common;

use common::{LocalServer, call, ok, s};
use rmcp::model::ProtocolVersion;
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = LocalServer::start().await?;
    let url = server.url.clone();
    println!("cograph is serving {url}");

    let client = ()
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_uri(url.as_str()),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await?;
    println!("connected with MCP 2026-07-28: no protocol session\n");

    let lock = json!({"locks": [{"function": "demo::answer", "mode": "write"}]});

    // Without an identity, calls that act for an agent are refused with a
    // hint that says what to do.
    let (failed, r) = call(&client, "acquire_locks", lock.clone()).await?;
    println!(
        "acquire_locks without a session: failed = {failed}, code = {}\n  hint: {}",
        s(&r["error"]["code"]),
        s(&r["error"]["hint"])
    );

    // register_agent creates the agent and returns its secret handle.
    let me = ok(
        &client,
        "register_agent",
        json!({"name": "stateless-demo", "purpose": "show identity without sessions"}),
    )
    .await?;
    let session = me["session"].as_str().unwrap_or_default().to_string();
    println!(
        "\nregister_agent: public agent_id {}, transport {}, secret session handle {}… ({} chars)",
        s(&me["agent_id"]),
        s(&me["transport"]),
        &session[..8.min(session.len())],
        session.len()
    );

    // Every later call carries the handle as its `session` argument.
    let text = "fn demo::answer() -> i64 {\n  %0 = const 42\n  %1 = return %0\n}\n";
    let created = ok(
        &client,
        "propose_edit",
        json!({"ops": [{"create_function": {"text": text}}], "session": session}),
    )
    .await?;
    println!(
        "propose_edit with the handle: {} at revision {}",
        s(&created["status"]),
        s(&created["revision"])
    );
    let granted = ok(
        &client,
        "acquire_locks",
        json!({"locks": lock["locks"], "session": session}),
    )
    .await?;
    println!(
        "acquire_locks with the handle: write lock, fencing token {}",
        s(&granted["fencing_token"])
    );
    let status = ok(
        &client,
        "lock_status",
        json!({"function": "demo::answer", "session": session}),
    )
    .await?;
    println!(
        "lock_status: held by {} (the public id, never the handle)",
        s(&status["locks"][0]["holders"][0]["agent_id"])
    );

    // A wrong handle is an error, never someone else's identity.
    let (failed, r) = call(
        &client,
        "release_locks",
        json!({"session": "not-the-handle"}),
    )
    .await?;
    println!(
        "release_locks with a wrong handle: failed = {failed}, code = {}",
        s(&r["error"]["code"])
    );
    let released = ok(&client, "release_locks", json!({"session": session})).await?;
    println!(
        "release_locks with the handle: released {} lock(s)",
        released["released"].as_array().map_or(0, Vec::len)
    );

    client.cancel().await?;
    server.stop().await?;
    Ok(())
}
