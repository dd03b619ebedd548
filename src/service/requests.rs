//! Safe retries: a `propose_edit` repeated under the same client-chosen
//! `request_id` by the same agent returns the commit the first one made and
//! applies nothing again, also after a restart.
//!
//! A request's tag is its id plus a blake3 hash of what it asks for (ops,
//! bases, conflict policy), so a repeat is told from a different request
//! that reuses the id; the latter is refused. Tags are scoped by agent
//! *name*: agent ids do not survive a restart, and a retry after one comes
//! from a new session that registers under the same name. Clients should
//! choose ids that are unique (a UUID).
//!
//! Where an earlier commit is found: the store (durable commits, indexed
//! by `(agent_name, request_id)`) and `pending` (commits sequenced but not
//! yet durable, so not visible to the store's reader). The check runs
//! before preparing, to answer a repeat at once, and again while
//! sequencing under the tip mutex, where no two commits can both pass it.
//! A refused request changed nothing; its repeat is evaluated again.
//!
//! `acquire_locks` under a `request_id` is remembered per agent (locks do
//! not outlive the agent, so neither does the memory): a repeat returns the
//! first grant (same token, lease not refreshed) or the first refusal; a
//! repeat that arrives while the first still waits waits for its outcome.
//! A cancelled first attempt holds nothing, so its repeat runs afresh.
//!
//! This file knows nothing of MCP.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::error::ServiceError;
use super::proposal::{CommitOutcome, EditRequest, FunctionOutcome, OnConflict};
use super::{Hub, LockSpec};
use crate::graph::{ContentHash, Revision};
use crate::locks::{AcquireError, AgentId, Grant, WaitProgress};
use crate::store::{ChangeRecord, RequestTag};

/// How many lock requests' outcomes are remembered per agent.
const MAX_LOCK_REQUESTS: usize = 256;

/// How a lock request under an id ended (`None` while it runs).
type LockOutcome = Option<Result<Grant, AcquireError>>;

/// One agent's remembered lock requests, oldest first.
pub(super) type LockRequests = VecDeque<(String, ContentHash, watch::Receiver<LockOutcome>)>;

/// The longest `request_id` accepted.
pub const MAX_REQUEST_ID: usize = 200;

/// An earlier commit a request repeats.
#[derive(Clone, Debug)]
pub struct Committed {
    pub revision: Revision,
    pub changes: Vec<ChangeRecord>,
}

/// Commits sequenced under a tag and not yet durable.
#[derive(Default)]
pub(super) struct PendingRequests(Mutex<HashMap<(String, String), (ContentHash, Committed)>>);

impl PendingRequests {
    pub(super) fn insert(&self, agent_name: &str, tag: &RequestTag, committed: Committed) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(
            (agent_name.to_string(), tag.id.clone()),
            (tag.hash, committed),
        );
    }

    /// Forgets a commit once it is durable (the store has it) or failed.
    pub(super) fn settle(&self, agent_name: &str, tag: &RequestTag) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(agent_name.to_string(), tag.id.clone()));
    }

    fn get(&self, agent_name: &str, id: &str) -> Option<(ContentHash, Committed)> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(agent_name.to_string(), id.to_string()))
            .cloned()
    }
}

/// Checks a client-chosen request id: non-empty, short, printable.
pub fn check_request_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("`request_id` is empty; omit it or give a unique id (a UUID)".into());
    }
    if id.len() > MAX_REQUEST_ID {
        return Err(format!(
            "`request_id` is {} bytes; at most {MAX_REQUEST_ID}",
            id.len()
        ));
    }
    if id.chars().any(char::is_control) {
        return Err("`request_id` contains a control character".into());
    }
    Ok(())
}

/// The tag of an edit request, if it has an id. Dry runs change nothing
/// and are never deduplicated.
pub(super) fn tag_of(request: &EditRequest) -> Option<RequestTag> {
    let id = request.request_id.as_ref().filter(|_| !request.dry_run)?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"cograph/request/v1\0");
    let ops = serde_json::to_vec(&request.ops).expect("edit ops serialise");
    hasher.update(&(ops.len() as u64).to_le_bytes());
    hasher.update(&ops);
    let base = serde_json::to_vec(&request.base).expect("bases serialise");
    hasher.update(&(base.len() as u64).to_le_bytes());
    hasher.update(&base);
    hasher.update(match request.on_conflict {
        OnConflict::Merge => b"merge",
        OnConflict::Reject => b"reject",
    });
    Some(RequestTag {
        id: id.clone(),
        hash: ContentHash(*hasher.finalize().as_bytes()),
    })
}

