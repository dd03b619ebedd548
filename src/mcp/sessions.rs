//! HTTP protocol sessions and their agents: a session's end ends its agent
//! at once, and a session idles out only while its agent is idle.
//!
//! rmcp's `LocalSessionManager` keeps one handler per `Mcp-Session-Id`,
//! and the agent ends when that handler drops. On DELETE the handler drops
//! only after rmcp has waited up to 5 s for calls still in flight (a lock
//! wait, say), and that call keeps its queue place meanwhile. This wrapper
//! ends the agent first, then lets rmcp close the session: the in-flight
//! wait is settled as "agent ended", and the locks and queue places are
//! gone before the DELETE is answered.
//!
//! Idle expiry is here too, instead of rmcp's keep-alive, which counts only
//! messages: a call that waits for a lock longer than the idle limit sends
//! none, and rmcp would close its session mid-call. A session is idle when
//! no message came for the limit and its agent has had no call in flight
//! and no activity for as long.
//!
//! The handler learns its slot from the `initialize` request: the wrapper
//! puts an [`AgentSlot`] into that request's extensions and keeps it by
//! session id; the handler writes its agent into it.
//!
//! A request whose JSON-RPC id is already in flight on its session is
//! answered at once with an invalid-request error. rmcp routes answers by
//! id, so a second request with the same id would take over the first's
//! response stream and leave that one open for ever.
//!
//! Every other request gets a [`Delivery`] in its extensions and its
//! response stream watched (`delivery.rs`): a stream that closes and is not
//! resumed within the grace period abandons its request.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use dashmap::DashMap;
use futures_core::Stream;
use rmcp::model::{
    ClientJsonRpcMessage, ErrorData, GetExtensions, JsonRpcError, RequestId, ServerJsonRpcMessage,
};
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError,
};
use rmcp::transport::streamable_http_server::session::{
    EventStore, ServerSseMessage, SessionId, SessionManager,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::delivery::{Delivery, Pending, Watched, http_request_number};
use crate::locks::AgentId;
use crate::service::{Hub, sweep_while_alive};

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
    idle: Duration,
    sessions: DashMap<SessionId, Tracked>,
    /// How long a response stream may stay closed before its request is
    /// abandoned.
    stream_grace: Duration,
    /// Requests whose answer is on its way, for `resume`.
    pending: Arc<Pending>,
}

struct Tracked {
    slot: AgentSlot,
    /// When the client last sent anything on this session.
    last_seen: Instant,
    /// The JSON-RPC ids of the session's requests whose response streams
    /// are open.
    in_flight: Arc<Mutex<HashSet<RequestId>>>,
}

impl AgentSessions {
    /// Wraps `inner` (whose own keep-alive is switched off) and starts the
    /// reaper that closes sessions idle for `idle`; it stops at `shutdown`.
    pub fn start(
        mut inner: LocalSessionManager,
        hub: Arc<Hub>,
        idle: Duration,
        stream_grace: Duration,
        shutdown: CancellationToken,
    ) -> Arc<AgentSessions> {
        inner.session_config.keep_alive = None;
        let sessions = Arc::new(AgentSessions {
            inner,
            hub,
            idle,
            sessions: DashMap::new(),
            stream_grace,
            pending: Arc::new(Pending::new()),
        });
        tokio::spawn(sweep_while_alive(
            Arc::downgrade(&sessions),
            idle,
            shutdown,
            reap_idle,
        ));
        sessions
    }

    fn touch(&self, id: &SessionId) {
        if let Some(mut tracked) = self.sessions.get_mut(id) {
            tracked.last_seen = Instant::now();
        }
    }

    fn is_idle(&self, tracked: &Tracked) -> bool {
        tracked.last_seen.elapsed() > self.idle
            && tracked
                .slot
                .0
                .get()
                .is_none_or(|agent| self.hub.agent_is_idle(*agent, self.idle))
    }

    /// Ends the session's agent, then the session.
    async fn end(
        &self,
        id: &SessionId,
        tracked: Option<Tracked>,
    ) -> Result<(), LocalSessionManagerError> {
        if let Some(agent) = tracked.as_ref().and_then(|t| t.slot.0.get()) {
            self.hub.end_agent(*agent);
        }
        self.inner.close_session(id).await
    }
}

