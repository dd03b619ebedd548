//! Resource subscriptions: who hears what, and the one loop that tells
//! them. A subscriber names resource URIs (`resources.rs` says which can be
//! subscribed); the loop wakes when a commit is published or a request
//! joins a lock queue, compares what it last saw with what is there now,
//! and sends `notifications/resources/updated` for each URI whose content
//! changed in a way that URI is about:
//!
//! - `cograph://function/{name}`: the function's content hash changed (or
//!   it appeared or went);
//! - `cograph://reads`: a function the agent read was changed by someone
//!   else (its current hash is no longer the one the agent read; its own
//!   commits move its reads along, so they do not count);
//! - `cograph://locks/mine`: someone new waits behind a lock the agent
//!   holds (reading the resource says who, and for what purpose);
//! - `cograph://log`: a commit landed.
//!
//! The same loop serves both protocol eras: the legacy `resources/subscribe`
//! (the set of URIs grows per session, and the loop runs until the session
//! ends) and 2026-07-28's `subscriptions/listen` (a fixed set for one
//! request). Nothing runs, and nothing is pushed, without a subscription;
//! between changes the loop sleeps on two watch channels and costs no CPU.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::resources::Uri;
use crate::graph::{ContentHash, FunctionId, Program};
use crate::locks::AgentId;
use crate::service::Hub;

/// The most URIs one session may subscribe to: a bound, so that a client
/// cannot make the loop's work grow without limit.
pub const MAX_SUBSCRIPTIONS: usize = 1024;

/// A legacy session's subscriptions, and the loop that serves them, which
/// stops when this is dropped (the session's handler went).
#[derive(Default)]
pub(crate) struct Subscriptions {
    uris: Arc<Mutex<BTreeSet<String>>>,
    running: Mutex<Option<CancellationToken>>,
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        if let Some(ct) = self.running.get_mut().ok().and_then(Option::take) {
            ct.cancel();
        }
    }
}

impl Subscriptions {
    /// Adds `uri`; returns false if the session already has the most it
    /// may. Calls `start` with the URI set the first time, to run the loop.
    pub(crate) fn add(
        &self,
        uri: String,
        start: impl FnOnce(Arc<Mutex<BTreeSet<String>>>, CancellationToken),
    ) -> bool {
        {
            let mut uris = self.uris.lock().unwrap_or_else(|p| p.into_inner());
            if uris.len() >= MAX_SUBSCRIPTIONS && !uris.contains(&uri) {
                return false;
            }
            uris.insert(uri);
        }
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.is_none() {
            let ct = CancellationToken::new();
            start(self.uris.clone(), ct.clone());
            *running = Some(ct);
        }
        true
    }

    pub(crate) fn remove(&self, uri: &str) {
        self.uris
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uri);
    }
}

/// What the loop last saw, to tell what is new.
struct Seen {
    program: Arc<Program>,
    /// Functions whose current version is not the one the agent read.
    stale_reads: BTreeSet<FunctionId>,
    /// (waiter, resource) pairs waiting behind the agent's locks.
    behind: BTreeSet<(AgentId, String)>,
}

/// Changes closer together than this make one wake-up of a subscription;
/// a notification comes at most this much later.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(10);

fn stale_reads(hub: &Hub, agent: Option<AgentId>, program: &Program) -> BTreeSet<FunctionId> {
    let Some(agent) = agent else {
        return BTreeSet::new();
    };
    hub.reads_of(agent)
        .into_iter()
        .filter(|(id, read)| program.get(*id).map(|e| e.hash) != Some(*read))
        .map(|(id, _)| id)
        .collect()
}

fn behind(hub: &Hub, agent: Option<AgentId>) -> BTreeSet<(AgentId, String)> {
    let Some(agent) = agent else {
        return BTreeSet::new();
    };
    hub.waiting_behind(agent)
        .into_iter()
        .map(|w| (w.agent, w.resource.to_string()))
        .collect()
}

fn function_hash(program: &Program, name: &str) -> Option<ContentHash> {
    let resolve = program.resolver();
    let id = resolve(&crate::graph::FunctionRef::parse(name).ok()?)?;
    program.get(id).map(|e| e.hash)
}

/// Runs until `ct` is cancelled or `send` returns false (the peer is
/// gone): on every published commit and every new queued request, sends
/// each URI of `uris()` whose resource changed in the way it is about.
pub(crate) async fn forward<U, S, Fut>(
    hub: Arc<Hub>,
    agent: Option<AgentId>,
    uris: U,
    send: S,
    ct: CancellationToken,
) where
    U: Fn() -> Vec<String>,
    S: Fn(String) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut revisions = hub.revisions();
    let mut queued = hub.queue_changes();
    let program = hub.snapshot();
    // What a wake-up looks at is only what some subscription is about:
    // the agent's reads for `reads`, the queues behind it for `locks/mine`
    // (which takes the lock table's mutex).
    let wants = |which: fn(&Uri) -> bool| {
        uris()
            .iter()
            .any(|u| Uri::parse(u).as_ref().is_some_and(which))
    };
    let mut seen = Seen {
        stale_reads: stale_reads(&hub, agent, &program),
        behind: behind(&hub, agent),
        program,
    };
    loop {
        tokio::select! {
            _ = ct.cancelled() => return,
            changed = revisions.changed() => if changed.is_err() { return },
            changed = queued.changed() => if changed.is_err() { return },
        }
        // A burst of commits or queue joins makes one wake-up.
        tokio::time::sleep(COALESCE).await;
        revisions.mark_unchanged();
        queued.mark_unchanged();
        let program = hub.snapshot();
        let now = Seen {
            stale_reads: if wants(|u| matches!(u, Uri::Reads)) {
                stale_reads(&hub, agent, &program)
            } else {
                BTreeSet::new()
            },
            behind: if wants(|u| matches!(u, Uri::Mine)) {
                behind(&hub, agent)
            } else {
                BTreeSet::new()
            },
            program,
        };
        let mut due: BTreeSet<String> = BTreeSet::new();
        for uri in uris() {
            let changed = match Uri::parse(&uri) {
                Some(Uri::Function(name)) => {
                    function_hash(&seen.program, &name) != function_hash(&now.program, &name)
                }
                Some(Uri::Reads) => !now.stale_reads.is_subset(&seen.stale_reads),
                Some(Uri::Mine) => !now.behind.is_subset(&seen.behind),
                Some(Uri::Log) => now.program.revision() != seen.program.revision(),
                _ => false,
            };
            if changed {
                due.insert(uri);
            }
        }
        seen = now;
        for uri in due {
            if !send(uri).await {
                return;
            }
        }
    }
}
