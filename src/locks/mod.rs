//! Locks and agents: the registry of connected agents, the per-function
//! lock table (fair queues, waits, leases, fencing, deadlock refusal) and
//! the global structure lock. No MCP, no IO.
//!
//! Layout: `agents.rs` (registry, public ids, secret session handles),
//! `table.rs` (the lock table), `structure.rs` (structure lock).

pub mod agents;
pub mod structure;
pub mod table;

pub use agents::{AgentId, AgentInfo, AgentRegistry, CallGuard, SessionHandle, Transport};
pub use structure::StructureLock;
pub use table::{
    AcquireError, Blocked, Denial, EndedAgent, FencingToken, Grant, HeldLock, HolderView,
    LeaseCheck, LockConfig, LockMode, LockRequest, LockTable, LockTarget, LockView, WaitProgress,
    WaiterView,
};
