//! What a hub records of each edit and lock request for people watching:
//! the metrics (`metrics.rs`) and the feed (`feed.rs`).

use std::time::Duration;

use super::feed::FeedKind;
use super::metrics::LockOutcome;
use super::proposal::CommitOutcome;
use super::{Hub, ServiceError};
use crate::graph::Program;
use crate::locks::{AgentId, LockTarget};

impl Hub {
    /// Counts a proposal's outcome and puts it in the feed.
    pub(super) fn observe_commit(
        &self,
        agent: AgentId,
        took: Duration,
        result: &Result<CommitOutcome, ServiceError>,
    ) {
        let feed = |kind| self.feed.push(Some(agent), self.agent_name(agent), kind);
        match result {
            Ok(
                out @ CommitOutcome {
                    revision: Some(revision),
                    dry_run: false,
                    repeated: false,
                    ..
                },
            ) => {
                let n_merged = out.functions.iter().filter(|f| f.merged).count();
                self.metrics.commit(took, n_merged);
                feed(FeedKind::Commit {
                    revision: *revision,
                    functions: out.functions.iter().map(|f| f.name.to_string()).collect(),
                    merged: n_merged,
                });
            }
            Err(ServiceError::Conflict { conflicts }) => {
                self.metrics.conflicts_refused(conflicts.len());
                feed(FeedKind::Conflict {
                    functions: conflicts.iter().map(|c| c.name.to_string()).collect(),
                });
            }
            Err(ServiceError::TooManyConflicts { .. }) => {
                self.metrics.conflicts_refused(1);
                feed(FeedKind::Conflict { functions: vec![] });
            }
            Err(ServiceError::VerificationFailed { .. }) => {
                self.metrics.verification_failure();
                feed(FeedKind::VerificationFailed);
            }
            _ => {}
        }
    }

    /// Puts a refused, timed-out or cancelled request in the feed.
    pub(super) fn feed_refusal(
        &self,
        agent: AgentId,
        program: &Program,
        targets: &[LockTarget],
        outcome: LockOutcome,
    ) {
        let resources = || {
            targets
                .iter()
                .map(|t| super::resource_text(program, &t.resource))
                .collect()
        };
        let kind = match outcome {
            LockOutcome::Denied => FeedKind::LockDenied {
                resources: resources(),
            },
            LockOutcome::Timeout => FeedKind::LockTimeout {
                resources: resources(),
            },
            LockOutcome::Deadlock => FeedKind::Deadlock {
                resources: resources(),
            },
            LockOutcome::Cancelled => FeedKind::LockCancelled {
                resources: resources(),
            },
            LockOutcome::Granted | LockOutcome::Invalid => return,
        };
        self.feed.push(Some(agent), self.agent_name(agent), kind);
    }
}
