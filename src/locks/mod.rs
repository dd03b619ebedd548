//! Locks and agents: the registry of connected agents, the lock table
//! (resources of every kind: functions, modules, paths, named resources and
//! semaphores; fair queues, waits, leases, fencing, deadlock refusal) and
//! the global structure lock. No MCP, no IO.
//!
//! Layout: `agents.rs` (registry, public ids, secret session handles),
//! `resource.rs` (what a lock names, and the one parser of each kind),
//! the lock table in four parts: `types.rs` (requests, claims, grants,
//! denials, views), `state.rs` (the synchronous state and every rule, with
//! `state/`: the overlap rule in `keys.rs`, the FIFO rule in
//! `conflicts.rs`, the deadlock reduction in `deadlock.rs`, ...),
//! `table.rs` (`LockTable`: the state behind one mutex, with its clock and
//! poison policy) and `wait.rs` (waiting in the queues, the sweeper);
//! `structure.rs` (structure lock).
//!
//! How to lock something (for the layers above): build a `LockRequest`
//! of `LockTarget`s, one per resource:
//! - a function: `LockTarget::function(id, ModuleName::of(&qualified_name),
//!   mode)`; its module places it inside the module's lock;
//! - a module, path or named resource: `LockTarget::new(resource, mode)`
//!   with `Resource::Module(ModuleName::parse(..)?)`,
//!   `Resource::Path(ResourcePath::parse(..)?)`,
//!   `Resource::Named(ResourceName::parse(..)?)`, or `Resource::parse` of
//!   the text form `kind:name`;
//! - a semaphore: `LockTarget::permits(name, k, capacity)`, the capacity
//!   given on first use and optional after.
//!
//! Then `LockTable::acquire` (or `try_acquire`), `release` by `Resource`,
//! `lease` to check a fencing token's lock before relying on it,
//! `held_against` to ask who is in the way of an edit without taking
//! anything, `status`, `break_lock` and `set_capacity` for operators.

pub mod agents;
pub mod resource;
mod state;
pub mod structure;
pub mod table;
pub mod types;
mod wait;

pub use agents::{AgentId, AgentInfo, AgentRegistry, CallGuard, SessionHandle, Transport};
pub use resource::{ModuleName, Resource, ResourceError, ResourceKind, ResourceName, ResourcePath};
pub use state::events::{LockEvent, LockEventKind};
pub use structure::StructureLock;
pub use table::LockTable;
pub use types::{
    AcquireError, Blocked, BrokenLease, CapacityError, Claim, Cycle, Denial, EndedAgent,
    FencingToken, Grant, HeldLock, HolderView, InvalidRequest, LeaseCheck, LockConfig, LockMode,
    LockRequest, LockTarget, LockView, SemaphoreUse, WaitProgress, WaiterView,
};
