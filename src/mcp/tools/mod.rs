//! The tools, in groups with their own routers, merged into one:
//! `agents.rs` (register_agent, list_agents), `program.rs` (reads and
//! runs), `locks.rs` (acquire, release, status), `edits.rs` (propose_edit,
//! history, diff). Each tool checks its arguments, converts them, calls one
//! `Hub` method and converts the answer; no tool decides anything the
//! service decides.

mod agents;
mod edits;
mod locks;
mod program;

use std::time::{Duration, Instant};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};

use super::error::{ToolFailure, bad_arg};
use super::server::{CographServer, MAX_WAIT};
use super::summary::Out;
use super::types::*;
use super::{convert, views};
use crate::graph::{ContentHash, Revision};
use crate::service::{EditRequest, Hub, OnConflict, VersionSel};

type ToolResult<T> = Result<Out<T>, ToolFailure>;

/// Every tool of every group.
pub(super) fn router() -> ToolRouter<CographServer> {
    CographServer::agents_tools()
        + CographServer::program_tools()
        + CographServer::locks_tools()
        + CographServer::edits_tools()
}

/// A free-text argument: at most `max` characters, no control characters.
fn check_text_arg(field: &str, value: &Option<String>, max: usize) -> Result<(), ToolFailure> {
    if let Some(v) = value
        && (v.chars().count() > max || v.chars().any(char::is_control))
    {
        return Err(bad_arg(
            field,
            format!("at most {max} characters, without control characters"),
        ));
    }
    Ok(())
}
