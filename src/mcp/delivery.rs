//! Whether a legacy-session request's answer reached its client. A client
//! whose connection drops may resume the response stream (`Last-Event-ID`),
//! so a closed stream alone is not a cancellation; but a request whose
//! stream stays closed, with no resumed stream, for [`STREAM_GRACE`] is
//! abandoned: what waits on it (a lock wait) is cancelled, and what it was
//! given (a grant) is given back, since nobody will ever hear of it.
//!
//! `AgentSessions::create_stream` gives each request a [`Delivery`] (in the
//! request's extensions, where the tool finds it) and wraps its response
//! stream in a [`Watched`] stream, which marks the answer delivered when
//! it passes and detaches when the stream drops; `resume` attaches a new
//! `Watched` stream to the same `Delivery`. This file knows nothing of
//! locks: tools register what to do if the answer is lost.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use dashmap::DashMap;
use futures_core::Stream;
use rmcp::model::{RequestId, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::{ServerSseMessage, SessionId};

/// How long a request's response stream may stay closed, unresumed,
/// before the request counts as abandoned (`cograph serve` default).
pub const STREAM_GRACE: Duration = Duration::from_secs(5);

/// The streams of requests not yet answered, by session and rmcp's
/// per-session HTTP request number (the part after `/` of an event id),
/// so that a resumed stream finds its request's `Delivery`.
pub(crate) type Pending = DashMap<(SessionId, u64), Delivery>;

type Action = Box<dyn FnOnce() + Send>;

/// One request's answer on its way to the client.
#[derive(Clone)]
pub struct Delivery(Arc<DeliveryState>);

struct DeliveryState {
    grace: Duration,
    /// The request whose answer this is.
    request: RequestId,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    delivered: bool,
    lost: bool,
    /// Streams open for this request now.
    attached: usize,
    /// Raised on every attach, so a grace timer started before knows that
    /// a stream came back meanwhile.
    generation: u64,
    on_lost: Vec<Action>,
    /// Where this request is listed for `resume`, to unlist it at the end.
    listed: Option<(Arc<Pending>, (SessionId, u64))>,
}

impl Delivery {
    /// The delivery of `request`'s answer, with one stream attached.
    pub(crate) fn new(grace: Duration, request: RequestId) -> Delivery {
        Delivery(Arc::new(DeliveryState {
            grace,
            request,
            inner: Mutex::new(Inner {
                attached: 1,
                ..Inner::default()
            }),
        }))
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The critical sections only set flags and move closures out; a
        // panic inside one leaves nothing half-changed.
        self.0.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `action` if the answer is lost: at once if it already is, never
    /// once it was delivered.
    pub fn on_lost(&self, action: impl FnOnce() + Send + 'static) {
        let mut g = self.inner();
        if g.delivered {
            return;
        }
        if g.lost {
            drop(g);
            action();
            return;
        }
        g.on_lost.push(Box::new(action));
    }

    fn list(&self, pending: &Arc<Pending>, key: (SessionId, u64)) {
        let mut g = self.inner();
        if g.listed.is_none() && !g.delivered && !g.lost {
            pending.insert(key.clone(), self.clone());
            g.listed = Some((pending.clone(), key));
        }
    }

    pub(crate) fn attach(&self) {
        let mut g = self.inner();
        g.attached += 1;
        g.generation += 1;
    }

    fn delivered(&self) {
        let mut g = self.inner();
        g.delivered = true;
        g.on_lost.clear();
        let listed = g.listed.take();
        drop(g);
        unlist(listed);
    }

    /// A stream closed; with none left, the grace period starts.
    fn detach(&self) {
        let mut g = self.inner();
        g.attached = g.attached.saturating_sub(1);
        if g.delivered || g.lost || g.attached > 0 {
            return;
        }
        let generation = g.generation;
        drop(g);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return self.lose(generation);
        };
        let me = self.clone();
        runtime.spawn(async move {
            tokio::time::sleep(me.0.grace).await;
            me.lose(generation);
        });
    }

    /// Declares the answer lost unless a stream came back since
    /// `generation` or it was delivered, and runs what was registered.
    fn lose(&self, generation: u64) {
        let mut g = self.inner();
        if g.delivered || g.lost || g.attached > 0 || g.generation != generation {
            return;
        }
        g.lost = true;
        let actions = std::mem::take(&mut g.on_lost);
        let listed = g.listed.take();
        drop(g);
        unlist(listed);
        tracing::info!(
            grace_s = self.0.grace.as_secs_f64(),
            "a request's response stream closed and was not resumed; abandoning it"
        );
        for action in actions {
            action();
        }
    }
}

fn unlist(listed: Option<(Arc<Pending>, (SessionId, u64))>) {
    if let Some((pending, key)) = listed {
        pending.remove(&key);
    }
}

/// The rmcp HTTP request number in an event id `index/number`.
pub(crate) fn http_request_number(event_id: &str) -> Option<u64> {
    event_id.split_once('/')?.1.parse().ok()
}

/// A request's response stream, watched: the answer passing marks it
/// delivered; the stream dropping before that detaches it.
/// Without a delivery it only passes events through.
pub(crate) struct Watched {
    inner: Pin<Box<dyn Stream<Item = ServerSseMessage> + Send + Sync>>,
    delivery: Option<Delivery>,
    listing: Option<(Arc<Pending>, SessionId)>,
}

impl Watched {
    /// Watches `inner`, the stream of `delivery`'s request. Given
    /// `listing`, the stream lists its delivery for `resume` under the HTTP
    /// request number its first event names.
    pub(crate) fn new(
        inner: impl Stream<Item = ServerSseMessage> + Send + Sync + 'static,
        delivery: Option<Delivery>,
        listing: Option<(Arc<Pending>, SessionId)>,
    ) -> Watched {
        Watched {
            inner: Box::pin(inner),
            delivery,
            listing,
        }
    }
}

impl Stream for Watched {
    type Item = ServerSseMessage;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let polled = this.inner.as_mut().poll_next(cx);
        if let (Poll::Ready(Some(event)), Some(delivery)) = (&polled, &this.delivery) {
            if let Some(number) = event.event_id.as_deref().and_then(http_request_number)
                && let Some((pending, session)) = this.listing.take()
            {
                delivery.list(&pending, (session, number));
            }
            if event
                .message
                .as_deref()
                .is_some_and(|m| answers(m, &delivery.0.request))
            {
                delivery.delivered();
            }
        }
        polled
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(delivery) = &self.delivery {
            delivery.detach();
        }
    }
}

/// Returns true if and only if `message` is the final answer to `request`.
fn answers(message: &ServerJsonRpcMessage, request: &RequestId) -> bool {
    match message {
        ServerJsonRpcMessage::Response(r) => &r.id == request,
        ServerJsonRpcMessage::Error(e) => e.id.as_ref() == Some(request),
        _ => false,
    }
}
