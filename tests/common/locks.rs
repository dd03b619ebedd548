//! Helpers shared by the lock table's own tests (`locks_model.rs`,
//! `locks_timing.rs`), which include this file with `#[path]`: a request in
//! one line, and letting spawned waiters run on tokio's paused clock.
//!
//! The MCP harness in `mod.rs` is a different thing: these tests drive
//! `LockTable` directly, with no server and no client. Each test uses
//! some of these helpers.
#![allow(dead_code)]

use std::time::Duration;

use cograph::graph::FunctionId;
use cograph::locks::{AgentId, LockMode, LockRequest, LockTarget, ModuleName, Resource};

/// The module every function of these tests lives in.
pub fn module() -> ModuleName {
    ModuleName::parse("m").unwrap()
}

/// Function `f` as a resource.
pub fn fun(f: u64) -> Resource {
    Resource::Function(FunctionId(f))
}

/// Agent `agent` asks for each `(function id, mode)` (functions of module
/// `m`), with a lease of `ttl_ms` (`None`: the table's default) and no
/// purpose.
pub fn req(agent: u64, fs: &[(u64, LockMode)], ttl_ms: Option<u64>) -> LockRequest {
    let targets = fs
        .iter()
        .map(|(f, m)| LockTarget::function(FunctionId(*f), module(), *m))
        .collect();
    req_for(agent, targets, ttl_ms)
}

/// Agent `agent` asks for `targets`, with a lease of `ttl_ms`.
pub fn req_for(agent: u64, targets: Vec<LockTarget>, ttl_ms: Option<u64>) -> LockRequest {
    LockRequest {
        agent: AgentId(agent),
        targets,
        ttl: ttl_ms.map(Duration::from_millis),
        purpose: None,
    }
}

/// Lets every task that can make progress run (a spawned waiter takes its
/// queue place or collects its grant), without moving the clock: a bounded
/// number of yields to the current-thread scheduler.
pub async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}