/// Closes idle sessions, each decided atomically with its removal: a
/// message that arrives first keeps the session.
async fn reap_idle(sessions: Arc<AgentSessions>) {
    let candidates: Vec<SessionId> = sessions
        .sessions
        .iter()
        .filter(|e| sessions.is_idle(e.value()))
        .map(|e| e.key().clone())
        .collect();
    for id in candidates {
        let Some((_, tracked)) = sessions.sessions.remove_if(&id, |_, t| sessions.is_idle(t))
        else {
            continue;
        };
        tracing::info!(
            session_idle_s = sessions.idle.as_secs_f64(),
            "HTTP session was idle too long; ended it"
        );
        if let Err(e) = sessions.end(&id, Some(tracked)).await {
            tracing::warn!(error = %e, "closing an idle HTTP session");
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
        self.sessions.insert(
            id.clone(),
            Tracked {
                slot,
                last_seen: Instant::now(),
                in_flight: Arc::default(),
            },
        );
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    /// Every end of a session comes here or through the reaper: DELETE, and
    /// rmcp's worker when the session fails or the server stops.
    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        let tracked = self.sessions.remove(id).map(|(_, t)| t);
        self.end(id, tracked).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        mut message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        let claim = match &message {
            ClientJsonRpcMessage::Request(request) => self
                .sessions
                .get(id)
                .map(|t| Claim::take(&t.in_flight, &request.id)),
            _ => None,
        };
        let claim = match claim {
            Some(Err(duplicate)) => return Ok(Answer::refusal(duplicate)),
            Some(Ok(claim)) => Some(claim),
            None => None,
        };
        // rmcp streams only requests; anything else passes unwatched.
        let delivery = match &mut message {
            ClientJsonRpcMessage::Request(request) => {
                let delivery = Delivery::new(self.stream_grace, request.id.clone());
                request.request.extensions_mut().insert(delivery.clone());
                Some(delivery)
            }
            _ => None,
        };
        let stream = self.inner.create_stream(id, message).await?;
        let listing = Some((self.pending.clone(), id.clone()));
        Ok(Answer {
            inner: Some(Box::pin(Watched::new(stream, delivery, listing))),
            refusal: None,
            _claim: claim,
        })
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.touch(id);
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        let delivery = http_request_number(&last_event_id)
            .and_then(|n| self.pending.get(&(id.clone(), n)).map(|d| d.clone()));
        let stream = self.inner.resume(id, last_event_id).await?;
        if let Some(d) = &delivery {
            d.attach();
        }
        Ok(Watched::new(stream, delivery, None))
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.inner.event_store()
    }
}

/// A request id held in flight on its session until its response stream
/// is dropped (answered, or its client went away).
struct Claim {
    in_flight: Arc<Mutex<HashSet<RequestId>>>,
    id: RequestId,
}

impl Claim {
    /// Claims `id`, or gives it back when it is already in flight.
    fn take(
        in_flight: &Arc<Mutex<HashSet<RequestId>>>,
        id: &RequestId,
    ) -> Result<Claim, RequestId> {
        // A poisoned set only lost an insert or a remove; its ids are whole.
        let mut ids = in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if !ids.insert(id.clone()) {
            return Err(id.clone());
        }
        Ok(Claim {
            in_flight: in_flight.clone(),
            id: id.clone(),
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut ids = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        ids.remove(&self.id);
    }
}

type SseStream = Pin<Box<dyn Stream<Item = ServerSseMessage> + Send + Sync>>;

/// A request's response stream: rmcp's, holding the request's claim on
/// its id, or a lone refusal for a duplicate id.
struct Answer {
    inner: Option<SseStream>,
    refusal: Option<ServerSseMessage>,
    _claim: Option<Claim>,
}

impl Answer {
    fn refusal(id: RequestId) -> Answer {
        tracing::warn!(%id, "refused a request whose id is already in flight on its session");
        let error = ErrorData::invalid_request(
            format!(
                "request id {id} is already in flight on this session; give each request of a session its own id"
            ),
            None,
        );
        Answer {
            inner: None,
            refusal: Some(ServerSseMessage::from_message(ServerJsonRpcMessage::Error(
                JsonRpcError::new(Some(id), error),
            ))),
            _claim: None,
        }
    }
}

impl Stream for Answer {
    type Item = ServerSseMessage;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ServerSseMessage>> {
        let this = self.get_mut();
        if let Some(refusal) = this.refusal.take() {
            return Poll::Ready(Some(refusal));
        }
        match &mut this.inner {
            Some(stream) => stream.as_mut().poll_next(cx),
            None => Poll::Ready(None),
        }
    }
}