impl Hub {
    /// The commit an earlier request with this tag made, if any; an error
    /// if the id was used for a different request.
    pub(super) fn repeated_commit(
        &self,
        agent_name: &str,
        tag: &RequestTag,
    ) -> Result<Option<Committed>, ServiceError> {
        let found = match self.pending_requests.get(agent_name, &tag.id) {
            Some(found) => Some(found),
            None => self
                .store
                .commit_for_request(agent_name, &tag.id)?
                .and_then(|r| {
                    let hash = r.request.as_ref()?.hash;
                    Some((
                        hash,
                        Committed {
                            revision: r.revision,
                            changes: r.changes,
                        },
                    ))
                }),
        };
        match found {
            None => Ok(None),
            Some((hash, committed)) if hash == tag.hash => Ok(Some(committed)),
            Some((_, committed)) => Err(ServiceError::InvalidRequest(format!(
                "`request_id` `{}` was already used for a different edit (committed at r{}); give a new request_id for a new edit",
                tag.id, committed.revision.0
            ))),
        }
    }

    /// What a repeat answers: the earlier commit, as it changed each
    /// function; nothing is applied or verified again.
    pub(super) fn repeat_outcome(
        &self,
        committed: Committed,
    ) -> Result<CommitOutcome, ServiceError> {
        let program = self.snapshot();
        Ok(CommitOutcome {
            revision: Some(committed.revision),
            dry_run: false,
            functions: committed
                .changes
                .into_iter()
                .map(|c| FunctionOutcome {
                    id: c.function,
                    name: c.name,
                    before: c.before,
                    after: c.after,
                    merged: false,
                })
                .collect(),
            verified: Vec::new(),
            aliases: Default::default(),
            program,
            repeated: true,
        })
    }
}

/// What a lock request asks for; the wait is not part of it (a retry may
/// wait longer than the attempt it repeats).
fn lock_request_hash(targets: &[LockSpec], ttl: Option<Duration>) -> ContentHash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"cograph/lock-request/v2\0");
    for t in targets {
        hasher.update(t.to_string().as_bytes());
        hasher.update(b"\0");
    }
    hasher.update(&ttl.map_or(0, |t| t.as_millis() as u64 + 1).to_le_bytes());
    ContentHash(*hasher.finalize().as_bytes())
}

impl Hub {
    /// `acquire`, remembered under `request_id` when one is given (see the
    /// module doc).
    #[allow(clippy::too_many_arguments)]
    pub async fn acquire_once(
        &self,
        request_id: Option<&str>,
        agent: AgentId,
        targets: &[LockSpec],
        wait: Duration,
        ttl: Option<Duration>,
        purpose: Option<String>,
        cancel: &CancellationToken,
        progress: Option<mpsc::UnboundedSender<WaitProgress>>,
    ) -> Result<Grant, ServiceError> {
        let Some(id) = request_id else {
            return self
                .acquire(agent, targets, wait, ttl, purpose, cancel, progress)
                .await;
        };
        check_request_id(id).map_err(ServiceError::InvalidRequest)?;
        let hash = lock_request_hash(targets, ttl);
        let sender = loop {
            // Look up and claim under the map's shard lock, so two copies
            // of one request cannot both start; await only after.
            let earlier = {
                let mut list = self.lock_requests.entry(agent).or_default();
                match list.iter().find(|(i, _, _)| i == id) {
                    Some((_, h, _)) if *h != hash => {
                        return Err(ServiceError::InvalidRequest(format!(
                            "`request_id` `{id}` was already used for a different lock request; give a new request_id for a new request"
                        )));
                    }
                    Some((_, _, rx)) => rx.clone(),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        list.push_back((id.to_string(), hash, rx));
                        if list.len() > MAX_LOCK_REQUESTS {
                            list.pop_front();
                        }
                        break tx;
                    }
                }
            };
            let mut rx = earlier.clone();
            let outcome = tokio::select! {
                r = rx.wait_for(Option::is_some) => r.ok().and_then(|o| o.clone()),
                _ = cancel.cancelled() => return Err(AcquireError::Cancelled.into()),
            };
            match outcome {
                Some(Err(AcquireError::Cancelled)) | None => {
                    // The first attempt holds nothing: forget it, run afresh.
                    if let Some(mut list) = self.lock_requests.get_mut(&agent) {
                        list.retain(|(_, _, r)| !r.same_channel(&earlier));
                    }
                }
                Some(result) => return result.map_err(Into::into),
            }
        };
        let result = self
            .acquire(agent, targets, wait, ttl, purpose, cancel, progress)
            .await;
        let remembered = match &result {
            Ok(grant) => Some(Ok(grant.clone())),
            Err(ServiceError::Lock(e)) if *e != AcquireError::Cancelled => Some(Err(e.clone())),
            // Cancelled, or refused before reaching the lock table: it
            // changed nothing, and a repeat is evaluated again.
            Err(_) => None,
        };
        if remembered.is_none()
            && let Some(mut list) = self.lock_requests.get_mut(&agent)
        {
            list.retain(|(i, _, _)| i != id);
        }
        let _ = sender.send(Some(remembered.unwrap_or(Err(AcquireError::Cancelled))));
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_checked() {
        assert!(check_request_id("6f1c0e2a-1").is_ok());
        assert!(check_request_id("").unwrap_err().contains("empty"));
        assert!(
            check_request_id(&"x".repeat(201))
                .unwrap_err()
                .contains("at most 200")
        );
        assert!(check_request_id("a\nb").unwrap_err().contains("control"));
    }
}
