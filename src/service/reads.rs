//! Reads: functions by reference (recording the read as the agent's base),
//! whole-program verification, runs, and the log (history, versions,
//! diffs). Nothing here changes the program or takes a lock.

use std::sync::Arc;

use super::{Hub, ReadRecord, ServiceError};
use crate::eval::{self, Budget, Outcome};
use crate::graph::{
    ContentHash, Function, FunctionDiff, FunctionId, FunctionRef, Program, Revision, Value,
    diff_functions,
};
use crate::locks::AgentId;
use crate::store::{CommitRecord, Store, StoreError};
use crate::verify::{Diagnostic, verify_all};

/// A function as an agent read it.
#[derive(Clone, Debug)]
pub struct FunctionRead {
    pub id: FunctionId,
    pub entry: crate::graph::FunctionEntry,
    /// The snapshot it was read from, for rendering names.
    pub program: Arc<Program>,
}

/// Which version of a function: by revision, by hash, or the current one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionSel {
    Current,
    Revision(Revision),
    Hash(ContentHash),
}

/// The answer of `Hub::diff`.
#[derive(Clone, Debug)]
pub struct DiffResult {
    pub function: FunctionId,
    pub from: ContentHash,
    pub to: ContentHash,
    pub diff: FunctionDiff,
    pub program: Arc<Program>,
}

impl Hub {
    /// Resolves a function reference in a snapshot: it must exist there.
    pub fn resolve_in(
        program: &Program,
        function: &FunctionRef,
    ) -> Result<FunctionId, ServiceError> {
        program.lookup(function).ok_or_else(|| {
            ServiceError::unknown_function(program, function, format!("no function `{function}`"))
        })
    }

    /// Resolves a function that may since have been deleted: a name must
    /// exist in the current program, an id is taken as it is (its history
    /// and locks outlive the function).
    pub(super) fn resolve_any(&self, function: &FunctionRef) -> Result<FunctionId, ServiceError> {
        match function {
            FunctionRef::Id(id) => Ok(*id),
            FunctionRef::Name(_) => Hub::resolve_in(&self.snapshot(), function),
        }
    }

    /// Reads a function and records the read as the agent's base for it.
    pub fn read_function(
        &self,
        agent: AgentId,
        function: &FunctionRef,
    ) -> Result<FunctionRead, ServiceError> {
        let read = self.peek_function(function)?;
        self.record_read(agent, read.id, &read.entry);
        Ok(read)
    }

    /// Reads a function for someone who is no agent: nothing is recorded.
    pub fn peek_function(&self, function: &FunctionRef) -> Result<FunctionRead, ServiceError> {
        let program = self.snapshot();
        let id = Hub::resolve_in(&program, function)?;
        let entry = program.get(id).expect("resolved").clone();
        Ok(FunctionRead { id, entry, program })
    }

    pub(super) fn record_read(
        &self,
        agent: AgentId,
        id: FunctionId,
        entry: &crate::graph::FunctionEntry,
    ) {
        if !self.agents.contains(agent) {
            return; // an agent that has ended keeps no state
        }
        self.agent_state
            .entry(agent)
            .or_default()
            .note_read(id, entry);
    }

    /// What the agent last read of a function.
    pub fn last_read(&self, agent: AgentId, id: FunctionId) -> Option<ReadRecord> {
        self.agent_state
            .get(&agent)
            .and_then(|s| s.reads.get(&id).cloned())
    }

    /// Every function the agent has read, with the hash it last read.
    pub fn reads_of(&self, agent: AgentId) -> Vec<(FunctionId, ContentHash)> {
        self.agent_state
            .get(&agent)
            .map(|s| s.reads.iter().map(|(id, r)| (*id, r.hash)).collect())
            .unwrap_or_default()
    }

    /// Verifies the whole published program.
    pub fn verify_all(&self) -> (Arc<Program>, Vec<Diagnostic>) {
        let program = self.snapshot();
        let diagnostics = verify_all(&program);
        (program, diagnostics)
    }

    /// Runs a function of the published program.
    pub fn run_function(
        &self,
        function: &FunctionRef,
        args: &[Value],
        budget: Budget,
    ) -> Result<(FunctionId, Outcome), ServiceError> {
        let program = self.snapshot();
        let id = Hub::resolve_in(&program, function)?;
        let budget = Budget {
            fuel: budget.fuel.min(self.config.run_budget.fuel),
            max_depth: budget.max_depth.min(self.config.run_budget.max_depth),
        };
        Ok((id, eval::run(&program, id, args, budget)?))
    }

