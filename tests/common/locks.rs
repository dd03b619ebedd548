//! Helpers shared by the lock table's own tests (`locks_model.rs`,
//! `locks_timing.rs`), which include this file with `#[path]`: a request in
//! one line, and letting spawned waiters run on tokio's paused clock.
//!
//! The MCP harness in `mod.rs` is a different thing: these tests drive
//! `LockTable` directly, with no server and no client.

use std::time::Duration;

use cograph::graph::FunctionId;
use cograph::locks::{AgentId, LockMode, LockRequest, LockTarget};

/// Agent `agent` asks for each `(function id, mode)`, with a lease of
/// `ttl_ms` (`None`: the table's default) and no purpose.
pub fn req(agent: u64, fs: &[(u64, LockMode)], ttl_ms: Option<u64>) -> LockRequest {
    LockRequest {
        agent: AgentId(agent),
        targets: fs
            .iter()
            .map(|(f, m)| LockTarget {
                function: FunctionId(*f),
                mode: *m,
            })
            .collect(),
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
