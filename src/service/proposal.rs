//! What a `propose_edit` asks of the service and what it answers: the
//! request (ops, bases, conflict policy, request id) and the outcome per
//! function. The pipeline that turns one into the other is `commit.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::graph::edit::AliasTarget;
use crate::graph::{
    ContentHash, EditOp, FunctionId, FunctionRef, Program, QualifiedName, Revision,
};

/// What to do when a function changed since the agent's base.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnConflict {
    /// Rebase the ops onto the current version when they do not overlap
    /// the intervening changes; refuse otherwise.
    #[default]
    Merge,
    /// Refuse whenever the base is not current.
    Reject,
}

#[derive(Clone, Debug, Default)]
pub struct EditRequest {
    pub ops: Vec<EditOp>,
    /// Explicit bases: function (name or id) → the hash the ops were
    /// written against. Functions not listed use the agent's last read.
    pub base: Vec<(FunctionRef, ContentHash)>,
    pub on_conflict: OnConflict,
    pub dry_run: bool,
    pub purpose: Option<String>,
    /// Client-chosen id: a repeat returns the first commit (`requests.rs`).
    pub request_id: Option<String>,
}

#[derive(Clone, Debug)]
pub struct FunctionOutcome {
    pub id: FunctionId,
    pub name: QualifiedName,
    pub before: Option<ContentHash>,
    pub after: Option<ContentHash>,
    /// The ops were rebased onto a newer version than the agent's base.
    pub merged: bool,
}

#[derive(Clone, Debug)]
pub struct CommitOutcome {
    /// The new revision; `None` for a dry run or an edit that changed
    /// nothing.
    pub revision: Option<Revision>,
    pub dry_run: bool,
    pub functions: Vec<FunctionOutcome>,
    /// The functions incremental verification checked.
    pub verified: Vec<(FunctionId, QualifiedName)>,
    pub aliases: BTreeMap<String, AliasTarget>,
    /// The program right after the commit (or as it would be), for names.
    pub program: Arc<Program>,
    /// This request's `request_id` was already committed: `revision` is
    /// that commit, and nothing was applied again.
    pub repeated: bool,
}