    /// Runs a blocking store read off the async runtime.
    pub(super) async fn store_read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let hub = self.clone();
        tokio::task::spawn_blocking(move || f(&hub.store))
            .await
            .map_err(|e| ServiceError::Internal(format!("store read task: {e}")))?
            .map_err(ServiceError::from)
    }

    /// Resolves a function that exists now or has a history: a name must
    /// exist in the current program; an id not in it must have commits (a
    /// deleted function keeps its history, an id never used has none).
    async fn resolve_logged(
        self: &Arc<Self>,
        function: &FunctionRef,
    ) -> Result<FunctionId, ServiceError> {
        let id = self.resolve_any(function)?;
        if self.snapshot().get(id).is_some() {
            return Ok(id);
        }
        let logged = self
            .store_read(move |s| s.history(Some(id), None, 1))
            .await?;
        if logged.is_empty() {
            return Err(ServiceError::NotFound {
                what: format!("no function `{function}`, now or in the history"),
            });
        }
        Ok(id)
    }

    /// Commits, newest first, optionally only those touching a function.
    pub async fn history(
        self: &Arc<Self>,
        function: Option<&FunctionRef>,
        before: Option<Revision>,
        limit: usize,
    ) -> Result<Vec<CommitRecord>, ServiceError> {
        let id = match function {
            Some(f) => Some(self.resolve_logged(f).await?),
            None => None,
        };
        self.store_read(move |s| s.history(id, before, limit)).await
    }

    /// A version of a function: the current one, the one right after a
    /// revision, or one by hash.
    pub async fn version(
        self: &Arc<Self>,
        id: FunctionId,
        which: &VersionSel,
    ) -> Result<Option<(ContentHash, Arc<Function>)>, ServiceError> {
        match which {
            VersionSel::Current => Ok(self
                .snapshot()
                .get(id)
                .map(|e| (e.hash, e.function.clone()))),
            VersionSel::Hash(hash) => {
                let hash = *hash;
                let current = self.snapshot().get(id).map(|e| e.hash);
                // A hash names a version of this function only: another
                // function's version is no base to diff from.
                let f = self
                    .store_read(move |s| {
                        if current != Some(hash) && s.revision_of_version(id, &hash)?.is_none() {
                            return Ok(None);
                        }
                        s.version(&hash)
                    })
                    .await?;
                Ok(f.map(|f| (hash, Arc::new(f))))
            }
            VersionSel::Revision(rev) => {
                let rev = *rev;
                let now = self.snapshot().revision();
                if rev > now {
                    return Err(ServiceError::NotFound {
                        what: format!(
                            "there is no revision {} yet (the latest is {})",
                            rev.0, now.0
                        ),
                    });
                }
                let Some(hash) = self.store_read(move |s| s.version_at(id, rev)).await? else {
                    return Ok(None);
                };
                let f = self.store_read(move |s| s.version(&hash)).await?;
                Ok(f.map(|f| (hash, Arc::new(f))))
            }
        }
    }

    /// The structured diff between two versions of a function.
    pub async fn diff(
        self: &Arc<Self>,
        function: &FunctionRef,
        from: VersionSel,
        to: VersionSel,
    ) -> Result<DiffResult, ServiceError> {
        let id = self.resolve_logged(function).await?;
        let missing = |which: &VersionSel| ServiceError::NotFound {
            what: match which {
                VersionSel::Current => {
                    format!("`{function}` has no current version (it was deleted)")
                }
                VersionSel::Revision(r) => {
                    format!("`{function}` did not exist as of revision {}", r.0)
                }
                VersionSel::Hash(h) => {
                    format!("`{function}` has no version with hash {h}: history lists its versions")
                }
            },
        };
        let (from_hash, before) = self
            .version(id, &from)
            .await?
            .ok_or_else(|| missing(&from))?;
        let (to_hash, after) = self.version(id, &to).await?.ok_or_else(|| missing(&to))?;
        Ok(DiffResult {
            function: id,
            from: from_hash,
            to: to_hash,
            diff: diff_functions(&before, &after),
            program: self.snapshot(),
        })
    }
}
