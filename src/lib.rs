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

pub mod eval;
pub mod graph;
pub mod locks;
pub mod mcp;
pub mod service;
pub mod store;
pub mod verify;
