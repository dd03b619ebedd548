//! The commit pipeline: one `propose_edit`, from ops to a durable,
//! published, verified revision (or a structured refusal).
//!
//! 1. Take the structure lock (exclusive for create/delete/rename).
//! 2. Clone the tip (O(1)) and prepare against it, outside every mutex:
//!    resolve functions, check locks, find each function's base, detect
//!    conflicts and rebase, apply, verify incrementally.
//! 3. Sequence under the tip mutex: check that nothing the preparation
//!    depended on has changed since the clone (else prepare again), check
//!    locks and fences once more, assign the revision, queue the durable
//!    write in revision order, advance the tip.
//! 4. Await durability (group commit), then publish and move the agent's
//!    bases to what it just wrote.
//!
//! Invariant: a commit is queued only if its preparation saw exactly the
//! tip it is sequenced onto for every function it read, so the committed
//! program always verifies and no update is lost.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::error::{FunctionConflict, ServiceError};
use super::proposal::{CommitOutcome, EditRequest, FunctionOutcome};
use super::requests::{Committed, check_request_id, tag_of};
use super::{Hub, ReadRecord, Tip};
use crate::graph::{
    Applied, ContentHash, EditOp, Function, FunctionEntry, FunctionId, FunctionRef, Program,
    QualifiedName, Revision, apply, check_rebase, diff_functions,
};
use crate::locks::{AgentId, LockTarget};
use crate::store::{ChangeRecord, CommitRecord, CommitWrite, RequestTag, now_ms};
use crate::verify::{incremental_scope, verify_scope};

/// A preparation that passed every check, ready to sequence.
struct Prepared {
    ops: Vec<EditOp>,
    applied: Applied,
    scope: BTreeSet<FunctionId>,
    /// Functions whose version the preparation depended on.
    depends_on: BTreeSet<FunctionId>,
    /// Functions whose callers the verification covered: their callers at
    /// the tip must be among `scope`.
    caller_sensitive: Vec<FunctionId>,
    /// Live write-lease tokens the edit relies on.
    fences: BTreeMap<FunctionId, u64>,
    /// The write locks those leases are on (of the function, or of a
    /// module above it): each must still be live when the commit is
    /// sequenced.
    relied_on: Vec<(FunctionId, LockTarget)>,
    /// Existing functions the ops touch.
    touched: BTreeSet<FunctionId>,
    merged: BTreeSet<FunctionId>,
}

/// What sequencing a prepared commit came to.
enum Sequenced {
    /// The tip moved in a way that invalidates the preparation: prepare
    /// again against the new tip.
    Retry,
    /// The commit has its revision and is queued for the store; `ack`
    /// answers once it is durable (or the store failed).
    Queued {
        revision: Revision,
        ack: tokio::sync::oneshot::Receiver<Result<(), crate::store::StoreError>>,
        program: Arc<Program>,
        /// The name the commit was logged under (its tag's scope).
        agent_name: String,
    },
    /// An earlier commit made under this request's tag.
    Repeat(Committed),
}

/// How often a preparation is retried when concurrent commits keep
/// changing what it depended on, before giving up.
const MAX_ATTEMPTS: usize = 64;

impl Hub {
    /// Proposes an edit on behalf of `agent`. See the module doc.
    pub async fn propose(
        self: &Arc<Self>,
        agent: AgentId,
        request: EditRequest,
    ) -> Result<CommitOutcome, ServiceError> {
        let started = std::time::Instant::now();
        let result = self
            .propose_within(agent, request, self.config.max_ops)
            .await;
        self.observe_commit(agent, started.elapsed(), &result);
        result
    }

