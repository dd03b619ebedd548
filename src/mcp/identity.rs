//! How a call finds its agent (DESIGN.md section 7):
//! - stdio (and in-process): the connection is the agent, created when the
//!   handler is and ended when it drops;
//! - HTTP with a protocol session (clients on 2025-11-25 or older): the
//!   agent is created at `initialize`; rmcp keeps one handler per session,
//!   and the agent ends when the session does (DELETE, idle timeout,
//!   shutdown; see `sessions.rs`) or at the latest when the handler drops;
//! - HTTP without a protocol session (2026-07-28): the handler lives for
//!   one request and has no agent; `register_agent` creates one and
//!   returns a secret `session` handle that later calls pass as `session`.
//!
//! This file resolves identities; it does not decide what an agent may do.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use rmcp::RoleServer;
use rmcp::service::RequestContext;

use super::error::ToolFailure;
use super::server::CographServer;
use super::types::SessionArg;
use crate::locks::{AgentId, Transport};
use crate::service::{AgentSession, Hub};

/// How a handler's agent comes to be.
pub(crate) enum Binding {
    /// Created with the handler (stdio, in-process).
    Connection,
    /// Created at `initialize` (HTTP with a protocol session).
    OnInitialize,
}

pub(crate) struct Identity {
    pub(crate) binding: Binding,
    pub(crate) transport: Transport,
    pub(crate) session: OnceLock<AgentSession>,
    /// The agent chose its name (register_agent): do not overwrite it with
    /// the client's name.
    pub(crate) named: AtomicBool,
    /// Legacy `resources/subscribe` subscriptions of this session.
    pub(crate) subscriptions: super::subscriptions::Subscriptions,
}

impl Identity {
    fn new(binding: Binding, transport: Transport) -> Identity {
        Identity {
            binding,
            transport,
            session: OnceLock::new(),
            named: AtomicBool::new(false),
            subscriptions: Default::default(),
        }
    }
}

impl CographServer {
    /// A handler whose connection is one agent (stdio, in-process).
    pub fn for_connection(hub: Arc<Hub>, transport: Transport, name: &str) -> CographServer {
        let identity = Identity::new(Binding::Connection, transport);
        let _ = identity.session.set(hub.connect(name, transport));
        CographServer {
            hub,
            identity: Arc::new(identity),
        }
    }

    /// A handler for HTTP: the agent appears at `initialize` if the client
    /// opens a protocol session; stateless requests have none.
    pub fn for_http(hub: Arc<Hub>) -> CographServer {
        CographServer {
            hub,
            identity: Arc::new(Identity::new(Binding::OnInitialize, Transport::HttpSession)),
        }
    }

    /// The agent bound to this connection, if any.
    pub fn bound_agent(&self) -> Option<AgentId> {
        self.identity.session.get().map(AgentSession::id)
    }

    /// Names an agent after its client unless it chose a name itself.
    pub(crate) fn adopt_client_name(&self, agent: AgentId, client: &str) {
        if !self.identity.named.load(Ordering::Relaxed) && !client.is_empty() {
            self.hub.update_agent(agent, Some(clean_name(client)), None);
        }
    }

    /// Remembers that this connection's agent chose its own name.
    pub(crate) fn mark_named(&self) {
        self.identity.named.store(true, Ordering::Relaxed);
    }

    /// The caller's agent: from `session` if given, else this connection's.
    pub(crate) fn caller(
        &self,
        session: &SessionArg,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<Option<AgentId>, ToolFailure> {
        if let Some(handle) = session {
            return match self.hub.resolve_session(handle) {
                Some(id) => Ok(Some(id)),
                None => Err(ToolFailure::unknown_session()),
            };
        }
        let agent = self.bound_agent();
        if let Some(agent) = agent
            && let Some(info) = ctx.meta.client_info()
        {
            self.adopt_client_name(agent, &info.name);
        }
        Ok(agent)
    }

    /// The caller's agent, which this call cannot do without.
    pub(crate) fn require_caller(
        &self,
        session: &SessionArg,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<AgentId, ToolFailure> {
        self.caller(session, ctx)?
            .ok_or_else(ToolFailure::session_required)
    }
}

/// A client-given name made fit to show: no control characters, at most
/// 100 characters, never blank.
pub(crate) fn clean_name(name: &str) -> String {
    let cleaned: String = name.chars().filter(|c| !c.is_control()).take(100).collect();
    if cleaned.trim().is_empty() {
        "agent".into()
    } else {
        cleaned
    }
}
