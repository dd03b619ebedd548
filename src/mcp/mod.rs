//! The MCP adapter: the only part of cograph that knows MCP, rmcp, axum or
//! JSON schemas. It maps tool calls onto the service and service results
//! and errors back onto tool results.
//!
//! Layout: `server.rs` (the handler and its tools, identity), `types.rs`
//! (wire types with schemas), `views.rs` and `convert.rs` (conversions),
//! `summary.rs` (text summaries), `error.rs` (the one error mapping);
//! `http.rs` (streamable HTTP and its guard), `sessions.rs` (HTTP protocol
//! sessions ending their agents), `hub.rs` (the stdio hub), `admin.rs`
//! (the operator's socket: agents, end-agent, break-lock, set-capacity,
//! import; and shell agents and the git guard, `admin/shell.rs`), `lines.rs`
//! (newline-delimited JSON-RPC for stdio and the hub's socket),
//! `requests.rs` (answers to requests rmcp cannot decode), `schemas.rs`.

pub mod convert;
pub mod delivery;
pub mod error;
pub mod identity;
mod lines;
pub mod reference;
pub mod requests;
pub mod resources;
pub mod server;
mod subscriptions;
pub mod summary;
mod tools;
pub mod types;
pub mod views;

pub use server::CographServer;
pub mod admin;
pub mod http;
pub mod hub;
pub mod schemas;
pub mod sessions;
pub mod web;