    /// `propose` with another limit on the number of ops (an import has
    /// none).
    pub(super) async fn propose_within(
        self: &Arc<Self>,
        agent: AgentId,
        request: EditRequest,
        max_ops: usize,
    ) -> Result<CommitOutcome, ServiceError> {
        if request.ops.is_empty() {
            return Err(ServiceError::InvalidRequest(
                "`ops` is empty: give at least one edit op".into(),
            ));
        }
        if request.ops.len() > max_ops {
            return Err(ServiceError::InvalidRequest(format!(
                "`ops` has {} ops; at most {max_ops} per request",
                request.ops.len(),
            )));
        }
        let tag = tag_of(&request);
        if let Some(tag) = &tag {
            check_request_id(&tag.id).map_err(ServiceError::InvalidRequest)?;
            if let Some(done) = self.repeated_commit(&self.agent_name(agent), tag)? {
                return self.repeat_outcome(done);
            }
        }
        let structural = request.ops.iter().any(EditOp::is_structural);
        let (_shared, _exclusive) = if structural {
            (None, Some(self.structure.exclusive().await))
        } else {
            (Some(self.structure.shared().await), None)
        };
        for _attempt in 0..MAX_ATTEMPTS {
            let view = self.tip()?.clone();
            let prepared = self.prepare(agent, &request, &view).await?;
            let changes = &prepared.applied.changes;
            if request.dry_run || changes.is_empty() {
                return Ok(self.outcome(
                    None,
                    request.dry_run,
                    &prepared,
                    Arc::new(prepared.applied.program.clone()),
                ));
            }
            let sequenced = self.sequence(agent, &request, tag.as_ref(), &view, &prepared)?;
            let (revision, ack, program, agent_name) = match sequenced {
                Sequenced::Retry => continue,
                Sequenced::Repeat(done) => return self.repeat_outcome(done),
                Sequenced::Queued {
                    revision,
                    ack,
                    program,
                    agent_name,
                } => (revision, ack, program, agent_name),
            };
            let durable = ack.await;
            if let Some(tag) = &tag {
                self.pending_requests.settle(&agent_name, tag);
            }
            match durable {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Err(ServiceError::Unavailable("the store writer stopped".into())),
            }
            self.publish(program.clone());
            // An agent that ended while its commit was in flight keeps no
            // state; otherwise its bases move to what it just wrote.
            if self.agents.contains(agent) {
                let mut state = self.agent_state.entry(agent).or_default();
                for id in prepared.applied.changes.keys() {
                    state.conflicts.remove(id);
                    match program.get(*id) {
                        Some(entry) => state.note_read(*id, entry),
                        None => {
                            state.reads.remove(id);
                        }
                    }
                }
            }
            tracing::info!(%agent, %revision, functions = prepared.applied.changes.len(), "committed");
            return Ok(self.outcome(Some(revision), false, &prepared, program));
        }
        Err(ServiceError::Internal(format!(
            "gave up after {MAX_ATTEMPTS} attempts: concurrent commits kept changing what this edit depends on"
        )))
    }

    fn outcome(
        &self,
        revision: Option<Revision>,
        dry_run: bool,
        prepared: &Prepared,
        program: Arc<Program>,
    ) -> CommitOutcome {
        let functions = prepared
            .applied
            .changes
            .values()
            .map(|c| FunctionOutcome {
                id: c.id,
                name: c.name().clone(),
                before: c.before.as_ref().map(|e| e.hash),
                after: c.after.as_ref().map(|e| e.hash),
                merged: prepared.merged.contains(&c.id),
            })
            .collect();
        let verified = prepared
            .scope
            .iter()
            .filter_map(|id| program.name_of(*id).map(|n| (*id, n)))
            .collect();
        CommitOutcome {
            revision,
            dry_run,
            functions,
            verified,
            aliases: prepared.applied.aliases.clone(),
            program,
            repeated: false,
        }
    }

    /// Resolves what an op's function reference means to this agent: a name
    /// it read keeps meaning the function it read under that name, even if
    /// that function was renamed since; otherwise names and ids resolve in
    /// the view. References that resolve to nothing existing are left for
    /// `apply` (they may name a function the request itself creates).
    fn retarget(
        r: &FunctionRef,
        view: &Program,
        reads: &HashMap<FunctionId, ReadRecord>,
    ) -> Option<FunctionId> {
        match r {
            FunctionRef::Id(id) => {
                (view.get(*id).is_some() || reads.contains_key(id)).then_some(*id)
            }
            // The function that holds the name now, if the agent read it;
            // else the one it read latest under that name.
            FunctionRef::Name(name) => match view.id_of(name) {
                Some(id) if reads.contains_key(&id) => Some(id),
                current => reads
                    .iter()
                    .filter(|(_, read)| &read.function.name == name)
                    .max_by_key(|(_, read)| read.revision)
                    .map(|(id, _)| *id)
                    .or(current),
            },
        }
    }

