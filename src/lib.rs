//! cograph: an MCP server that lets many LLM agents edit one shared program
//! graph at the same time without corrupting it or losing work.
//!
//! # Layout
//!
//! Dependencies point one way, from the protocol down to the data:
//!
//! - [`graph`]: the program graph as pure data: ids, types, ops, functions,
//!   the canonical hash, the text form, edit ops, diff and rebase.
//! - [`verify`]: diagnostics for a whole program or for what an edit can
//!   affect.
//! - [`eval`]: the interpreter, with step and depth budgets.
//! - [`locks`]: the lock table (queues, leases, fencing, deadlock refusal)
//!   and the agent registry.
//! - [`store`]: the SQLite commit log with group commit and recovery.
//! - [`service`]: the hub, the commit pipeline that ties the above
//!   together: snapshots, optimistic checks, rebase, verification, publish.
//! - [`mcp`]: the only module that knows MCP: tools, argument and result
//!   types, error mapping, identity, HTTP and the stdio hub.
//!
//! See ARCHITECTURE.md for the invariants.

pub mod eval;
pub mod graph;
pub mod histogram;
pub mod locks;
pub mod mcp;
pub mod service;
pub mod store;
pub mod verify;
