//! Protocol sessions over HTTP end their agents at once.
//!
//! rmcp's `LocalSessionManager` keeps one handler per `Mcp-Session-Id`,
//! and the agent ends when that handler drops. On DELETE the handler drops
//! only after rmcp has waited up to 5 s for calls still in flight (a lock
//! wait, say), and that call keeps its queue place meanwhile. This wrapper
//! ends the agent first, then lets rmcp close the session: the in-flight
//! wait is settled as "agent ended", and the locks and queue places are
//! gone before the DELETE is answered.
//!
//! The handler learns its slot from the `initialize` request: the wrapper
//! puts an [`AgentSlot`] into that request's extensions and keeps it by
//! session id; the handler writes its agent into it.

use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use futures_core::Stream;
use rmcp::model::{ClientJsonRpcMessage, GetExtensions, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError,
};
use rmcp::transport::streamable_http_server::session::{
    EventStore, ServerSseMessage, SessionId, SessionManager,
};

use crate::locks::AgentId;
use crate::service::Hub;

/// Where a protocol session's handler records its agent.
#[derive(Clone, Default, Debug)]
pub struct AgentSlot(Arc<OnceLock<AgentId>>);

impl AgentSlot {
    /// Records the session's agent; a second call keeps the first.
    pub fn bind(&self, agent: AgentId) {
        let _ = self.0.set(agent);
    }
}

pub struct AgentSessions {
    inner: LocalSessionManager,
    hub: Arc<Hub>,
    slots: DashMap<SessionId, AgentSlot>,
}

impl AgentSessions {
    pub fn new(inner: LocalSessionManager, hub: Arc<Hub>) -> AgentSessions {
        AgentSessions {
            inner,
            hub,
            slots: DashMap::new(),
        }
    }
}

impl SessionManager for AgentSessions {
    type Error = LocalSessionManagerError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        self.inner.create_session().await
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        mut message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        let slot = AgentSlot::default();
        if let ClientJsonRpcMessage::Request(request) = &mut message {
            request.request.extensions_mut().insert(slot.clone());
        }
        self.slots.insert(id.clone(), slot);
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    /// Every end of a session comes here: DELETE, and rmcp's worker when
    /// the session idles out or fails.
    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        if let Some((_, slot)) = self.slots.remove(id)
            && let Some(agent) = slot.0.get()
        {
            self.hub.end_agent(*agent);
        }
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_stream(id, message).await
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.resume(id, last_event_id).await
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.inner.event_store()
    }
}