    async fn prepare(
        self: &Arc<Self>,
        agent: AgentId,
        request: &EditRequest,
        view: &Tip,
    ) -> Result<Prepared, ServiceError> {
        let program = &view.program;
        let reads: HashMap<FunctionId, ReadRecord> = self
            .agent_state
            .get(&agent)
            .map(|s| s.reads.clone())
            .unwrap_or_default();

        // 1. Re-target function references to ids.
        let mut ops = request.ops.clone();
        let mut touched = BTreeSet::new();
        let mut ops_by_function: BTreeMap<FunctionId, Vec<usize>> = BTreeMap::new();
        for (idx, op) in ops.iter_mut().enumerate() {
            if let Some(target) = op.target_mut()
                && let Some(id) = Hub::retarget(target, program, &reads)
            {
                *target = FunctionRef::Id(id);
                touched.insert(id);
                ops_by_function.entry(id).or_default().push(idx);
            }
        }

        // 2. Locks: nobody else may hold one; note the leases we rely on.
        let locked =
            self.locked_by_others(agent, &touched, &ops, |id| name_in(program, &reads, id));
        if !locked.is_empty() {
            return Err(ServiceError::LockDenied { locked });
        }
        let super::fencing::Leases {
            fences,
            relied_on,
            expired,
        } = self.leases_relied_on(agent, &touched, |id| name_in(program, &reads, id));

        // 3. Bases: explicit, else the last read; blind writes are refused.
        let mut explicit: BTreeMap<FunctionId, ContentHash> = BTreeMap::new();
        for (r, hash) in &request.base {
            let id = Hub::retarget(r, program, &reads).ok_or_else(|| {
                let what = format!("`base` names `{r}`, which does not exist");
                ServiceError::unknown_function(program, r, what)
            })?;
            if let Some(other) = explicit.insert(id, *hash)
                && other != *hash
            {
                return Err(ServiceError::InvalidRequest(format!(
                    "`base`: two entries name function `{}` with different hashes ({} and {}); give one",
                    name_in(program, &reads, id),
                    other.to_hex(),
                    hash.to_hex()
                )));
            }
        }
        let mut missing = Vec::new();
        let mut bases: BTreeMap<FunctionId, (ContentHash, Revision, Arc<Function>)> =
            BTreeMap::new();
        for &id in &touched {
            let base = match (explicit.get(&id), reads.get(&id)) {
                (Some(hash), Some(read)) if *hash == read.hash => {
                    (read.hash, read.revision, read.function.clone())
                }
                (Some(hash), _) => self.base_by_hash(id, *hash, program).await?,
                (None, Some(read)) => (read.hash, read.revision, read.function.clone()),
                (None, None) => {
                    missing.push((id, name_in(program, &reads, id)));
                    continue;
                }
            };
            bases.insert(id, base);
        }
        if !missing.is_empty() {
            return Err(ServiceError::ReadRequired { functions: missing });
        }

        // 4. Conflicts: base ≠ current. Rebase when allowed and clean.
        let mut conflicts = Vec::new();
        let mut merged = BTreeSet::new();
        for (&id, (base_hash, _, base_fn)) in &bases {
            let current = program.get(id);
            if current.map(|e| e.hash) == Some(*base_hash) {
                continue;
            }
            if let Some((token, expired_at)) = expired.get(&id) {
                return Err(ServiceError::LockExpired {
                    function: id,
                    name: name_in(program, &reads, id),
                    token: *token,
                    expired_at: *expired_at,
                });
            }
            let mine: Vec<(usize, &EditOp)> = ops_by_function
                .get(&id)
                .into_iter()
                .flatten()
                .map(|idx| (*idx, &ops[*idx]))
                .collect();
            let current_fn = current.map(|e| e.function.as_ref());
            let rebased = match request.on_conflict {
                super::OnConflict::Merge => check_rebase(base_fn, current_fn, &mine),
                super::OnConflict::Reject => Err(Vec::new()),
            };
            match rebased {
                Ok(_) => {
                    merged.insert(id);
                }
                Err(overlaps) => conflicts.push(FunctionConflict {
                    function: id,
                    name: name_in(program, &reads, id),
                    base: *base_hash,
                    current: current.map(|e| e.hash),
                    commits: Vec::new(),
                    diff: current_fn
                        .map(|c| diff_functions(base_fn, c))
                        .unwrap_or_default(),
                    current_function: current.map(|e| e.function.clone()),
                    current_revision: current.map(|e| e.revision),
                    overlaps,
                }),
            }
        }
        if !conflicts.is_empty() {
            let counts = !request.dry_run;
            return Err(self
                .conflict_error(agent, conflicts, &bases, program, counts)
                .await);
        }

        // 5. Apply to a copy and verify what the edit can affect.
        let applied = apply(program, &ops, program.revision().next())?;
        let scope = incremental_scope(&applied.program, &applied.changes);
        let diagnostics = verify_scope(&applied.program, &scope);
        if !diagnostics.is_empty() {
            return Err(ServiceError::VerificationFailed { diagnostics });
        }
        let mut depends_on: BTreeSet<FunctionId> = applied.changes.keys().copied().collect();
        depends_on.extend(scope.iter().copied());
        depends_on.extend(touched.iter().copied());
        for id in &scope {
            if let Some(e) = applied.program.get(*id) {
                depends_on.extend(e.function.callees());
            }
        }
        let caller_sensitive = applied
            .changes
            .values()
            .filter(|c| c.signature_changed() || c.created() || c.renamed())
            .map(|c| c.id)
            .collect();
        Ok(Prepared {
            ops,
            applied,
            scope,
            depends_on,
            caller_sensitive,
            fences,
            relied_on,
            touched,
            merged,
        })
    }

