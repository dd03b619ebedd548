//! Locks and agents: the registry of connected agents, the per-function
//! lock table (fair queues, waits, leases, fencing, deadlock refusal) and
//! the global structure lock. No MCP, no IO.
//!
//! Layout: `agents.rs` (registry, public ids, secret session handles),
//! the lock table in four parts: `types.rs` (requests, grants, denials,
//! views), `state.rs` (the synchronous state and every rule, with
//! `state/deadlock.rs` and `state/views.rs`), `table.rs` (`LockTable`: the
//! state behind one mutex, with its clock and poison policy) and `wait.rs`
//! (waiting in the queues, the sweeper); `structure.rs` (structure lock).

pub mod agents;
mod state;
pub mod structure;
pub mod table;
pub mod types;
mod wait;

pub use agents::{AgentId, AgentInfo, AgentRegistry, CallGuard, SessionHandle, Transport};
pub use structure::StructureLock;
pub use table::LockTable;
pub use types::{
    AcquireError, Blocked, BrokenLease, Denial, EndedAgent, FencingToken, Grant, HeldLock,
    HolderView, LeaseCheck, LockConfig, LockMode, LockRequest, LockTarget, LockView, WaitProgress,
    WaiterView,
};
