//! What happened lately, for people watching: commits as they land,
//! conflicts, refused and timed-out lock requests, deadlock refusals,
//! agents coming and going, operator actions. The page shows it and
//! counts its rates.
//!
//! Bounded: the newest `MAX_ITEMS`, in memory only, like the lock event
//! log (`locks/state/events.rs`) whose grants and releases it does not
//! repeat. Appending takes one short mutex; a watcher hears of each
//! append through `changes`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

use tokio::sync::watch;

use crate::graph::Revision;
use crate::locks::AgentId;

/// The most items kept.
pub const MAX_ITEMS: usize = 1000;

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedKind {
    /// A commit landed; `merged` of its functions were rebased onto
    /// concurrent changes.
    Commit {
        revision: Revision,
        functions: Vec<String>,
        merged: usize,
    },
    /// An edit refused because it conflicted with concurrent changes.
    Conflict {
        functions: Vec<String>,
    },
    /// An edit refused because the program would not verify.
    VerificationFailed,
    /// A lock request refused at once (held by others).
    LockDenied {
        resources: Vec<String>,
    },
    /// A lock request whose wait ran out.
    LockTimeout {
        resources: Vec<String>,
    },
    /// A lock request refused because waiting would close a cycle.
    Deadlock {
        resources: Vec<String>,
    },
    /// A waiting lock request cancelled by its client.
    LockCancelled {
        resources: Vec<String>,
    },
    AgentJoined,
    /// Its name or purpose changed.
    AgentUpdated,
    AgentLeft,
    /// An operator acted (`cograph end-agent`, `break-lock`, the page).
    Operator {
        action: String,
    },
}

impl FeedKind {
    /// The kind's wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            FeedKind::Commit { .. } => "commit",
            FeedKind::Conflict { .. } => "conflict",
            FeedKind::VerificationFailed => "verification_failed",
            FeedKind::LockDenied { .. } => "lock_denied",
            FeedKind::LockTimeout { .. } => "lock_timeout",
            FeedKind::Deadlock { .. } => "deadlock",
            FeedKind::LockCancelled { .. } => "lock_cancelled",
            FeedKind::AgentJoined => "agent_joined",
            FeedKind::AgentUpdated => "agent_updated",
            FeedKind::AgentLeft => "agent_left",
            FeedKind::Operator { .. } => "operator",
        }
    }
}

/// One item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedItem {
    /// Rises by one per item over the hub's life.
    pub seq: u64,
    pub at: SystemTime,
    /// Who it concerns (the operator's target for an operator action).
    pub agent: Option<AgentId>,
    /// The agent's name when it happened (an agent that left has none
    /// to look up).
    pub agent_name: String,
    pub kind: FeedKind,
}

/// The feed.
pub struct Feed {
    items: Mutex<VecDeque<FeedItem>>,
    /// The seq the next item gets.
    changes: watch::Sender<u64>,
}

impl Default for Feed {
    fn default() -> Feed {
        Feed {
            items: Mutex::new(VecDeque::with_capacity(64)),
            changes: watch::Sender::new(0),
        }
    }
}

impl Feed {
    /// Appends an item now.
    pub fn push(&self, agent: Option<AgentId>, agent_name: String, kind: FeedKind) {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let seq = *self.changes.borrow();
        if items.len() == MAX_ITEMS {
            items.pop_front();
        }
        items.push_back(FeedItem {
            seq,
            at: SystemTime::now(),
            agent,
            agent_name,
            kind,
        });
        // Under the items' mutex, so seqs rise in the items' order.
        self.changes.send_replace(seq + 1);
    }

    /// The newest `limit` items, oldest first.
    pub fn recent(&self, limit: usize) -> Vec<FeedItem> {
        let items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let skip = items.len().saturating_sub(limit);
        items.iter().skip(skip).cloned().collect()
    }

    /// Changes with each item appended.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_in_order_and_signals_each_append() {
        let feed = Feed::default();
        let mut watch = feed.changes();
        for i in 0..(MAX_ITEMS + 5) {
            feed.push(
                Some(AgentId(i as u64)),
                format!("a{i}"),
                FeedKind::AgentJoined,
            );
        }
        assert!(watch.has_changed().unwrap());
        assert_eq!(*watch.borrow_and_update(), (MAX_ITEMS + 5) as u64);
        let all = feed.recent(usize::MAX);
        assert_eq!(all.len(), MAX_ITEMS);
        assert_eq!(all[0].seq, 5, "the oldest five went");
        assert!(all.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
        let last = feed.recent(2);
        assert_eq!(last.len(), 2);
        assert_eq!(last[1].agent_name, format!("a{}", MAX_ITEMS + 4));
    }
}