    /// The base version for an explicit hash that is not the agent's last
    /// read: the current version, or an old one from the store.
    async fn base_by_hash(
        self: &Arc<Self>,
        id: FunctionId,
        hash: ContentHash,
        program: &Program,
    ) -> Result<(ContentHash, Revision, Arc<Function>), ServiceError> {
        if let Some(e) = program.get(id)
            && e.hash == hash
        {
            return Ok((e.hash, e.revision, e.function.clone()));
        }
        let found = self
            .store_read(move |s| {
                let f = s.version(&hash)?;
                let rev = s.revision_of_version(id, &hash)?;
                Ok(f.zip(rev))
            })
            .await?;
        match found {
            Some((f, rev)) => Ok((hash, rev, Arc::new(f))),
            None => Err(ServiceError::NotFound {
                what: format!("base {hash} is not a version of function {id}"),
            }),
        }
    }

    /// Completes a conflict report with the commits in between, records the
    /// current versions as read (the report shows them), and, when `counts`
    /// (not a dry run, which only asks), counts the agent's conflicts.
    async fn conflict_error(
        self: &Arc<Self>,
        agent: AgentId,
        mut conflicts: Vec<FunctionConflict>,
        bases: &BTreeMap<FunctionId, (ContentHash, Revision, Arc<Function>)>,
        program: &Program,
        counts: bool,
    ) -> ServiceError {
        let newest = conflicts
            .iter()
            .filter_map(|c| c.current_revision)
            .max()
            .unwrap_or(Revision(0));
        self.wait_published(newest).await;
        for c in &mut conflicts {
            let after = bases[&c.function].1;
            let upto = c.current_revision.unwrap_or(program.revision());
            let id = c.function;
            match self
                .store_read(move |s| s.commits_between(id, after, upto))
                .await
            {
                Ok(commits) => c.commits = commits,
                Err(e) => tracing::warn!(error = %e, "could not list the commits of a conflict"),
            }
        }
        let mut worst: Option<(u32, usize)> = None;
        {
            let mut state = self.agent_state.entry(agent).or_default();
            for (idx, c) in conflicts.iter().enumerate() {
                if let Some(entry) = program.get(c.function) {
                    state.note_read(c.function, entry);
                }
                if !counts {
                    continue;
                }
                let n = state.conflicts.entry(c.function).or_default();
                *n += 1;
                if worst.is_none_or(|(w, _)| *n > w) {
                    worst = Some((*n, idx));
                }
            }
        }
        match worst {
            Some((n, idx)) if n >= self.config.max_conflicts => ServiceError::TooManyConflicts {
                n_conflicts: n,
                conflict: Box::new(conflicts.swap_remove(idx)),
            },
            _ => ServiceError::Conflict { conflicts },
        }
    }

