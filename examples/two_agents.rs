//! Two agents over streamable HTTP racing for one function.
//!
//!     cargo run --example two_agents
//!
//! Starts cograph on 127.0.0.1 (a fresh store in a temporary directory),
//! connects Alice and Bob as two MCP protocol sessions, and prints what
//! each of them sees: a lock denial with the holder and Bob's queue
//! position, a stale edit refused with the diff of what changed, a
//! disjoint stale edit merged, and at last both changes in the program.

mod common;

use common::{LocalServer, ok, refused, s};
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{Value, json};

const TOTAL: &str = "\
/// Price of `qty` items with a fixed fee.
fn shop::total(qty: i64) -> i64 {
  %0 = param 0
  %1 = const 7
  %2 = mul %0, %1
  %3 = const 3
  %4 = add %2, %3
  %5 = return %4
}
";

fn set_const(node: &str, value: i64) -> Value {
    json!({"set_op": {"function": "shop::total", "node": node, "op": format!("const {value}")}})
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = LocalServer::start().await?;
    let url = server.url.clone();
    println!("cograph is serving {url}\n");

    let alice = ().serve(StreamableHttpClientTransport::from_uri(url.as_str())).await?;
    let bob = ().serve(StreamableHttpClientTransport::from_uri(url.as_str())).await?;
    let a = ok(
        &alice,
        "register_agent",
        json!({"name": "alice", "purpose": "raise the price"}),
    )
    .await?;
    let b = ok(
        &bob,
        "register_agent",
        json!({"name": "bob", "purpose": "raise the fee"}),
    )
    .await?;
    println!(
        "alice is {}, bob is {}",
        s(&a["agent_id"]),
        s(&b["agent_id"])
    );
    ok(
        &alice,
        "propose_edit",
        json!({"ops": [{"create_function": {"text": TOTAL}}]}),
    )
    .await?;
    println!("alice created shop::total\n");

    // 1. The race for the write lock.
    let lock = json!({"locks": [{"function": "shop::total", "mode": "write"}]});
    let held = ok(&alice, "acquire_locks", lock.clone()).await?;
    println!(
        "alice holds the write lock on shop::total (fencing token {})",
        s(&held["fencing_token"])
    );
    let denied = refused(&bob, "acquire_locks", lock.clone(), "lock_denied").await?;
    let blocked = &denied["blocked"][0];
    println!(
        "bob is denied: held by {} ({}, \"{}\"); bob would be number {} in the queue ({} waiting now)",
        s(&blocked["holders"][0]["agent_name"]),
        s(&blocked["holders"][0]["mode"]),
        blocked["holders"][0]["purpose"].as_str().unwrap_or(""),
        s(&blocked["queue_position"]),
        s(&blocked["queue_length"]),
    );

    // Bob reads now: his edits below will be checked against this version.
    let base = ok(&bob, "get_function", json!({"function": "shop::total"})).await?["hash"].clone();
    ok(&alice, "get_function", json!({"function": "shop::total"})).await?;
    let done = ok(
        &alice,
        "propose_edit",
        json!({"ops": [set_const("%1", 9)], "purpose": "price 7 -> 9"}),
    )
    .await?;
    ok(&alice, "release_locks", json!({})).await?;
    println!(
        "alice commits revision {} (price 7 -> 9) and releases\n",
        s(&done["revision"])
    );

    // 2. Bob's edit of the same node, written against his stale read.
    let conflict = refused(
        &bob,
        "propose_edit",
        json!({"ops": [set_const("%1", 8)]}),
        "conflict",
    )
    .await?;
    let c = &conflict["conflicts"][0];
    println!("bob's stale edit of %1 is refused as a conflict:");
    for commit in c["commits"].as_array().into_iter().flatten() {
        println!(
            "  in between: r{} by {}: {}",
            s(&commit["revision"]),
            s(&commit["agent_name"]),
            s(&commit["summary"])
        );
    }
    for n in c["diff"]["nodes_changed"].as_array().into_iter().flatten() {
        println!(
            "  changed {}: {} -> {}",
            s(&n["id"]),
            s(&n["before"]["op"]),
            s(&n["after"]["op"])
        );
    }

    // 3. A disjoint edit against the same stale base is rebased.
    let merged = ok(
        &bob,
        "propose_edit",
        json!({"ops": [set_const("%3", 5)], "base": {"shop::total": base}, "purpose": "fee 3 -> 5"}),
    )
    .await?;
    println!(
        "\nbob's edit of %3 (fee 3 -> 5), against the same stale base, merges: revision {}, merged = {}",
        s(&merged["revision"]),
        s(&merged["functions"][0]["merged"])
    );

    // 4. Both changes are in, and the program still verifies.
    let now = ok(&bob, "get_function", json!({"function": "shop::total"})).await?;
    println!("\nshop::total now:\n{}", now["text"].as_str().unwrap_or(""));
    let run = ok(
        &alice,
        "run_function",
        json!({"function": "shop::total", "args": [2]}),
    )
    .await?;
    println!("shop::total(2) = {} (2 * 9 + 5)", s(&run["value"]));
    let verified = ok(&bob, "verify_all", json!({})).await?;
    println!(
        "verify_all: ok = {}, {} functions, root {}",
        s(&verified["ok"]),
        s(&verified["n_functions"]),
        &verified["root_hash"].as_str().unwrap_or("")[..16]
    );

    alice.cancel().await?;
    bob.cancel().await?;
    server.stop().await?;
    Ok(())
}
