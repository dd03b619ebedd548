//! The service's errors: everything an agent's request can run into, with
//! the structured details it needs to act (holders, diffs, diagnostics).
//! `src/mcp/error.rs` maps each variant to a tool error code.

use std::sync::Arc;
use std::time::SystemTime;

use crate::eval::RuntimeError;
use crate::graph::{
    ContentHash, EditError, Function, FunctionDiff, FunctionId, OverlapReason, QualifiedName,
    Revision,
};
use crate::locks::{AcquireError, Blocked, FencingToken};
use crate::store::CommitRecord;
use crate::verify::Diagnostic;

/// A function someone else holds a lock on, as a lock request for it
/// would be told: holders, earlier waiters, the place it would take.
#[derive(Clone, Debug)]
pub struct LockedFunction {
    pub name: QualifiedName,
    pub blocked: Blocked,
}

/// One function whose base is not its current version.
#[derive(Clone, Debug)]
pub struct FunctionConflict {
    pub function: FunctionId,
    pub name: QualifiedName,
    pub base: ContentHash,
    pub current: Option<ContentHash>,
    /// The commits that changed it since the base, oldest first.
    pub commits: Vec<CommitRecord>,
    /// Base → current (empty when the function was deleted).
    pub diff: FunctionDiff,
    /// The current version, so the agent can retry without another read.
    pub current_function: Option<Arc<Function>>,
    pub current_revision: Option<Revision>,
    /// Why the request could not be rebased (empty with `on_conflict: reject`).
    pub overlaps: Vec<OverlapReason>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{what}")]
    NotFound { what: String },
    /// A function reference that names no function. `suggestions` are the
    /// closest existing names, computed only when this error is made.
    #[error("{what}")]
    UnknownFunction {
        what: String,
        suggestions: Vec<QualifiedName>,
    },
    #[error("{} is locked by another agent", backticked(.locked.iter().map(|l| &l.name)))]
    LockDenied { locked: Vec<LockedFunction> },
    #[error(transparent)]
    Lock(#[from] AcquireError),
    #[error("your lease on `{name}` expired and the function changed since")]
    LockExpired {
        function: FunctionId,
        name: QualifiedName,
        token: FencingToken,
        expired_at: Option<SystemTime>,
    },
    #[error("{} changed since your read", backticked(.conflicts.iter().map(|c| &c.name)))]
    Conflict { conflicts: Vec<FunctionConflict> },
    #[error("{n_conflicts} conflicts in a row on `{}`", .conflict.name)]
    TooManyConflicts {
        n_conflicts: u32,
        conflict: Box<FunctionConflict>,
    },
    #[error("no read of {} to check the edit against", backticked(.functions.iter().map(|(_, n)| n)))]
    ReadRequired {
        functions: Vec<(FunctionId, QualifiedName)>,
    },
    #[error("the edit would break the program ({} diagnostics)", .diagnostics.len())]
    VerificationFailed { diagnostics: Vec<Diagnostic> },
    #[error(transparent)]
    InvalidEdit(#[from] EditError),
    #[error("{0}")]
    InvalidRequest(String),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("{cap} stateless agents are registered, the most this server allows")]
    TooManyAgents { cap: usize },
    #[error("the server is stopping: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// `what` about `function`, which `program` does not have, with the
    /// names in `program` closest to it.
    pub fn unknown_function(
        program: &crate::graph::Program,
        function: &crate::graph::FunctionRef,
        what: String,
    ) -> ServiceError {
        let suggestions = match function {
            crate::graph::FunctionRef::Name(name) => program.similar_names(name.as_str()),
            crate::graph::FunctionRef::Id(_) => Vec::new(),
        };
        ServiceError::UnknownFunction { what, suggestions }
    }
}

/// Names in backticks, joined by commas: `` `a::f`, `a::g` ``.
pub fn backticked<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<crate::store::StoreError> for ServiceError {
    fn from(e: crate::store::StoreError) -> ServiceError {
        match e {
            crate::store::StoreError::Poisoned(reason) => ServiceError::Unavailable(reason),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}