    /// Sequences a prepared commit onto the tip, or says to prepare again.
    fn sequence(
        &self,
        agent: AgentId,
        request: &EditRequest,
        tag: Option<&RequestTag>,
        view: &Tip,
        prepared: &Prepared,
    ) -> Result<Sequenced, ServiceError> {
        // Lock order: the tip first; while it is held this takes the lock
        // table's mutex (held_against), then the agent registry's
        // shard locks (agents.get), then the pending-request map and the
        // store reader's mutex (repeated_commit), then the store queue's
        // mutex (submit). Nothing that holds one of those ever waits for
        // the tip.
        let mut tip = self.tip()?;
        let (agent_name, agent_purpose) = self
            .agents
            .get(agent)
            .map(|a| (a.name, a.purpose))
            .unwrap_or_else(|| ("unknown".into(), None));
        // Two copies of one request may both have passed the check before
        // preparing; only here, under the tip mutex, is it decisive.
        if let Some(tag) = tag
            && let Some(done) = self.repeated_commit(&agent_name, tag)?
        {
            return Ok(Sequenced::Repeat(done));
        }
        if tip.program.revision() != view.program.revision() {
            let same = |id: &FunctionId| {
                let a = view.program.get(*id).map(|e| (e.revision, e.hash));
                let b = tip.program.get(*id).map(|e| (e.revision, e.hash));
                a == b
            };
            if !prepared.depends_on.iter().all(same) {
                return Ok(Sequenced::Retry);
            }
            for id in &prepared.caller_sensitive {
                if !tip
                    .program
                    .callers_of(*id)
                    .iter()
                    .all(|c| prepared.scope.contains(c) || prepared.applied.changes.contains_key(c))
                {
                    return Ok(Sequenced::Retry);
                }
            }
        }
        // Locks may have been taken since preparation; check again here,
        // where no commit can slip in between the check and the write.
        let locked = self.locked_by_others(agent, &prepared.touched, &prepared.ops, |id| {
            tip.program.name_of(id).unwrap_or_else(|| unknown_name(id))
        });
        if !locked.is_empty() {
            return Err(ServiceError::LockDenied { locked });
        }
        let high = |id| tip.fences.get(&id).copied();
        self.check_leases(agent, &prepared.fences, &prepared.relied_on, high, |id| {
            tip.program.name_of(id).unwrap_or_else(|| unknown_name(id))
        })?;

        let revision = tip.program.revision().next();
        let mut program = tip.program.clone();
        let mut versions = Vec::new();
        let mut changes = Vec::new();
        for (id, change) in &prepared.applied.changes {
            match &change.after {
                Some(after) => {
                    versions.push(after.function.clone());
                    program.put(
                        *id,
                        FunctionEntry {
                            function: after.function.clone(),
                            hash: after.hash,
                            revision,
                        },
                    );
                }
                None => {
                    program.remove(*id);
                }
            }
            changes.push(ChangeRecord::of(*id, change));
        }
        program.reserve_function_ids(prepared.applied.program.next_function_id().0);
        program.set_revision(revision);
        for (id, token) in &prepared.fences {
            let high = tip.fences.get(id).copied().unwrap_or(0).max(*token);
            tip.fences.insert(*id, high);
        }
        if let Some(tag) = tag {
            self.pending_requests.insert(
                &agent_name,
                tag,
                Committed {
                    revision,
                    changes: changes.clone(),
                },
            );
        }
        let record = CommitRecord {
            revision,
            time_ms: now_ms(),
            agent_id: agent.to_string(),
            agent_name: agent_name.clone(),
            purpose: request.purpose.clone().or(agent_purpose),
            summary: summarize(&prepared.ops, &prepared.applied),
            ops: prepared.ops.clone(),
            changes,
            request: tag.cloned(),
        };
        let ack = self.store.submit(CommitWrite {
            record,
            versions,
            fences: prepared.fences.clone(),
            next_function_id: program.next_function_id().0,
        });
        tip.program = program.clone();
        Ok(Sequenced::Queued {
            revision,
            ack,
            program: Arc::new(program),
            agent_name,
        })
    }
}

fn unknown_name(id: FunctionId) -> QualifiedName {
    QualifiedName::new(&format!("deleted::f{}", id.0)).expect("valid name")
}

fn name_in(
    program: &Program,
    reads: &HashMap<FunctionId, ReadRecord>,
    id: FunctionId,
) -> QualifiedName {
    program
        .name_of(id)
        .or_else(|| reads.get(&id).map(|r| r.function.name.clone()))
        .unwrap_or_else(|| unknown_name(id))
}

/// A one-line summary for the log: per function, the kinds of ops.
fn summarize(ops: &[EditOp], applied: &Applied) -> String {
    let mut per: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    for op in ops {
        let name = match op {
            EditOp::CreateFunction { name, .. } => name.to_string(),
            other => match other.target() {
                Some(FunctionRef::Id(id)) => applied
                    .program
                    .name_of(*id)
                    .or_else(|| applied.changes.get(id).map(|c| c.name().clone()))
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| id.to_string()),
                Some(r) => r.to_string(),
                None => "?".into(),
            },
        };
        let kinds = per.entry(name).or_default();
        if !kinds.contains(&op.kind()) {
            kinds.push(op.kind());
        }
    }
    let mut s = per
        .iter()
        .map(|(name, kinds)| format!("{name}: {}", kinds.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    if s.len() > 300 {
        let mut cut = 297;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}
