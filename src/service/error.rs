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
use crate::locks::{AcquireError, FencingToken, HolderView};
use crate::store::CommitRecord;
use crate::verify::Diagnostic;

/// A function someone else holds a lock on.
#[derive(Clone, Debug)]
pub struct LockedFunction {
    pub function: FunctionId,
    pub name: QualifiedName,
    pub holders: Vec<HolderView>,
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
    #[error("{} is locked by another agent", backticked(.locked.iter().map(|l| &l.name)))]
    LockDenied { locked: Vec<LockedFunction> },
    #[error("{0}")]
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
    #[error("{0}")]
    InvalidEdit(#[from] EditError),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    Runtime(#[from] RuntimeError),
    #[error("{cap} stateless agents are registered, the most this server allows")]
    TooManyAgents { cap: usize },
    #[error("the server is stopping: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
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
