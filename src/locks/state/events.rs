//! The lock table's recent history: grants, releases, expiries, breaks and
//! deadlock refusals, kept in memory so that people can see who held what
//! in the last hour (the page, the `cograph://locks` resource).
//!
//! Bounded twice: at most `MAX_EVENTS` entries, and none older than
//! `MAX_AGE`; the oldest go first. An event is appended where the state
//! changes, under the table's mutex, so the log's order is the table's
//! order. It is not persisted: like locks, it ends with the hub.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::{Now, State};
use crate::locks::agents::AgentId;
use crate::locks::resource::Resource;
use crate::locks::types::{Claim, FencingToken};

/// The most events kept.
pub const MAX_EVENTS: usize = 10_000;
/// The oldest event kept.
pub const MAX_AGE: Duration = Duration::from_secs(3600);

/// What happened to a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockEventKind {
    Granted,
    Released,
    /// The lease ran out.
    Expired,
    /// An operator broke it.
    Broken,
    /// A blocking request refused because it would close a cycle.
    DeadlockRefused,
}

impl LockEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LockEventKind::Granted => "granted",
            LockEventKind::Released => "released",
            LockEventKind::Expired => "expired",
            LockEventKind::Broken => "broken",
            LockEventKind::DeadlockRefused => "deadlock_refused",
        }
    }
}

/// One entry of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockEvent {
    /// Rises by one per event, over the table's life.
    pub seq: u64,
    pub at: SystemTime,
    pub kind: LockEventKind,
    pub agent: AgentId,
    pub resource: Resource,
    pub claim: Claim,
    /// The grant's token (none for a refusal).
    pub token: Option<FencingToken>,
}

/// The log itself.
pub(in crate::locks) struct EventLog {
    events: VecDeque<LockEvent>,
    next_seq: u64,
    /// The number of events ever appended, for watchers (the page). Sent
    /// only while someone watches: otherwise an event costs one atomic load
    /// more.
    appended: watch::Sender<u64>,
}

impl Default for EventLog {
    fn default() -> EventLog {
        EventLog {
            events: VecDeque::new(),
            next_seq: 0,
            appended: watch::Sender::new(0),
        }
    }
}

impl EventLog {
    fn push(&mut self, mut event: LockEvent) {
        event.seq = self.next_seq;
        self.next_seq += 1;
        if self.appended.receiver_count() > 0 {
            self.appended.send_replace(self.next_seq);
        }
        if self.events.len() == MAX_EVENTS {
            self.events.pop_front();
        }
        let cutoff = event.at.checked_sub(MAX_AGE);
        while let (Some(first), Some(cutoff)) = (self.events.front(), cutoff) {
            if first.at >= cutoff {
                break;
            }
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// The events after `after` (by `seq`), oldest first, at most `limit`
    /// of the newest.
    /// Changes each time an event is appended.
    pub(in crate::locks) fn subscribe(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    pub(in crate::locks) fn since(&self, after: Option<u64>, limit: usize) -> Vec<LockEvent> {
        let from = match after {
            Some(seq) => self.events.partition_point(|e| e.seq <= seq),
            None => 0,
        };
        let n = self.events.len() - from;
        self.events
            .iter()
            .skip(from + n.saturating_sub(limit))
            .cloned()
            .collect()
    }
}

impl State {
    /// Appends one event at `now`.
    pub(super) fn note(
        &mut self,
        kind: LockEventKind,
        agent: AgentId,
        resource: &Resource,
        claim: Claim,
        token: Option<FencingToken>,
        now: Now,
    ) {
        self.events.push(LockEvent {
            seq: 0,
            at: now.system,
            kind,
            agent,
            resource: resource.clone(),
            claim,
            token,
        });
    }

    pub(in crate::locks) fn event_watch(&self) -> watch::Receiver<u64> {
        self.events.subscribe()
    }

    pub(in crate::locks) fn events_since(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Vec<LockEvent> {
        self.events.since(after, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::FunctionId;

    fn event(at: SystemTime) -> LockEvent {
        LockEvent {
            seq: 0,
            at,
            kind: LockEventKind::Granted,
            agent: AgentId(1),
            resource: Resource::Function(FunctionId(1)),
            claim: Claim::Write,
            token: None,
        }
    }

    #[test]
    fn the_log_keeps_at_most_max_events_and_drops_the_oldest() {
        let mut log = EventLog::default();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for _ in 0..MAX_EVENTS + 5 {
            log.push(event(t));
        }
        let all = log.since(None, usize::MAX);
        assert_eq!(all.len(), MAX_EVENTS);
        assert_eq!(all[0].seq, 5, "the five oldest went");
        assert_eq!(log.since(Some(all[MAX_EVENTS - 2].seq), 10).len(), 1);
        assert_eq!(log.since(None, 3).len(), 3, "the newest three");
        assert_eq!(log.since(None, 3)[2].seq, (MAX_EVENTS + 4) as u64);
    }

    #[test]
    fn the_log_drops_events_older_than_an_hour() {
        let mut log = EventLog::default();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        log.push(event(t));
        log.push(event(t + Duration::from_secs(1800)));
        log.push(event(t + MAX_AGE + Duration::from_secs(1)));
        let kept: Vec<u64> = log.since(None, 10).iter().map(|e| e.seq).collect();
        assert_eq!(kept, [1, 2]);
    }
}
